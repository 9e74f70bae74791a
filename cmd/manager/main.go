// Command manager is the tcpgateway operator: it reconciles TCPGateway resources into
// StatefulSets, Services, ConfigMaps, PodDisruptionBudgets and Kafka topics (see controllers).
//
// Kubernetes access: in-cluster, or --kubeconfig (registered by controller-runtime), or
// $KUBECONFIG.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/controllers"
)

func main() {
	var (
		metricsAddr   = flag.String("metrics-bind-address", ":8443", "address of the metrics endpoint; 0 disables it")
		metricsSecure = flag.Bool("metrics-secure", true, "serve metrics over HTTPS to scrapers authenticated by a TokenReview and authorized for get on /metrics; false: plain HTTP, unauthenticated")
		metricsCerts  = flag.String("metrics-cert-dir", "", "directory holding tls.crt and tls.key for the metrics endpoint, reloaded when they change; empty: a self-signed certificate made at start")
		probeAddr     = flag.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
		leaderElect   = flag.Bool("leader-elect", false, "elect a leader, so that only one replica of the manager reconciles")
		leaderNS      = flag.String("leader-election-namespace", "", "namespace of the leader election Lease; default: the manager's own (in a cluster)")
		concurrent    = flag.Int("max-concurrent-reconciles", 2, "TCPGateways reconciled in parallel")
		kafkaTimeout  = flag.Duration("kafka-timeout", controllers.DefaultKafkaTimeout, "bound on one reconcile's Kafka calls")
		kafkaDialWait = flag.Duration("kafka-dial-timeout", 5*time.Second, "bound on connecting to one Kafka broker")
		cmPort        = flag.Int("custom-metrics-port", 0, "serve the custom metrics API (custom.metrics.k8s.io: tcpgw_sessions of the gateway pods, for spec.autoscaling) over HTTPS on this port, behind an APIService; 0 disables it")
		cmBind        = flag.String("custom-metrics-bind-address", "0.0.0.0", "IP address of the custom metrics API")
		cmCerts       = flag.String("custom-metrics-cert-dir", "", "directory holding tls.crt and tls.key for the custom metrics API (the APIService's caBundle vouches for them), reloaded when they change; empty: a self-signed certificate made at start")
		opLabels      = flag.String("operator-pod-labels", "", "labels of the operator's own pods (k=v,k=v): spec.networkPolicy admits them to the gateways' admin port (rebalance, custom metrics); empty: not admitted beyond metricsNamespaceSelector")
		opNS          = flag.String("operator-namespace", "", "namespace of the operator's own pods, for --operator-pod-labels; default: the manager's own (in a cluster)")
	)
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	o := options{
		metricsAddr: *metricsAddr, metricsSecure: *metricsSecure, metricsCertDir: *metricsCerts, probeAddr: *probeAddr, leaderElect: *leaderElect, leaderNS: *leaderNS,
		concurrent: *concurrent, kafkaTimeout: *kafkaTimeout, kafkaDial: *kafkaDialWait,
		customMetricsPort: *cmPort, customMetricsBind: *cmBind, customMetricsCertDir: *cmCerts,
		operatorPodLabels: *opLabels, operatorNS: *opNS,
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// leaseName is the leader election Lease (in --leader-election-namespace).
const leaseName = "tcpgateway.io"

// leaseRenewDeadline is controller-runtime's default renew deadline (lease duration 15 s,
// retry period 2 s: its defaults too, see docs/operator.md).
const leaseRenewDeadline = 10 * time.Second

// leaderElection builds the Lease lock the manager elects a leader with and the fence that
// lets the reconciler's writes through only while this process holds it (nil, nil without
// --leader-elect). The lock is built here rather than by controller-runtime so that the fence
// knows this process's identity. It records no Events about the election: the Lease says who
// leads.
func leaderElection(cfg *rest.Config, scheme *runtime.Scheme, o options) (resourcelock.Interface, *controllers.LeaderFence, error) {
	if !o.leaderElect {
		return nil, nil, nil
	}
	ns := o.leaderNS
	if ns == "" {
		b, err := os.ReadFile(inClusterNamespaceFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--leader-election-namespace is needed outside a cluster: %w", err)
		}
		ns = strings.TrimSpace(string(b))
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, nil, err
	}
	identity := host + "_" + string(uuid.NewUUID())
	lock, err := resourcelock.NewFromKubeconfig(resourcelock.LeasesResourceLock, ns, leaseName,
		resourcelock.ResourceLockConfig{Identity: identity}, cfg, leaseRenewDeadline)
	if err != nil {
		return nil, nil, fmt.Errorf("while creating the leader election lock: %w", err)
	}
	reader, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, err
	}
	fence := &controllers.LeaderFence{Reader: reader, Lease: client.ObjectKey{Namespace: ns, Name: leaseName}, Identity: identity}
	return lock, fence, nil
}

const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

type options struct {
	metricsAddr, probeAddr string
	metricsSecure          bool
	metricsCertDir         string
	leaderElect            bool
	leaderNS               string
	concurrent             int
	kafkaTimeout           time.Duration
	kafkaDial              time.Duration
	customMetricsPort      int
	customMetricsBind      string
	customMetricsCertDir   string
	operatorPodLabels      string
	operatorNS             string
}

// operatorPeer is the NetworkPolicy peer of the operator's own pods (--operator-pod-labels in
// --operator-namespace, by default the manager's own), or nil without labels.
func operatorPeer(o options) (*networkingv1.NetworkPolicyPeer, error) {
	if o.operatorPodLabels == "" {
		return nil, nil
	}
	podLabels, err := labels.ConvertSelectorToLabelsMap(o.operatorPodLabels)
	if err != nil {
		return nil, fmt.Errorf("--operator-pod-labels: %w", err)
	}
	ns := o.operatorNS
	if ns == "" {
		b, err := os.ReadFile(inClusterNamespaceFile)
		if err != nil {
			return nil, fmt.Errorf("--operator-namespace is needed outside a cluster: %w", err)
		}
		ns = strings.TrimSpace(string(b))
	}
	return controllers.OperatorPeer(ns, podLabels), nil
}

func run(o options) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("while loading the Kubernetes client configuration: %w", err)
	}
	lock, fence, err := leaderElection(cfg, scheme, o)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                              scheme,
		Metrics:                             metricsOptions(o.metricsAddr, o.metricsSecure, o.metricsCertDir),
		HealthProbeBindAddress:              o.probeAddr,
		LeaderElection:                      o.leaderElect,
		LeaderElectionResourceLockInterface: lock,
		LeaderElectionReleaseOnCancel:       true,
		Cache:                               cache.Options{ByObject: controllers.OwnedCacheOptions()},
		// The operator may get Secrets, not list or watch them (it reads the ones spec.kafka
		// references through SecretReader below): a Secret read through the manager's client
		// must never start a cluster-wide informer.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		// With leader election, every write of the reconciler goes through the fence.
		NewClient: func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, opts)
			if err != nil || fence == nil {
				return c, err
			}
			return fence.Client(c), nil
		},
	})
	if err != nil {
		return fmt.Errorf("while creating the manager: %w", err)
	}

	peer, err := operatorPeer(o)
	if err != nil {
		return err
	}
	r := &controllers.TCPGatewayReconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("tcpgateway-operator"),
		Topics:       &controllers.KafkaTopics{DialTimeout: o.kafkaDial},
		SecretReader: mgr.GetAPIReader(),
		KafkaTimeout: o.kafkaTimeout,
		OperatorPeer: peer,
	}
	if err := r.SetupWithManager(mgr, o.concurrent); err != nil {
		return fmt.Errorf("while setting up the TCPGateway controller: %w", err)
	}
	if err := addCustomMetrics(mgr, o); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.Info("starting the manager")
	return mgr.Start(ctrl.SetupSignalHandler())
}
