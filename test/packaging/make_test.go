package packaging

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/test/helmtest"
	"github.com/tcpgateway/tcpgateway/test/k8stest"
	"github.com/tcpgateway/tcpgateway/test/repo"
	"github.com/tcpgateway/tcpgateway/test/wait"
)

// The conventional targets of a kubebuilder project, listed by make help.
var deploymentTargets = []string{"install", "uninstall", "deploy", "undeploy", "run", "docker-build", "docker-push"}

// makeCmd runs make in the repository with args; env is added to the test's environment.
func makeCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", top}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func runMake(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := makeCmd(t, env, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestMakeHelpListsDeploymentTargets(t *testing.T) {
	help := runMake(t, nil, "help")
	for _, target := range deploymentTargets {
		if !strings.Contains(help, "\n  "+target+" ") {
			t.Errorf("make help does not list %s:\n%s", target, help)
		}
	}
}

// docker-build cannot run here (no Docker engine): its command line builds IMG from the
// Dockerfile at the top with the whole tree as context, which TestDockerfileBuildsLikeTheMakefile
// keeps building what make build builds; docker-push pushes that same IMG.
func TestDockerTargets(t *testing.T) {
	const img = "registry.example.test:5000/team/tcpgateway:v9"
	build := runMake(t, nil, "-n", "docker-build", "IMG="+img)
	if want := "docker build -t " + img + " -f Dockerfile .\n"; build != want {
		t.Errorf("make -n docker-build printed %q, want %q", build, want)
	}
	if _, err := os.Stat(filepath.Join(mustRoot(t), "Dockerfile")); err != nil {
		t.Error(err)
	}
	push := runMake(t, nil, "-n", "docker-push", "IMG="+img, "CONTAINER_TOOL=podman")
	if want := "podman push " + img + "\n"; push != want {
		t.Errorf("make -n docker-push printed %q, want %q", push, want)
	}
}

func mustRoot(t *testing.T) string {
	t.Helper()
	top, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// install, uninstall, deploy, undeploy and run against a real kube-apiserver, through the
// KUBECONFIG they are documented to use, with the pinned kubectl and helm they default to.
func TestDeploymentTargetsOnAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs etcd and kube-apiserver")
	}
	cfg := k8stest.Start(t) // with the CRD installed
	helmtest.Binary(t)      // built (or found) before make's hack/helm.sh looks for it
	env := []string{"KUBECONFIG=" + writeKubeconfig(t, cfg)}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	// Each API call has a bound of its own: one for the whole test would also have to cover
	// make run's compile, minutes on a loaded machine (a CI run ran out of a shared 5 minutes).
	ctx := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	const crdName = "tcpgateways.tcpgateway.io"
	crdGone := func() bool {
		err := c.Get(ctx(), types.NamespacedName{Name: crdName}, &apiextensionsv1.CustomResourceDefinition{})
		return apierrors.IsNotFound(err)
	}

	runMake(t, env, "uninstall")
	wait.For(t, time.Minute, "make uninstall to remove the CRD", crdGone)
	runMake(t, env, "uninstall", "ignore-not-found=true")

	runMake(t, env, "install")
	wait.For(t, time.Minute, "make install's CRD to be established", func() bool {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx(), types.NamespacedName{Name: crdName}, &crd); err != nil {
			return false
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established {
				return cond.Status == apiextensionsv1.ConditionTrue
			}
		}
		return false
	})
	runMake(t, env, "install") // again: an upgrade in place

	t.Run("Run", func(t *testing.T) { testMakeRun(t, env) })

	const img = "registry.example.test:5000/team/tcpgateway:v9"
	runMake(t, env, "deploy", "IMG="+img, "NAMESPACE=tcpgw-deploy")
	var dep appsv1.Deployment
	if err := c.Get(ctx(), types.NamespacedName{Namespace: "tcpgw-deploy", Name: "tcpgateway-operator"}, &dep); err != nil {
		t.Fatalf("make deploy: %v", err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != img {
		t.Errorf("make deploy IMG=%s: the operator runs %s", img, got)
	}
	runMake(t, env, "undeploy", "NAMESPACE=tcpgw-deploy")
	wait.For(t, time.Minute, "make undeploy to remove the operator's Deployment", func() bool {
		err := c.Get(ctx(), types.NamespacedName{Namespace: "tcpgw-deploy", Name: "tcpgateway-operator"}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err)
	})

	runMake(t, env, "uninstall")
	wait.For(t, time.Minute, "make uninstall to remove the CRD", crdGone)
}

// make run starts the manager from source against the current kubeconfig: it becomes
// healthy and ready, and stops on SIGTERM.
func testMakeRun(t *testing.T, env []string) {
	probe := freeAddr(t)
	cmd := makeCmd(t, env, "run", "RUN_ARGS=-metrics-bind-address=0 -health-probe-bind-address="+probe)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	hc := &http.Client{Timeout: 2 * time.Second}
	ok := func(path string) bool {
		resp, err := hc.Get("http://" + probe + path)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// go run compiles the manager first: minutes on a loaded 2-core machine.
	wait.For(t, 4*time.Minute, "make run's manager to be ready on "+probe, func() bool {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("make run exited: %v\n%s", err, out.String())
		default:
		}
		return ok("/readyz") && ok("/healthz")
	})
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
		stopped = true
	case <-time.After(time.Minute):
		t.Errorf("make run did not stop within a minute of SIGTERM\n%s", out.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeKubeconfig writes an admin kubeconfig for cfg (envtest's client certificate).
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "envtest.kubeconfig")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(fmt.Errorf("writing the kubeconfig: %w", err))
	}
	return file
}
