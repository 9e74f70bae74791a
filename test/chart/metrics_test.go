package chart

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The metrics RBAC: the operator may create TokenReviews and SubjectAccessReviews (nothing
// else), metrics-reader grants get on /metrics only, and metrics.readers are bound to it.
func TestMetricsRBAC(t *testing.T) {
	h := newHelm(t)
	byK := byKind(t, render(t, h, testNamespace, "--set-json", `metrics.readers=[{"kind":"ServiceAccount","name":"prometheus","namespace":"monitoring"},{"kind":"Group","name":"scrapers"}]`))
	var auth, reader rbacv1.ClusterRole
	decode(t, byK["ClusterRole/metrics-auth"], &auth)
	decode(t, byK["ClusterRole/metrics-reader"], &reader)
	wantAuth := []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
	if !reflect.DeepEqual(auth.Rules, wantAuth) {
		t.Errorf("metrics-auth rules %+v", auth.Rules)
	}
	if want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}; !reflect.DeepEqual(reader.Rules, want) {
		t.Errorf("metrics-reader rules %+v", reader.Rules)
	}
	var sa corev1.ServiceAccount
	decode(t, byK["ServiceAccount"], &sa)
	var authBinding, readerBinding rbacv1.ClusterRoleBinding
	decode(t, byK["ClusterRoleBinding/metrics-auth"], &authBinding)
	decode(t, byK["ClusterRoleBinding/metrics-reader"], &readerBinding)
	if authBinding.RoleRef.Name != auth.Name || !reflect.DeepEqual(authBinding.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: testNamespace}}) {
		t.Errorf("metrics-auth binding %+v %+v", authBinding.RoleRef, authBinding.Subjects)
	}
	wantReaders := []rbacv1.Subject{
		{Kind: "ServiceAccount", Name: "prometheus", Namespace: "monitoring"},
		{Kind: "Group", Name: "scrapers", APIGroup: rbacv1.GroupName},
	}
	if readerBinding.RoleRef.Name != reader.Name || !reflect.DeepEqual(readerBinding.Subjects, wantReaders) {
		t.Errorf("metrics-reader binding %+v %+v", readerBinding.RoleRef, readerBinding.Subjects)
	}
	// No reader binding without readers; no metrics RBAC for plain HTTP.
	if _, found := byKind(t, render(t, h, testNamespace))["ClusterRoleBinding/metrics-reader"]; found {
		t.Error("a metrics-reader binding without metrics.readers")
	}
	insecure := byKind(t, render(t, h, testNamespace, "--set", "metrics.secure=false"))
	for _, k := range []string{"ClusterRole/metrics-auth", "ClusterRole/metrics-reader", "ClusterRoleBinding/metrics-auth"} {
		if _, found := insecure[k]; found {
			t.Errorf("%s with metrics.secure=false", k)
		}
	}
	var dep appsv1.Deployment
	decode(t, insecure["Deployment"], &dep)
	c := dep.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--metrics-secure=false") || !slices.Contains(c.Args, "--metrics-bind-address=:8080") || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("metrics.secure=false: args %v ports %+v", c.Args, c.Ports)
	}

	// certSecret: mounted read-only, its two keys only, and named to the manager.
	decode(t, byKind(t, render(t, h, testNamespace, "--set", "metrics.certSecret=metrics-tls"))["Deployment"], &dep)
	pod := dep.Spec.Template.Spec
	c = pod.Containers[0]
	if !slices.Contains(c.Args, "--metrics-cert-dir=/etc/tcpgateway/metrics-tls") ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/tcpgateway/metrics-tls" || !c.VolumeMounts[0].ReadOnly ||
		len(pod.Volumes) != 1 || pod.Volumes[0].Secret == nil || pod.Volumes[0].Secret.SecretName != "metrics-tls" || len(pod.Volumes[0].Secret.Items) != 2 {
		t.Errorf("certSecret: args %v mounts %+v volumes %+v", c.Args, c.VolumeMounts, pod.Volumes)
	}

	for _, args := range [][]string{
		{"--set", "metrics.secure=false,metrics.certSecret=x"},
		{"--set", "metrics.enabled=false", "--set-json", `metrics.readers=[{"kind":"Group","name":"g"}]`},
	} {
		_, errOut, err := h.run(append([]string{"template", releaseName, chartDir(t)}, args...)...)
		if err == nil || !strings.Contains(errOut, "metrics.certSecret and metrics.readers need metrics.enabled and metrics.secure") {
			t.Errorf("%v: %v %s", args, err, errOut)
		}
	}
	_, errOut, err := h.run("template", releaseName, chartDir(t), "--set-json", `metrics.readers=[{"kind":"Robot","name":"r"}]`)
	if err == nil || !strings.Contains(errOut, "at '/metrics/readers/0/kind'") {
		t.Errorf("reader of kind Robot: %v %s", err, errOut)
	}
}

// freeAddr is a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// buildManager builds cmd/manager into a temporary directory.
func buildManager(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "manager")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir = path(t, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/manager: %v\n%s", err, out)
	}
	return bin
}

// saToken asks the API server for a token of a ServiceAccount (TokenRequest).
func saToken(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx(t), name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

func ptrTo[T any](v T) *T { return &v }

// The operator's metrics, as the chart deploys it: the real manager binary runs with the
// arguments the chart renders, as the chart's ServiceAccount (a token from the API server,
// so every call it makes is judged by the chart's RBAC), against the real API server, whose
// TokenReview and SubjectAccessReview authenticate and authorize each scrape. A scrape
// without a token is refused with 401, one with a forged token with 500 (controller-runtime's
// answer when the TokenReview fails), one by a ServiceAccount that is not a metrics reader
// with 403, plain HTTP with 400; one by a ServiceAccount the chart binds through
// metrics.readers gets them, the operator's own among them.
func testSecureMetrics(t *testing.T, cfg *rest.Config, c client.Client, h *helm, kubeconfig string) {
	const ns, release = "tcpgw-metrics", "metrics"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	values := []string{"--set-json", `metrics.readers=[{"kind":"ServiceAccount","name":"scraper","namespace":"` + ns + `"}]`}
	// --take-ownership: the CRD was kept by an earlier test's release.
	h.mustRun(t, append([]string{"install", release, chartDir(t), "--kubeconfig", kubeconfig, "--namespace", ns, "--create-namespace", "--take-ownership"}, values...)...)
	t.Cleanup(func() { _, _, _ = h.run("uninstall", release, "--kubeconfig", kubeconfig, "--namespace", ns) })
	for _, name := range []string{"scraper", "stranger"} {
		if err := c.Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	var dep appsv1.Deployment
	rendered := h.mustRun(t, append([]string{"template", release, chartDir(t), "--namespace", ns}, values...)...)
	decode(t, byKind(t, parseManifests(t, []byte(rendered)))["Deployment"], &dep)
	// The rendered object is the installed one (helm template with the same release and values).
	pod := dep.Spec.Template.Spec
	operatorKC := filepath.Join(t.TempDir(), "operator.kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["operator"] = &clientcmdapi.AuthInfo{Token: saToken(t, cs, ns, pod.ServiceAccountName)}
	kc.Contexts["operator"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "operator"}
	kc.CurrentContext = "operator"
	if err := clientcmd.WriteToFile(*kc, operatorKC); err != nil {
		t.Fatal(err)
	}

	metricsAddr := freeAddr(t)
	var args []string
	for _, a := range pod.Containers[0].Args {
		switch {
		case strings.HasPrefix(a, "--metrics-bind-address="):
			if a != "--metrics-bind-address=:8443" {
				t.Fatalf("the chart binds the metrics to %s", a)
			}
			a = "--metrics-bind-address=" + metricsAddr
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			a = "--health-probe-bind-address=" + freeAddr(t)
		}
		args = append(args, a)
	}
	if !slices.Contains(args, "--metrics-secure=true") {
		t.Fatalf("the chart's arguments %v do not ask for secure metrics", args)
	}
	logPath := filepath.Join(t.TempDir(), "manager.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildManager(t), append(args, "--kubeconfig="+operatorKC)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("manager log:\n%s", data)
		}
	})

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the manager's self-signed certificate
		Proxy:           nil,
	}}
	scrape := func(scheme, token string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, scheme+"://"+metricsAddr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	waitFor(t, "the manager's metrics endpoint", func() (bool, error) {
		select {
		case <-exited:
			t.Fatal("the manager exited")
		default:
		}
		_, _, err := scrape("https", "")
		return err == nil, err
	})

	scraper, stranger := saToken(t, cs, ns, "scraper"), saToken(t, cs, ns, "stranger")
	for _, tc := range []struct {
		who, scheme, token string
		status             int
	}{
		{"no token", "https", "", http.StatusUnauthorized},
		// controller-runtime's filter answers a token the TokenReview rejects with 500
		// "Authentication failed" (it cannot tell that from a failed review); refused all the same.
		{"a token the API server did not issue", "https", "not-a-token", http.StatusInternalServerError},
		{"a ServiceAccount without metrics-reader", "https", stranger, http.StatusForbidden},
		{"plain HTTP with the reader's token", "http", scraper, http.StatusBadRequest},
		{"the ServiceAccount of metrics.readers", "https", scraper, http.StatusOK},
	} {
		var code int
		var body string
		// RBAC reaches the authorizer's cache within moments of the install.
		waitFor(t, fmt.Sprintf("%s answered %d", tc.who, tc.status), func() (bool, error) {
			var err error
			code, body, err = scrape(tc.scheme, tc.token)
			return code == tc.status, err
		})
		if tc.status != http.StatusOK {
			if strings.Contains(body, "controller_runtime_") {
				t.Errorf("%s got metrics with status %d", tc.who, code)
			}
			continue
		}
		for _, want := range []string{
			`tcpgw_operator_topic_operations_total{operation="ensure",result="ok"} 0`,
			"controller_runtime_reconcile_total",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the metrics lack %q", want)
			}
		}
	}
}
