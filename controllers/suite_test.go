package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/test/k8stest"
	"github.com/tcpgateway/tcpgateway/test/kafkatest"
)

// env is one real control plane (etcd + kube-apiserver with the CRD of config/crd/bases) and
// one real Kafka broker, shared by the subtests of TestOperator. Each subtest works in a
// namespace of its own, and those that need the operator start a manager watching only that
// namespace, so subtests cannot see each other's objects.
type env struct {
	cfg       *rest.Config
	scheme    *runtime.Scheme
	c         client.Client // uncached: what the test reads is what the API server has
	bootstrap string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	// The operator's logs are kept and shown only when the test fails.
	var logs syncBuffer
	ctrl.SetLogger(zap.New(zap.WriteTo(&logs), zap.UseDevMode(true)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator logs:\n%s", logs.String())
		}
	})
	cfg := k8stest.Start(t)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &env{cfg: cfg, scheme: scheme, c: c, bootstrap: kafkatest.Bootstrap(t)}
}

func (e *env) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// namespace creates a namespace with a unique name; its TCPGateways' default topic names
// (<namespace>.<name>.*) are then unique on the shared broker too.
func (e *env) namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("op")}}
	if err := e.c.Create(e.ctx(t), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// reconciler is the operator's reconciler with the real Kafka TopicManager.
func (e *env) reconciler(c client.Client, rec events.EventRecorder) *TCPGatewayReconciler {
	return &TCPGatewayReconciler{
		Client:       c,
		Scheme:       e.scheme,
		Recorder:     rec,
		Topics:       &KafkaTopics{DialTimeout: 2 * time.Second},
		SecretReader: e.c,
		KafkaTimeout: 10 * time.Second,
		OperatorPeer: OperatorPeer("tcpgateway-system", testOperatorLabels),
	}
}

// testOperatorLabels are the operator pods' labels the test reconcilers are configured with.
var testOperatorLabels = map[string]string{"app.kubernetes.io/name": "tcpgateway", "app.kubernetes.io/component": "operator"}

// startManager runs the operator as cmd/manager does (same cache restrictions, same
// reconciler), limited to namespace ns, until the test ends.
func (e *env) startManager(t *testing.T, ns string) {
	t.Helper()
	byObject := OwnedCacheOptions()
	mgr, err := ctrl.NewManager(e.cfg, ctrl.Options{
		Scheme:  e.scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{ns: {}},
			ByObject:          byObject,
		},
		// Every subtest registers a controller of the same name in this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.reconciler(mgr.GetClient(), mgr.GetEventRecorder("tcpgateway-operator"))
	r.SecretReader = mgr.GetAPIReader()
	if err := r.SetupWithManager(mgr, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop within 30s")
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeCounter counts the writes made through a client.
type writeCounter struct{ n atomic.Int64 }

// wrap returns a client that counts every create, update, patch, delete and apply, of objects
// and of subresources (status, scale), before passing it on.
func (w *writeCounter) wrap(c client.WithWatch) client.WithWatch {
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			w.n.Add(1)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			w.n.Add(1)
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			w.n.Add(1)
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			w.n.Add(1)
			return c.Delete(ctx, obj, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			w.n.Add(1)
			return c.DeleteAllOf(ctx, obj, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			w.n.Add(1)
			return c.Apply(ctx, obj, opts...)
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
			w.n.Add(1)
			return c.SubResource(sub).Create(ctx, obj, subObj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			w.n.Add(1)
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			w.n.Add(1)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
		SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
			w.n.Add(1)
			return c.SubResource(sub).Apply(ctx, obj, opts...)
		},
	})
}

// printerColumns fetches the TCPGateway as a server-side Table, the way kubectl get does,
// and returns its cells by column name.
func (e *env) printerColumns(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	hc, err := rest.HTTPClientFor(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("%s/apis/tcpgateway.io/v1alpha1/namespaces/%s/tcpgateways/%s", strings.TrimSuffix(e.cfg.Host, "/"), ns, name)
	req, err := http.NewRequestWithContext(e.ctx(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as Table: %s: %s", url, resp.Status, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("table has %d rows", len(table.Rows))
	}
	cells := map[string]string{}
	for i, col := range table.ColumnDefinitions {
		cells[col.Name] = fmt.Sprint(table.Rows[0].Cells[i])
	}
	return cells
}
