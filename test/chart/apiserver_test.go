package chart

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/test/k8stest"
)

const (
	// apiTimeout bounds one API call; waitTimeout bounds waiting for the API server to act.
	apiTimeout  = 30 * time.Second
	waitTimeout = 30 * time.Second

	crdName        = "tcpgateways.tcpgateway.io"
	dryRunNS       = "tcpgw-dryrun"
	installNS      = "tcpgw-system"
	serviceMonitor = "servicemonitors.monitoring.coreos.com"
)

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// TestChartOnAPIServer runs the chart against a real kube-apiserver and etcd: a server-side
// dry run of everything it renders, then helm install, upgrade and uninstall. envtest runs no
// controllers, so nothing schedules or starts the operator pods: helm runs without --wait.
func TestChartOnAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs etcd and kube-apiserver")
	}
	cfg := k8stest.Start(t)
	kubeconfig := writeKubeconfig(t, cfg)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHelm(t)

	t.Run("ServerSideDryRun", func(t *testing.T) { testDryRun(t, c, h) })
	t.Run("QuickStartManifests", func(t *testing.T) { testQuickStart(t, c, h) })
	t.Run("InstallUpgradeUninstall", func(t *testing.T) { testInstall(t, c, h, kubeconfig) })
	t.Run("UpgradeFromPreviousChart", func(t *testing.T) { testUpgradeFromPrevious(t, c, h, kubeconfig) })
	t.Run("AggregatedRoles", func(t *testing.T) { testAggregatedRoles(t, c, h, kubeconfig) })
	t.Run("SecureMetrics", func(t *testing.T) { testSecureMetrics(t, cfg, c, h, kubeconfig) })
}

// writeKubeconfig writes an admin kubeconfig for cfg (envtest's client certificate) for helm.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "envtest.kubeconfig")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), apiTimeout)
	t.Cleanup(cancel)
	return c
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, waitTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createFromFile creates the object in a YAML file of the repository, for real.
func createFromFile(t *testing.T, c client.Client, rel string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	objs := parseManifests(t, data)
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects", rel, len(objs))
	}
	if err := c.Create(ctx(t), objs[0].Unstructured); err != nil {
		t.Fatalf("creating %s: %v", rel, err)
	}
	return objs[0].Unstructured
}

// waitEstablished waits for a CRD to serve its resource.
func waitEstablished(t *testing.T, c client.Client, name string) {
	t.Helper()
	waitFor(t, "CRD "+name+" established", func() (bool, error) {
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(crdGVK)
		if err := c.Get(ctx(t), client.ObjectKey{Name: name}, crd); err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

func dryRunCreate(t *testing.T, c client.Client, obj client.Object) error {
	t.Helper()
	return c.Create(ctx(t), obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
}

// podOf is a Pod with the Deployment's pod template, for the PodSecurity admission plugin,
// which enforces on Pods only.
func podOf(t *testing.T, o object, namespace string) *corev1.Pod {
	t.Helper()
	var dep appsv1.Deployment
	decode(t, o, &dep)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "operator-pod-dry-run", Namespace: namespace, Labels: dep.Spec.Template.Labels},
		Spec:       dep.Spec.Template.Spec,
	}
}

// Every object the chart renders, for several value sets, passes the API server's validation
// with strict field validation (an unknown or misspelt field is an error, not a silent drop),
// and the operator pod passes the restricted Pod Security Standard as enforced by the
// PodSecurity admission plugin. The ServiceMonitor is checked against a cut-down copy of the
// Prometheus Operator's CRD (testdata/servicemonitor-crd.yaml). The chart's own CRD is
// created for real by the install test instead: it exists already here (k8stest installs
// config/crd/bases, which TestCRDTemplate shows to be what the chart renders).
func testDryRun(t *testing.T, c client.Client, h *helm) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dryRunNS, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if err := c.Create(ctx(t), ns); err != nil {
		t.Fatal(err)
	}
	createFromFile(t, c, "test/chart/testdata/servicemonitor-crd.yaml")
	waitEstablished(t, c, serviceMonitor)

	for name, args := range map[string][]string{
		"defaults":       nil,
		"serviceMonitor": {"--set", "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.scrapeTimeout=10s"},
		"gateways":       {"--set", "gatewayMonitor.enabled=true,gatewayMonitor.scrapeTimeout=10s,dashboards.enabled=true", "--set-json", `gatewayMonitor.namespaces=["team-a"]`},
		"custom":         {"--values", path(t, "test/chart/testdata/custom-values.yaml")},
		"disabled":       {"--set", "metrics.enabled=false,leaderElection.enabled=false"},
	} {
		t.Run(name, func(t *testing.T) {
			var objs []object
			for _, o := range render(t, h, dryRunNS, args...) {
				if o.GetKind() != "CustomResourceDefinition" {
					objs = append(objs, o)
				}
			}
			for _, o := range objs {
				if err := dryRunCreate(t, c, o.DeepCopy()); err != nil {
					t.Errorf("the API server refuses %s: %v", o, err)
				}
			}
			// A dry run persists nothing.
			for _, o := range objs {
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(o.GroupVersionKind())
				if err := c.Get(ctx(t), client.ObjectKeyFromObject(o), got); !apierrors.IsNotFound(err) {
					t.Errorf("%s after a dry run: %v", o, err)
				}
			}
			if err := dryRunCreate(t, c, podOf(t, byKind(t, objs)["Deployment"], dryRunNS)); err != nil {
				t.Errorf("the operator pod does not meet the restricted Pod Security Standard: %v", err)
			}
		})
	}

	// Both checks have teeth: a misspelt field and a pod without the security context are refused.
	dep := byKind(t, render(t, h, dryRunNS))["Deployment"]
	bad := dep.DeepCopy()
	containers, _, _ := unstructured.NestedSlice(bad.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["imagePullPolicyy"] = "Always"
	if err := unstructured.SetNestedSlice(bad.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if err := dryRunCreate(t, c, bad); err == nil || !strings.Contains(err.Error(), `unknown field "spec.template.spec.containers[0].imagePullPolicyy"`) {
		t.Errorf("a misspelt field was not refused: %v", err)
	}
	pod := podOf(t, dep, dryRunNS)
	pod.Spec.Containers[0].SecurityContext = nil
	if err := dryRunCreate(t, c, pod); err == nil || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
		t.Errorf("a pod without the restricted security context was not refused: %v", err)
	}
}

// get reads an object of the given kind, or returns the error.
func get(t *testing.T, c client.Client, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, c.Get(ctx(t), client.ObjectKey{Namespace: namespace, Name: name}, u)
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}

// helm install creates the CRD and the operator's objects; helm upgrade changes them; helm
// uninstall deletes them all except the CRD, which the chart marks
// helm.sh/resource-policy: keep (deleting it would delete every TCPGateway of the cluster),
// and the namespace --create-namespace made.
func testInstall(t *testing.T, c client.Client, h *helm, kubeconfig string) {
	// k8stest installed the CRD at start; delete it so that helm's creating it is observable.
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	crd.SetName(crdName)
	if err := c.Delete(ctx(t), crd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CRD deleted", func() (bool, error) {
		_, err := get(t, c, crdGVK, "", crdName)
		return apierrors.IsNotFound(err), err
	})

	cluster := []string{"--kubeconfig", kubeconfig, "--namespace", installNS}
	out := h.mustRun(t, append([]string{"install", releaseName, chartDir(t), "--create-namespace"}, cluster...)...)
	for _, want := range []string{"STATUS: deployed", "kubectl get tcpgw", "kind: TCPGateway", "rollout status deployment/tcpgateway-operator"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install output lacks %q:\n%s", want, out)
		}
	}

	// Every object helm rendered exists, owned by the release.
	want := render(t, h, installNS)
	if len(want) != len(defaultKinds) {
		t.Fatalf("rendered %v", kinds(want))
	}
	for _, o := range want {
		got, err := get(t, c, o.GroupVersionKind(), o.GetNamespace(), o.GetName())
		if err != nil {
			t.Errorf("%s after helm install: %v", o, err)
			continue
		}
		if got.GetAnnotations()["meta.helm.sh/release-name"] != releaseName || got.GetAnnotations()["meta.helm.sh/release-namespace"] != installNS {
			t.Errorf("%s is not marked as the release's: %v", o, got.GetAnnotations())
		}
	}
	if _, err := get(t, c, corev1.SchemeGroupVersion.WithKind("Namespace"), "", installNS); err != nil {
		t.Errorf("namespace %s: %v", installNS, err)
	}
	u, err := get(t, c, appsv1.SchemeGroupVersion.WithKind("Deployment"), installNS, "tcpgateway-operator")
	if err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	fromUnstructured(t, u, &dep)
	image := dep.Spec.Template.Spec.Containers[0].Image
	if image != "ghcr.io/tcpgateway/tcpgateway:"+chartAppVersion(t) || *dep.Spec.Replicas != 2 {
		t.Errorf("Deployment image %s replicas %d", image, *dep.Spec.Replicas)
	}
	u, err = get(t, c, rbacv1.SchemeGroupVersion.WithKind("ClusterRole"), "", "tcpgateway-manager")
	if err != nil {
		t.Fatal(err)
	}
	var cr rbacv1.ClusterRole
	fromUnstructured(t, u, &cr)
	if want := readRules(t, "config/rbac/role.yaml"); !reflect.DeepEqual(cr.Rules, want) {
		t.Errorf("installed ClusterRole rules %+v, want %+v", cr.Rules, want)
	}

	// The CRD is the release's, kept on uninstall, and serves TCPGateways.
	waitEstablished(t, c, crdName)
	got, err := get(t, c, crdGVK, "", crdName)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("CRD annotations %v lack helm.sh/resource-policy: keep", got.GetAnnotations())
	}

	// The TCPGateway NOTES.txt tells the user to apply passes the CRD's validation, and runs
	// the operator's image.
	gw := notesTCPGateway(t, out)
	if spec, _, _ := unstructured.NestedString(gw.Object, "spec", "image"); spec != image {
		t.Errorf("NOTES' TCPGateway runs %q, the operator %q", spec, image)
	}
	gw.SetNamespace("default")
	if err := dryRunCreate(t, c, gw); err != nil {
		t.Errorf("the TCPGateway of NOTES.txt is refused: %v", err)
	}

	// helm upgrade applies a changed value.
	h.mustRun(t, append([]string{"upgrade", releaseName, chartDir(t), "--reuse-values", "--set", "replicaCount=3"}, cluster...)...)
	u, err = get(t, c, appsv1.SchemeGroupVersion.WithKind("Deployment"), installNS, "tcpgateway-operator")
	if err != nil {
		t.Fatal(err)
	}
	fromUnstructured(t, u, &dep)
	if *dep.Spec.Replicas != 3 {
		t.Errorf("replicas %d after helm upgrade --set replicaCount=3", *dep.Spec.Replicas)
	}
	var releases []struct{ Name, Status, Revision string }
	if err := json.Unmarshal([]byte(h.mustRun(t, append([]string{"list", "--output", "json"}, cluster...)...)), &releases); err != nil {
		t.Fatal(err)
	}
	if len(releases) != 1 || releases[0].Name != releaseName || releases[0].Status != "deployed" || releases[0].Revision != "2" {
		t.Errorf("helm list: %+v", releases)
	}

	out = h.mustRun(t, append([]string{"uninstall", releaseName}, cluster...)...)
	if !strings.Contains(out, `release "tcpgateway" uninstalled`) {
		t.Errorf("helm uninstall: %s", out)
	}
	for _, o := range want {
		if o.GetKind() == "CustomResourceDefinition" {
			continue
		}
		waitFor(t, o.String()+" deleted by helm uninstall", func() (bool, error) {
			_, err := get(t, c, o.GroupVersionKind(), o.GetNamespace(), o.GetName())
			return apierrors.IsNotFound(err), err
		})
	}
	if _, err := get(t, c, crdGVK, "", crdName); err != nil {
		t.Errorf("helm uninstall deleted the CRD (helm.sh/resource-policy: keep): %v", err)
	}
	if _, err := get(t, c, corev1.SchemeGroupVersion.WithKind("Namespace"), "", installNS); err != nil {
		t.Errorf("namespace %s after uninstall: %v (helm leaves it)", installNS, err)
	}
	if _, errOut, err := h.run(append([]string{"status", releaseName}, cluster...)...); err == nil || !strings.Contains(errOut, "release: not found") {
		t.Errorf("helm status after uninstall: %v %s", err, errOut)
	}
}

// notesTCPGateway extracts the TCPGateway of the heredoc in NOTES.txt ("kubectl apply -f - <<EOF").
func notesTCPGateway(t *testing.T, notes string) *unstructured.Unstructured {
	t.Helper()
	lines := strings.Split(notes, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasSuffix(strings.TrimSpace(l), "kubectl apply -f - <<EOF") {
			start = i + 1
			break
		}
	}
	if start < 0 {
		t.Fatalf("no heredoc in the NOTES:\n%s", notes)
	}
	indent := len(lines[start]) - len(strings.TrimLeft(lines[start], " "))
	var doc []string
	for _, l := range lines[start:] {
		if strings.TrimSpace(l) == "EOF" {
			objs := parseManifests(t, []byte(strings.Join(doc, "\n")))
			if len(objs) != 1 || objs[0].GetKind() != "TCPGateway" {
				t.Fatalf("the NOTES' heredoc is not one TCPGateway:\n%s", strings.Join(doc, "\n"))
			}
			return objs[0].Unstructured
		}
		if len(l) < indent || strings.TrimSpace(l[:indent]) != "" {
			t.Fatalf("heredoc line %q is not indented like the first", l)
		}
		doc = append(doc, l[indent:])
	}
	t.Fatal("the NOTES' heredoc has no EOF")
	return nil
}

// The manifests of the README's quick start are valid objects, and the sample TCPGateway,
// edited as the README says, passes the CRD's validation: the walkthrough cannot be tried on
// a real cluster here, but what it applies can be checked against a real API server.
func testQuickStart(t *testing.T, c client.Client, h *helm) {
	data, err := os.ReadFile(path(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Quick start on a real cluster\n")
	if !ok {
		t.Fatal("README.md has no \"Quick start on a real cluster\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")

	// The commands name what the chart creates.
	var dep appsv1.Deployment
	decode(t, byKind(t, render(t, h, "tcpgateway-system"))["Deployment"], &dep)
	for _, want := range []string{
		"helm install tcpgateway charts/tcpgateway -n tcpgateway-system --create-namespace",
		"--set image.repository=$REGISTRY/tcpgateway",
		"docker build -t $REGISTRY/tcpgateway:" + chartAppVersion(t) + " .",
		"rollout status deployment/" + dep.Name,
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the quick start lacks %q", want)
		}
	}

	// Every heredoc manifest, in the namespace its kubectl command uses.
	if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kafka"}}); err != nil {
		t.Fatal(err)
	}
	heredocs := regexp.MustCompile(`(?ms)^kubectl (?:-n (\S+) )?apply -f - <<'YAML'\n(.*?)\nYAML$`).FindAllStringSubmatch(section, -1)
	if len(heredocs) != 2 {
		t.Fatalf("%d kubectl apply heredocs in the quick start, want 2 (Kafka, echo backend)", len(heredocs))
	}
	for _, m := range heredocs {
		ns := m[1]
		if ns == "" {
			ns = "default"
		}
		for _, o := range parseManifests(t, []byte(m[2])) {
			o.SetNamespace(ns)
			if err := dryRunCreate(t, c, o.DeepCopy()); err != nil {
				t.Errorf("the API server refuses the quick start's %s: %v", o, err)
			}
		}
	}

	// The sample, with the README's sed edit: the line it matches must still exist.
	sample, err := os.ReadFile(path(t, "config/samples/tcpgateway_v1alpha1_tcpgateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const imageLine = "image: ghcr.io/tcpgateway/tcpgateway:latest"
	if !strings.Contains(section, imageLine) || !strings.Contains(string(sample), imageLine) {
		t.Fatalf("the README's sed edits %q, which the sample or the README no longer has", imageLine)
	}
	var kept []string
	for _, l := range strings.Split(string(sample), "\n") {
		kept = append(kept, strings.Replace(l, imageLine, "image: registry.example.test/you/tcpgateway:"+chartAppVersion(t), 1))
	}
	objs := parseManifests(t, []byte(strings.Join(kept, "\n")))
	if len(objs) != 1 {
		t.Fatalf("the sample holds %d objects", len(objs))
	}
	gw := objs[0]
	gw.SetNamespace("default")
	if err := dryRunCreate(t, c, gw.DeepCopy()); err != nil {
		t.Errorf("the edited sample is refused: %v", err)
	}
	// The sample's audience is what the README's token carries.
	if aud, _, _ := unstructured.NestedString(gw.Object, "spec", "auth", "jwt", "audience"); aud != "" && !strings.Contains(section, "-audience "+aud) {
		t.Errorf("the sample requires audience %q but the README's token does not carry it", aud)
	}
	// The topics the README pushes to are the defaults for this name and namespace.
	for _, flag := range []string{"-topic default." + gw.GetName() + ".downlink", "-receipts default." + gw.GetName() + ".receipts"} {
		if !strings.Contains(section, flag) {
			t.Errorf("the quick start does not push with %s", flag)
		}
	}
}
