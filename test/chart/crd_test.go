package chart

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// generatedCRD reads the CRD controller-gen writes to config/crd/bases.
func generatedCRD(t testing.TB) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path(t, "config/crd/bases/tcpgateway.io_tcpgateways.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// The CRD the chart renders is the generated one, to the last schema field, with the chart's
// labels and, unless crds.keep=false, helm.sh/resource-policy: keep.
func TestCRDTemplate(t *testing.T) {
	h := newHelm(t)
	want := generatedCRD(t)
	for _, tc := range []struct {
		args []string
		keep bool
	}{{nil, true}, {[]string{"--set", "crds.keep=false"}, false}} {
		crd := byKind(t, render(t, h, testNamespace, tc.args...))["CustomResourceDefinition"]
		commonLabels(t, crd)
		if !reflect.DeepEqual(crd.Object["spec"], want.Object["spec"]) {
			t.Errorf("%v: the rendered CRD's spec differs from config/crd/bases (numbers or strings changed by the template?)", tc.args)
		}
		if crd.GetName() != want.GetName() {
			t.Errorf("CRD name %s", crd.GetName())
		}
		wantAnn := maps.Clone(want.GetAnnotations())
		if tc.keep {
			wantAnn["helm.sh/resource-policy"] = "keep"
		}
		if got := crd.GetAnnotations(); !maps.Equal(got, wantAnn) {
			t.Errorf("%v: CRD annotations %v, want %v", tc.args, got, wantAnn)
		}
	}
}

// helm refuses a cluster older than the minimum the project claims (README: Kubernetes
// 1.31+, for the CEL IP/CIDR libraries of the CRD's rules) and accepts the pre-release
// versions managed clusters report.
func TestKubeVersion(t *testing.T) {
	_, _, kubeVersion := chartMeta(t)
	if kubeVersion != ">= 1.31.0-0" {
		t.Errorf("Chart.yaml kubeVersion %q, want >= 1.31.0-0", kubeVersion)
	}
	readme, err := os.ReadFile(path(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "Kubernetes 1.31+") {
		t.Error("README.md no longer claims Kubernetes 1.31+: change Chart.yaml's kubeVersion with it")
	}
	h := newHelm(t)
	for _, old := range []string{"1.30.14", "v1.30.0-eks-1234"} {
		out, errOut, err := h.run("template", releaseName, chartDir(t), "--kube-version", old)
		if err == nil || !strings.Contains(errOut, "chart requires kubeVersion: >= 1.31.0-0 which is incompatible with Kubernetes") {
			t.Errorf("helm template --kube-version %s: %v\n%s%s", old, err, errOut, out)
		}
	}
	for _, ok := range []string{"1.31.0", "v1.31.4-eks-a737599", "v1.37.2-gke.100"} {
		h.mustRun(t, "template", releaseName, chartDir(t), "--kube-version", ok)
	}
}

// The aggregated roles: edit (aggregated into admin and edit) manages TCPGateways and their
// scale but only reads their status, which the operator owns; view (aggregated into view)
// reads. The API server test checks that the built-in roles really gain them.
func TestAggregatedRoles(t *testing.T) {
	byK := byKind(t, render(t, newHelm(t), testNamespace))
	edit, view := byK["ClusterRole/edit"], byK["ClusterRole/view"]
	if edit.Unstructured == nil || view.Unstructured == nil {
		t.Fatalf("no edit or view ClusterRole: %v", slices.Collect(maps.Keys(byK)))
	}
	if edit.GetName() != "tcpgateway-edit" || view.GetName() != "tcpgateway-view" {
		t.Errorf("names %s %s", edit.GetName(), view.GetName())
	}
	for o, labels := range map[*unstructured.Unstructured][]string{
		edit.Unstructured: {"rbac.authorization.k8s.io/aggregate-to-admin", "rbac.authorization.k8s.io/aggregate-to-edit"},
		view.Unstructured: {"rbac.authorization.k8s.io/aggregate-to-view"},
	} {
		for _, l := range labels {
			if o.GetLabels()[l] != "true" {
				t.Errorf("%s lacks label %s=true: %v", o.GetName(), l, o.GetLabels())
			}
		}
	}
	if view.GetLabels()["rbac.authorization.k8s.io/aggregate-to-edit"] != "" {
		t.Error("view aggregated into edit")
	}
	if !hasAccess(t, edit, "tcpgateways", "create", "delete", "deletecollection", "patch", "update", "get", "list", "watch") ||
		!hasAccess(t, edit, "tcpgateways/scale", "patch", "update", "get") ||
		!hasAccess(t, view, "tcpgateways", "get", "list", "watch") || !hasAccess(t, view, "tcpgateways/status", "get") {
		t.Error("missing verbs")
	}
	for _, r := range []object{edit, view} {
		if hasAccess(nil, r, "tcpgateways/status", "update") || hasAccess(nil, r, "tcpgateways/status", "patch") {
			t.Errorf("%s may write the status", r.GetName())
		}
	}
	for _, v := range []string{"create", "update", "patch", "delete"} {
		if hasAccess(nil, view, "tcpgateways", v) {
			t.Errorf("view may %s", v)
		}
	}
	for _, o := range render(t, newHelm(t), testNamespace, "--set", "aggregatedRoles.enabled=false") {
		if k := kindKey(o); k == "ClusterRole/edit" || k == "ClusterRole/view" {
			t.Errorf("%s with aggregatedRoles.enabled=false", o)
		}
	}
}

// hasAccess reports whether a rendered (Cluster)Role grants every verb on a resource of
// tcpgateway.io; with t non-nil it reports each missing verb.
func hasAccess(t testing.TB, role object, resource string, verbs ...string) bool {
	var r struct {
		Rules []struct {
			APIGroups, Resources, Verbs []string
		}
	}
	if err := yaml.Unmarshal(role.raw, &r); err != nil {
		panic(err)
	}
	ok := true
	for _, v := range verbs {
		granted := false
		for _, rule := range r.Rules {
			if slices.Contains(rule.APIGroups, "tcpgateway.io") && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, v) {
				granted = true
			}
		}
		if !granted {
			ok = false
			if t != nil {
				t.Errorf("%s does not grant %s on %s", role.GetName(), v, resource)
			}
		}
	}
	return ok
}
