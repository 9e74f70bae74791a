// Package chart tests the Helm chart in charts/tcpgateway with the real helm binary
// (test/helmtest) and, outside -short, a real kube-apiserver and etcd (test/k8stest).
package chart

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/tcpgateway/tcpgateway/test/helmtest"
	"github.com/tcpgateway/tcpgateway/test/repo"
)

const (
	releaseName = "tcpgateway"
	// helmTimeout bounds one helm command; they take well under a second on loopback.
	helmTimeout = 60 * time.Second
)

// path returns the absolute path of a file of the repository.
func path(t testing.TB, rel string) string {
	t.Helper()
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(top, filepath.FromSlash(rel))
}

func chartDir(t testing.TB) string { return path(t, "charts/tcpgateway") }

// helm runs the pinned helm binary in an environment of its own: its cache, configuration and
// data under a temporary directory, a kubeconfig that exists only when a test passes one, and
// an HTTP(S) proxy on a closed loopback port, so that any attempt to reach a non-loopback
// address fails at once instead of leaving the machine (Go never proxies loopback addresses,
// so the local kube-apiserver stays reachable).
type helm struct {
	bin string
	env []string
}

func newHelm(t testing.TB) *helm {
	t.Helper()
	bin := helmtest.Binary(t)
	home := t.TempDir()
	env := []string{}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "HELM_"), name == "KUBECONFIG",
			strings.EqualFold(name, "HTTP_PROXY"), strings.EqualFold(name, "HTTPS_PROXY"),
			strings.EqualFold(name, "NO_PROXY"), strings.EqualFold(name, "ALL_PROXY"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-cluster.kubeconfig"),
		"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=",
	)
	return &helm{bin: bin, env: env}
}

// run runs helm with args and returns its standard output and error.
func (h *helm) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), helmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), errb.String(), err
}

// mustRun runs helm and fails the test when it fails.
func (h *helm) mustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := h.run(args...)
	if err != nil {
		t.Fatalf("helm %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// object is one rendered manifest: the YAML as helm printed it and its parsed form.
type object struct {
	raw []byte
	*unstructured.Unstructured
}

func (o object) String() string { return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName() }

// render runs `helm template` for the release in namespace with extra arguments (value
// flags) and parses what it prints.
func render(t testing.TB, h *helm, namespace string, args ...string) []object {
	t.Helper()
	out := h.mustRun(t, append([]string{"template", releaseName, chartDir(t), "--namespace", namespace}, args...)...)
	return parseManifests(t, []byte(out))
}

// parseManifests splits a multi-document YAML stream into objects, skipping empty documents.
func parseManifests(t testing.TB, data []byte) []object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("reading the rendered manifests: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("rendered manifest is not YAML: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, object{raw: doc, Unstructured: &unstructured.Unstructured{Object: m}})
	}
}

// byKind indexes objects by kind; it fails on two objects with one key. The chart's
// ClusterRoles and ClusterRoleBindings other than the operator's own ("<fullname>-manager")
// are keyed "<Kind>/<role>", e.g. "ClusterRole/edit".
func byKind(t testing.TB, objs []object) map[string]object {
	t.Helper()
	m := map[string]object{}
	for _, o := range objs {
		k := kindKey(o)
		if prev, dup := m[k]; dup {
			t.Fatalf("two objects with key %s: %s and %s", k, prev, o)
		}
		m[k] = o
	}
	return m
}

// clusterRoleRoles are the name suffixes of the chart's ClusterRoles beside the operator's.
var clusterRoleRoles = []string{"edit", "view", "metrics-auth", "metrics-reader"}

func kindKey(o object) string {
	if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
		for _, r := range clusterRoleRoles {
			if strings.HasSuffix(o.GetName(), "-"+r) {
				return o.GetKind() + "/" + r
			}
		}
	}
	return o.GetKind()
}

// decode decodes a rendered object into a typed one, refusing fields the type does not have:
// a misspelt field in a template fails here before any API server sees it.
func decode(t testing.TB, o object, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.raw, into); err != nil {
		t.Fatalf("%s does not decode strictly: %v\n%s", o, err, o.raw)
	}
}

// chartMeta reads Chart.yaml.
func chartMeta(t testing.TB) (version, appVersion, kubeVersion string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion  string `json:"appVersion"`
		Version     string `json:"version"`
		KubeVersion string `json:"kubeVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.AppVersion == "" || c.Version == "" {
		t.Fatal("Chart.yaml has no version or appVersion")
	}
	return c.Version, c.AppVersion, c.KubeVersion
}

// chartAppVersion reads appVersion from Chart.yaml, the default image tag.
func chartAppVersion(t testing.TB) string {
	t.Helper()
	_, v, _ := chartMeta(t)
	return v
}

// chartVersion reads the chart's version from Chart.yaml.
func chartVersion(t testing.TB) string {
	t.Helper()
	v, _, _ := chartMeta(t)
	return v
}
