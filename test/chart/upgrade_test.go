package chart

import (
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// previousChart is the chart as released before the CRD became a template: version 0.1.0,
// the CRD in crds/ (which Helm installs once and never upgrades). It is `helm package` of
// charts/tcpgateway at commit d846fe1, committed rather than built from git history at test
// time so that the test runs the same in a shallow clone and cannot change with the history.
// That commit is the last 0.1.0 whose CRD lacks fields of today's (spec.tls among them), so
// the upgrade has something to add whatever else lands.
const previousChart = "test/chart/testdata/tcpgateway-0.1.0.tgz"

var gatewayGVK = schema.GroupVersionKind{Group: "tcpgateway.io", Version: "v1alpha1", Kind: "TCPGateway"}

// schemaPaths lists the property paths of a CRD's first version's schema, e.g. "spec.tls.secretRef".
func schemaPaths(t *testing.T, crd *unstructured.Unstructured) []string {
	t.Helper()
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if len(versions) == 0 {
		t.Fatalf("CRD without versions")
	}
	root, _, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema")
	var paths []string
	var walk func(prefix string, s map[string]any)
	walk = func(prefix string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for name, sub := range props {
			p := strings.TrimPrefix(prefix+"."+name, ".")
			paths = append(paths, p)
			walk(p, sub.(map[string]any))
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(prefix+"[]", items)
		}
	}
	walk("", root)
	slices.Sort(paths)
	return paths
}

// helm upgrade from the previous chart, whose CRD Helm installed from crds/ and never owned,
// to this one, which has the CRD as a template: helm refuses to adopt the unowned CRD unless
// told to with --take-ownership (the upgrade docs/operator.md gives); with it the CRD is
// upgraded in place — the schema then has the fields only the new version has — and the
// TCPGateways it holds stay. Later upgrades need no flag, and uninstall keeps CRD and
// TCPGateways.
func testUpgradeFromPrevious(t *testing.T, c client.Client, h *helm, kubeconfig string) {
	const ns = "tcpgw-upgrade"
	// A cluster that never had the CRD, as when 0.1.0 was first installed.
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	crd.SetName(crdName)
	if err := c.Delete(ctx(t), crd); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	waitFor(t, "CRD deleted", func() (bool, error) {
		_, err := get(t, c, crdGVK, "", crdName)
		return apierrors.IsNotFound(err), err
	})

	cluster := []string{"--kubeconfig", kubeconfig, "--namespace", ns}
	out := h.mustRun(t, append([]string{"install", releaseName, path(t, previousChart), "--create-namespace"}, cluster...)...)
	if !strings.Contains(out, "CHART VERSION") && !strings.Contains(out, "STATUS: deployed") {
		t.Fatalf("helm install of the previous chart:\n%s", out)
	}
	waitEstablished(t, c, crdName)
	old, err := get(t, c, crdGVK, "", crdName)
	if err != nil {
		t.Fatal(err)
	}
	oldPaths := schemaPaths(t, old)
	newPaths := schemaPaths(t, generatedCRD(t))
	var added []string
	for _, p := range newPaths {
		if !slices.Contains(oldPaths, p) {
			added = append(added, p)
		}
	}
	if !slices.Contains(added, "spec.tls") {
		t.Fatalf("the previous chart's CRD already has spec.tls, or the new one lacks it: the test cannot tell an upgraded CRD (added fields: %v)", added)
	}

	// A TCPGateway of the old schema: the one the old NOTES print.
	gw := notesTCPGateway(t, out)
	gw.SetNamespace(ns)
	if err := c.Create(ctx(t), gw); err != nil {
		t.Fatalf("creating the previous NOTES' TCPGateway: %v", err)
	}

	// Without --take-ownership helm will not adopt a CRD it did not create, and changes nothing.
	upgrade := append([]string{"upgrade", releaseName, chartDir(t)}, cluster...)
	_, errOut, err := h.run(upgrade...)
	if err == nil || !strings.Contains(errOut, "invalid ownership metadata") {
		t.Fatalf("helm upgrade without --take-ownership: %v\n%s", err, errOut)
	}
	if got, err := get(t, c, crdGVK, "", crdName); err != nil || !slices.Equal(schemaPaths(t, got), oldPaths) {
		t.Fatalf("a refused upgrade changed the CRD: %v", err)
	}

	h.mustRun(t, append(slices.Clone(upgrade), "--take-ownership")...)
	waitFor(t, "the upgraded CRD served", func() (bool, error) {
		got, err := get(t, c, crdGVK, "", crdName)
		if err != nil {
			return false, err
		}
		return slices.Equal(schemaPaths(t, got), newPaths), nil
	})
	got, err := get(t, c, crdGVK, "", crdName)
	if err != nil {
		t.Fatal(err)
	}
	if a := got.GetAnnotations(); a["meta.helm.sh/release-name"] != releaseName || a["meta.helm.sh/release-namespace"] != ns || a["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the upgraded CRD's annotations %v: not the release's, or not kept", a)
	}
	// The new field is accepted: a field the old schema lacked would be refused by strict
	// field validation.
	tls := gw.DeepCopy()
	tls.SetName("with-tls")
	tls.SetResourceVersion("")
	if err := unstructured.SetNestedMap(tls.Object, map[string]any{"secretName": "chat-tls"}, "spec", "tls"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "spec.tls accepted", func() (bool, error) {
		err := dryRunCreate(t, c, tls.DeepCopy())
		return err == nil, err
	})
	if _, err := get(t, c, gatewayGVK, ns, gw.GetName()); err != nil {
		t.Errorf("the TCPGateway after the upgrade: %v", err)
	}

	// The next upgrade needs no flag.
	h.mustRun(t, append(slices.Clone(upgrade), "--reuse-values", "--set", "replicaCount=1")...)

	h.mustRun(t, append([]string{"uninstall", releaseName}, cluster...)...)
	if _, err := get(t, c, crdGVK, "", crdName); err != nil {
		t.Errorf("helm uninstall deleted the CRD: %v", err)
	}
	if _, err := get(t, c, gatewayGVK, ns, gw.GetName()); err != nil {
		t.Errorf("the TCPGateway after helm uninstall: %v", err)
	}
}
