package chart

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"
)

const testNamespace = "tcpgw-system"

// The kinds the chart renders with its default values: the operator's ClusterRole, the
// aggregated edit and view ones, metrics-auth (with its binding) and metrics-reader, and the
// CRD (a template, so that helm upgrade upgrades it).
var defaultKinds = []string{"ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding",
	"CustomResourceDefinition", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"}

func kinds(objs []object) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.GetKind())
	}
	slices.Sort(ks)
	return ks
}

func TestLint(t *testing.T) {
	h := newHelm(t)
	for _, args := range [][]string{
		{"lint", chartDir(t)},
		{"lint", "--strict", chartDir(t)},
		{"lint", "--strict", chartDir(t), "--values", path(t, "test/chart/testdata/custom-values.yaml")},
		{"lint", "--strict", chartDir(t), "--set", "metrics.enabled=false,leaderElection.enabled=false"},
	} {
		out := h.mustRun(t, args...)
		if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
			t.Errorf("helm %s:\n%s", strings.Join(args, " "), out)
		}
		// Only INFO findings (the missing icon) are acceptable.
		for _, bad := range []string{"[WARNING]", "[ERROR]"} {
			if strings.Contains(out, bad) {
				t.Errorf("helm %s reports %s:\n%s", strings.Join(args, " "), bad, out)
			}
		}
	}
}

// commonLabels are on every object of the chart.
func commonLabels(t testing.TB, o object) {
	t.Helper()
	l := o.GetLabels()
	for k, want := range map[string]string{
		"app.kubernetes.io/name":       "tcpgateway",
		"app.kubernetes.io/instance":   releaseName,
		"app.kubernetes.io/component":  "operator",
		"app.kubernetes.io/version":    chartAppVersion(t),
		"app.kubernetes.io/part-of":    "tcpgateway",
		"app.kubernetes.io/managed-by": "Helm",
		"helm.sh/chart":                "tcpgateway-" + chartVersion(t),
	} {
		if l[k] != want {
			t.Errorf("%s: label %s = %q, want %q", o, k, l[k], want)
		}
	}
}

func TestDefaults(t *testing.T) {
	h := newHelm(t)
	objs := render(t, h, testNamespace)
	if got := kinds(objs); !slices.Equal(got, defaultKinds) {
		t.Fatalf("rendered kinds = %v, want %v", got, defaultKinds)
	}
	byK := byKind(t, objs)
	for _, o := range objs {
		commonLabels(t, o)
		clusterScoped := o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" || o.GetKind() == "CustomResourceDefinition"
		if ns := o.GetNamespace(); clusterScoped && ns != "" || !clusterScoped && ns != testNamespace {
			t.Errorf("%s: namespace %q", o, ns)
		}
	}

	var dep appsv1.Deployment
	decode(t, byK["Deployment"], &dep)
	var sa corev1.ServiceAccount
	decode(t, byK["ServiceAccount"], &sa)
	var svc corev1.Service
	decode(t, byK["Service"], &svc)

	if dep.Name != "tcpgateway-operator" || *dep.Spec.Replicas != 2 {
		t.Errorf("Deployment %s with %d replicas, want tcpgateway-operator with 2", dep.Name, *dep.Spec.Replicas)
	}
	pod := dep.Spec.Template
	for k, v := range dep.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("the Deployment's selector %s=%s does not match its pods (%v)", k, v, pod.Labels)
		}
	}
	if pod.Labels["app.kubernetes.io/component"] != "operator" || dep.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != "operator" {
		t.Error("the operator pods must be told apart from the gateway pods by component=operator")
	}
	if pod.Spec.ServiceAccountName != sa.Name {
		t.Errorf("pods run as %q, the chart creates ServiceAccount %q", pod.Spec.ServiceAccountName, sa.Name)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if want := "ghcr.io/tcpgateway/tcpgateway:" + chartAppVersion(t); c.Image != want {
		t.Errorf("image %q, want %q (the tag defaults to the appVersion)", c.Image, want)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("pull policy %q", c.ImagePullPolicy)
	}
	if !slices.Equal(c.Command, []string{"/usr/local/bin/manager"}) {
		t.Errorf("command %v", c.Command)
	}
	for _, arg := range []string{
		"--leader-elect", "--leader-election-namespace=" + testNamespace,
		"--health-probe-bind-address=:8081", "--metrics-bind-address=:8443", "--metrics-secure=true",
	} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !maps.Equal(ports, map[string]int32{"metrics": 8443, "probes": 8081}) {
		t.Errorf("container ports %v", ports)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port != intstr.FromString("probes") {
			t.Errorf("probe %s: %+v", name, probe)
		}
	}
	if got := c.Resources.Requests[corev1.ResourceMemory]; got.Cmp(resource.MustParse("64Mi")) != 0 {
		t.Errorf("memory request %s", got.String())
	}
	if got := c.Resources.Limits[corev1.ResourceMemory]; got.Cmp(resource.MustParse("256Mi")) != 0 {
		t.Errorf("memory limit %s", got.String())
	}

	// The restricted Pod Security Standard, field by field (the API server test also has the
	// PodSecurity admission plugin judge it).
	psc, sc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || sc == nil {
		t.Fatal("no security contexts")
	}
	if !ptrIs(psc.RunAsNonRoot, true) || !ptrIs(psc.RunAsUser, int64(65532)) ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", psc)
	}
	if !ptrIs(sc.RunAsNonRoot, true) || !ptrIs(sc.RunAsUser, int64(65532)) || !ptrIs(sc.ReadOnlyRootFilesystem, true) ||
		!ptrIs(sc.AllowPrivilegeEscalation, false) || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container security context %+v", sc)
	}
	if len(pod.Spec.NodeSelector) != 0 || len(pod.Spec.Tolerations) != 0 || pod.Spec.Affinity != nil {
		t.Errorf("scheduling constraints without values: %v %v %v", pod.Spec.NodeSelector, pod.Spec.Tolerations, pod.Spec.Affinity)
	}

	// The metrics Service reaches the pods' metrics port.
	if svc.Name != "tcpgateway-operator-metrics" || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service %s of type %s", svc.Name, svc.Spec.Type)
	}
	if !maps.Equal(svc.Spec.Selector, dep.Spec.Selector.MatchLabels) {
		t.Errorf("Service selector %v, the Deployment's %v", svc.Spec.Selector, dep.Spec.Selector.MatchLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].Port != 8443 ||
		svc.Spec.Ports[0].TargetPort != intstr.FromString("metrics") {
		t.Errorf("Service ports %+v", svc.Spec.Ports)
	}

	// The bindings bind what the chart creates to the ServiceAccount the pods use.
	var cr rbacv1.ClusterRole
	decode(t, byK["ClusterRole"], &cr)
	var crb rbacv1.ClusterRoleBinding
	decode(t, byK["ClusterRoleBinding"], &crb)
	var role rbacv1.Role
	decode(t, byK["Role"], &role)
	var rb rbacv1.RoleBinding
	decode(t, byK["RoleBinding"], &rb)
	wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: testNamespace}}
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}) || !reflect.DeepEqual(crb.Subjects, wantSubject) {
		t.Errorf("ClusterRoleBinding %+v %+v", crb.RoleRef, crb.Subjects)
	}
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) || !reflect.DeepEqual(rb.Subjects, wantSubject) {
		t.Errorf("RoleBinding %+v %+v", rb.RoleRef, rb.Subjects)
	}

	// The chart has no crds/ (Helm would install it once and never upgrade it): --include-crds
	// adds nothing, and crds.enabled=false leaves the CRD out.
	if got := kinds(render(t, h, testNamespace, "--include-crds")); !slices.Equal(got, defaultKinds) {
		t.Errorf("with --include-crds: %v", got)
	}
	if _, err := os.Stat(filepath.Join(chartDir(t), "crds")); !os.IsNotExist(err) {
		t.Errorf("the chart has a crds/ directory, which helm never upgrades: %v", err)
	}
	if _, found := byKindAll(render(t, h, testNamespace, "--set", "crds.enabled=false"))["CustomResourceDefinition"]; found {
		t.Error("crds.enabled=false renders the CRD")
	}
}

func ptrIs[T comparable](p *T, want T) bool { return p != nil && *p == want }

func TestServiceMonitor(t *testing.T) {
	h := newHelm(t)
	if _, found := byKindAll(render(t, h, testNamespace))["ServiceMonitor"]; found {
		t.Fatal("a ServiceMonitor is rendered by default; the Prometheus Operator's CRD may not exist")
	}
	objs := render(t, h, testNamespace, "--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.serviceMonitor.labels.release=prom", "--set", "metrics.serviceMonitor.scrapeTimeout=10s")
	byK := byKind(t, objs)
	sm, ok := byK["ServiceMonitor"]
	if !ok {
		t.Fatalf("no ServiceMonitor: %v", kinds(objs))
	}
	commonLabels(t, sm)
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetNamespace() != testNamespace || sm.GetLabels()["release"] != "prom" {
		t.Errorf("ServiceMonitor %s %s labels %v", sm.GetAPIVersion(), sm, sm.GetLabels())
	}
	var spec struct {
		Spec struct {
			NamespaceSelector struct {
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Endpoints []struct {
				Port, Path, Scheme, Interval, ScrapeTimeout, BearerTokenFile string
				TLSConfig                                                    struct {
					InsecureSkipVerify bool `json:"insecureSkipVerify"`
				} `json:"tlsConfig"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(sm.raw, &spec); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	decode(t, byK["Service"], &svc)
	// It selects the metrics Service, in its namespace, by the Service's own labels...
	if !slices.Equal(spec.Spec.NamespaceSelector.MatchNames, []string{svc.Namespace}) {
		t.Errorf("namespaceSelector %v, the Service is in %s", spec.Spec.NamespaceSelector.MatchNames, svc.Namespace)
	}
	if len(spec.Spec.Selector.MatchLabels) == 0 {
		t.Error("empty selector")
	}
	for k, v := range spec.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the metrics Service's labels %v", k, v, svc.Labels)
		}
	}
	// ...and scrapes its named port.
	if len(spec.Spec.Endpoints) != 1 {
		t.Fatalf("endpoints %+v", spec.Spec.Endpoints)
	}
	ep := spec.Spec.Endpoints[0]
	// Over HTTPS with Prometheus' token, the server's self-signed certificate unchecked.
	if ep.Port != svc.Spec.Ports[0].Name || ep.Path != "/metrics" || ep.Scheme != "https" || ep.Interval != "30s" || ep.ScrapeTimeout != "10s" ||
		ep.BearerTokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" || !ep.TLSConfig.InsecureSkipVerify {
		t.Errorf("endpoint %+v", ep)
	}
	// Plain HTTP when the metrics are not secure.
	sm = byKind(t, render(t, h, testNamespace, "--set", "metrics.serviceMonitor.enabled=true,metrics.secure=false"))["ServiceMonitor"]
	spec.Spec.Endpoints = nil
	if err := yaml.Unmarshal(sm.raw, &spec); err != nil {
		t.Fatal(err)
	}
	if ep := spec.Spec.Endpoints[0]; ep.Scheme != "http" || ep.BearerTokenFile != "" {
		t.Errorf("endpoint without metrics.secure %+v", ep)
	}

	// A ServiceMonitor without the metrics endpoint would scrape nothing: refused with a reason.
	_, errOut, err := h.run("template", releaseName, chartDir(t), "--set", "metrics.serviceMonitor.enabled=true,metrics.enabled=false")
	if err == nil || !strings.Contains(errOut, "metrics.serviceMonitor.enabled needs metrics.enabled") {
		t.Errorf("serviceMonitor without metrics: err %v\n%s", err, errOut)
	}
}

func byKindAll(objs []object) map[string][]object {
	m := map[string][]object{}
	for _, o := range objs {
		m[o.GetKind()] = append(m[o.GetKind()], o)
	}
	return m
}

func TestMetricsAndLeaderElectionDisabled(t *testing.T) {
	h := newHelm(t)
	objs := render(t, h, testNamespace, "--set", "metrics.enabled=false,leaderElection.enabled=false")
	want := []string{"ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment", "ServiceAccount"}
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v (no metrics RBAC without metrics)", got, want)
	}
	var dep appsv1.Deployment
	decode(t, byKind(t, objs)["Deployment"], &dep)
	c := dep.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--metrics-bind-address=0") {
		t.Errorf("args %v: the manager would still serve metrics", c.Args)
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--leader-elect") {
			t.Errorf("args %v: leader election is disabled", c.Args)
		}
	}
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			t.Errorf("metrics port %+v without metrics", p)
		}
	}
}

func TestCustomValues(t *testing.T) {
	h := newHelm(t)
	objs := render(t, h, "edge-system", "--values", path(t, "test/chart/testdata/custom-values.yaml"))
	want := []string{"ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount", "ServiceMonitor"}
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v (no leader-election Role without leader election, no CRD, no aggregated roles)", got, want)
	}
	for _, o := range objs {
		if !strings.HasPrefix(o.GetName(), "edge") {
			t.Errorf("%s ignores fullnameOverride", o)
		}
	}
	byK := byKind(t, objs)
	var dep appsv1.Deployment
	decode(t, byK["Deployment"], &dep)
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if *dep.Spec.Replicas != 1 || c.Image != "registry.example.test/team/tcpgateway:1.2.3-rc.1" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("replicas %d image %s policy %s", *dep.Spec.Replicas, c.Image, c.ImagePullPolicy)
	}
	if !reflect.DeepEqual(pod.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}}) {
		t.Errorf("imagePullSecrets %v", pod.ImagePullSecrets)
	}
	wantRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	for _, rl := range []struct{ got, want corev1.ResourceList }{{c.Resources.Requests, wantRes.Requests}, {c.Resources.Limits, wantRes.Limits}} {
		if len(rl.got) != len(rl.want) {
			t.Errorf("resources %v, want %v", rl.got, rl.want)
		}
		for name, q := range rl.want {
			if got := rl.got[name]; got.Cmp(q) != 0 {
				t.Errorf("resource %s = %s, want %s", name, got.String(), q.String())
			}
		}
	}
	if !maps.Equal(pod.NodeSelector, map[string]string{"kubernetes.io/os": "linux", "node-role.example.test/system": "true"}) {
		t.Errorf("nodeSelector %v", pod.NodeSelector)
	}
	if !reflect.DeepEqual(pod.Tolerations, []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "system", Effect: corev1.TaintEffectNoSchedule}}) {
		t.Errorf("tolerations %+v", pod.Tolerations)
	}
	if a := pod.Affinity; a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
		!slices.Equal(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values, []string{"amd64", "arm64"}) {
		t.Errorf("affinity %+v", pod.Affinity)
	}
	if pod.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName %q", pod.PriorityClassName)
	}
	if dep.Spec.Template.Labels["team"] != "edge" || dep.Spec.Template.Annotations["example.test/scrape"] != "true" ||
		dep.Spec.Template.Annotations["kubectl.kubernetes.io/default-container"] != "manager" {
		t.Errorf("pod labels %v annotations %v", dep.Spec.Template.Labels, dep.Spec.Template.Annotations)
	}
	for _, arg := range []string{"--max-concurrent-reconciles=4", "--kafka-timeout=30s", "--kafka-dial-timeout=2s", "--zap-log-level=debug", "--zap-encoder=console"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	// The labels the operator admits itself by (spec.networkPolicy) are the ones its pods carry.
	var peerLabels string
	for _, arg := range c.Args {
		if v, ok := strings.CutPrefix(arg, "--operator-pod-labels="); ok {
			peerLabels = v
		}
	}
	if peerLabels == "" || !slices.Contains(c.Args, "--operator-namespace="+dep.Namespace) {
		t.Errorf("args %v lack --operator-pod-labels or --operator-namespace=%s", c.Args, dep.Namespace)
	}
	for _, kv := range strings.Split(peerLabels, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("--operator-pod-labels names %s=%s, the pods carry %v", k, v, dep.Spec.Template.Labels)
		}
	}
	var sa corev1.ServiceAccount
	decode(t, byK["ServiceAccount"], &sa)
	if sa.Name != pod.ServiceAccountName || sa.Annotations["example.test/role"] != "operator" {
		t.Errorf("ServiceAccount %s %v, pods use %s", sa.Name, sa.Annotations, pod.ServiceAccountName)
	}
	var svc corev1.Service
	decode(t, byK["Service"], &svc)
	if svc.Spec.Ports[0].Port != 9443 || svc.Spec.Ports[0].TargetPort != intstr.FromString("metrics") || svc.Annotations["example.test/metrics"] != "yes" {
		t.Errorf("metrics Service %+v %v", svc.Spec.Ports, svc.Annotations)
	}
	if sm := byK["ServiceMonitor"]; sm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
	}
}

// managerFlags builds a flag set with the manager's own flags, read from cmd/manager/main.go
// (every flag.<Type>("name", ...) call), and the zap logging flags it binds.
func managerFlags(t *testing.T) *flag.FlagSet {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), path(t, "cmd/manager/main.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	n := 0
	ast.Inspect(file, func(node ast.Node) bool {
		call, ok := node.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "flag" {
			return true
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		name, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatal(err)
		}
		switch sel.Sel.Name {
		case "String":
			fs.String(name, "", "")
		case "Bool":
			fs.Bool(name, false, "")
		case "Int":
			fs.Int(name, 0, "")
		case "Duration":
			fs.Duration(name, 0, "")
		default:
			t.Fatalf("cmd/manager/main.go: flag.%s(%q): teach this test the type", sel.Sel.Name, name)
		}
		n++
		return true
	})
	if n == 0 {
		t.Fatal("found no flags in cmd/manager/main.go")
	}
	opts := zap.Options{}
	opts.BindFlags(fs)
	return fs
}

// Every argument the chart passes is a flag of the manager, with a value it accepts: a
// renamed flag would otherwise crash-loop the operator only on a real cluster.
func TestManagerAcceptsTheRenderedArguments(t *testing.T) {
	h := newHelm(t)
	for name, args := range map[string][]string{
		"defaults":       nil,
		"custom":         {"--values", path(t, "test/chart/testdata/custom-values.yaml")},
		"disabled":       {"--set", "metrics.enabled=false,leaderElection.enabled=false"},
		"custom metrics": {"--set", "customMetrics.enabled=true"},
	} {
		t.Run(name, func(t *testing.T) {
			var dep appsv1.Deployment
			decode(t, byKindAll(render(t, h, testNamespace, args...))["Deployment"][0], &dep)
			fs := managerFlags(t)
			if err := fs.Parse(dep.Spec.Template.Spec.Containers[0].Args); err != nil {
				t.Fatalf("the manager refuses %v: %v", dep.Spec.Template.Spec.Containers[0].Args, err)
			}
			if fs.NArg() != 0 {
				t.Errorf("positional arguments %v", fs.Args())
			}
		})
	}
}

// values.schema.json refuses bad values before anything is rendered, saying which value and why.
func TestSchemaRejectsInvalidValues(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"empty image repository", []string{"--set", "image.repository="}, "at '/image/repository': minLength: got 0, want 1"},
		{"replicaCount as a word", []string{"--set-string", "replicaCount=two"}, "at '/replicaCount': got string, want integer"},
		{"negative replicaCount", []string{"--set", "replicaCount=-1"}, "at '/replicaCount': minimum"},
		{"unknown pull policy", []string{"--set", "image.pullPolicy=Sometimes"}, "at '/image/pullPolicy': value must be one of"},
		{"misspelt top-level key", []string{"--set", "replicas=3"}, "additional properties 'replicas' not allowed"},
		{"misspelt nested key", []string{"--set", "metrics.serviceMonitor.enable=true"}, "at '/metrics/serviceMonitor': additional properties 'enable' not allowed"},
		{"bad log level", []string{"--set", "controller.logLevel=verbose"}, "at '/controller/logLevel': value must be one of"},
		{"bad Go duration", []string{"--set", "controller.kafkaTimeout=15 seconds"}, "at '/controller/kafkaTimeout'"},
		{"bad Prometheus duration", []string{"--set", "metrics.serviceMonitor.interval=30sec"}, "at '/metrics/serviceMonitor/interval'"},
		{"metrics port out of range", []string{"--set", "metrics.service.port=70000"}, "at '/metrics/service/port': maximum"},
		{"no image at all", []string{"--set", "image=null"}, "missing property 'image'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := h.run(append([]string{"template", releaseName, chartDir(t)}, tc.args...)...)
			if err == nil {
				t.Fatalf("helm accepted %v:\n%s", tc.args, out)
			}
			if !strings.Contains(errOut, "values don't meet the specifications of the schema") || !strings.Contains(errOut, tc.want) {
				t.Errorf("helm's error for %v does not say %q:\n%s", tc.args, tc.want, errOut)
			}
			if strings.TrimSpace(out) != "" {
				t.Errorf("helm rendered manifests anyway:\n%s", out)
			}
		})
	}
}

// The chart's CRDs are byte-identical copies of the generated ones in config/crd/bases.
func TestCRDIsTheGeneratedOne(t *testing.T) {
	gen, chart := path(t, "config/crd/bases"), filepath.Join(chartDir(t), "files", "crds")
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range entries {
			n = append(n, e.Name())
		}
		return n
	}
	if g, c := names(gen), names(chart); !slices.Equal(g, c) || len(g) == 0 {
		t.Fatalf("config/crd/bases holds %v, charts/tcpgateway/crds %v; copy them: make manifests", g, c)
	}
	for _, name := range names(gen) {
		want, err := os.ReadFile(filepath.Join(gen, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chart, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/tcpgateway/files/crds/%s differs from config/crd/bases/%s; run make manifests", name, name)
		}
	}
}

// readRules reads the rules of the one Role or ClusterRole in a YAML file of the repository.
func readRules(t *testing.T, rel string) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	objs := parseManifests(t, data)
	if len(objs) != 1 {
		t.Fatalf("%s holds %d objects, want 1", rel, len(objs))
	}
	var r rbacv1.ClusterRole
	decode(t, objs[0], &r)
	if len(r.Rules) == 0 {
		t.Fatalf("%s has no rules", rel)
	}
	return r.Rules
}

// The operator gets exactly the permissions generated from the controller's RBAC markers,
// and leader election exactly those of the kustomize base.
func TestRBACIsTheGeneratedOne(t *testing.T) {
	byK := byKind(t, render(t, newHelm(t), testNamespace))
	var cr rbacv1.ClusterRole
	decode(t, byK["ClusterRole"], &cr)
	if want := readRules(t, "config/rbac/role.yaml"); !reflect.DeepEqual(cr.Rules, want) {
		t.Errorf("the chart's ClusterRole rules differ from config/rbac/role.yaml (make manifests); copy its rules into charts/tcpgateway/templates/clusterrole.yaml\nchart: %+v\nwant:  %+v", cr.Rules, want)
	}
	// Secrets: get (the ones spec.kafka references, for the topic management, and the
	// rebalance key) and create (the rebalance key), never list or watch, which would let the
	// operator read every Secret of the cluster at once, nor update or delete.
	var secretVerbs []string
	for _, r := range cr.Rules {
		if slices.Contains(r.APIGroups, "") && (slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*")) {
			secretVerbs = append(secretVerbs, r.Verbs...)
		}
	}
	if !reflect.DeepEqual(secretVerbs, []string{"create", "get"}) {
		t.Errorf("the operator's verbs on Secrets are %v, want exactly [create get]", secretVerbs)
	}
	var role rbacv1.Role
	decode(t, byK["Role"], &role)
	if want := readRules(t, "config/rbac/leader_election_role.yaml"); !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("the chart's leader-election Role differs from config/rbac/leader_election_role.yaml\nchart: %+v\nwant:  %+v", role.Rules, want)
	}
}
