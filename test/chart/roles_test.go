package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/test/k8stest"
)

// startRoleAggregation runs the real kube-controller-manager with only its
// clusterrole-aggregation controller (envtest runs no controllers), until the test ends.
func startRoleAggregation(t *testing.T, kubeconfig string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "kube-controller-manager.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(k8stest.Assets(t), "kube-controller-manager"),
		"--kubeconfig="+kubeconfig, "--leader-elect=false", "--controllers=clusterrole-aggregation",
		"--secure-port=0", "--use-service-account-credentials=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		_ = logf.Close()
		if t.Failed() {
			if data, err := os.ReadFile(logPath); err == nil {
				t.Logf("kube-controller-manager log:\n%s", data)
			}
		}
	})
}

// The chart's edit and view ClusterRoles reach Kubernetes' built-in user-facing roles through
// the real clusterrole-aggregation controller, and a user bound to edit or view in a
// namespace gets exactly the access intended there, as the API server's authorizer (RBAC)
// answers SubjectAccessReviews.
func testAggregatedRoles(t *testing.T, c client.Client, h *helm, kubeconfig string) {
	const ns, team = "tcpgw-roles", "team-a"
	// The CRD was kept by the upgrade test's release, now uninstalled: a new release adopts it
	// with --take-ownership (as test/e2e and hack/demo.sh do with the CRD their cluster
	// starts with).
	h.mustRun(t, "install", "roles", chartDir(t), "--kubeconfig", kubeconfig, "--namespace", ns, "--create-namespace", "--take-ownership")
	startRoleAggregation(t, kubeconfig)

	for _, builtin := range []string{"admin", "edit", "view"} {
		waitFor(t, "ClusterRole "+builtin+" aggregating the TCPGateway rules", func() (bool, error) {
			var cr rbacv1.ClusterRole
			if err := c.Get(ctx(t), client.ObjectKey{Name: builtin}, &cr); err != nil {
				return false, err
			}
			return slices.ContainsFunc(cr.Rules, func(r rbacv1.PolicyRule) bool {
				return slices.Contains(r.APIGroups, "tcpgateway.io") && slices.Contains(r.Resources, "tcpgateways")
			}), nil
		})
	}

	if err := c.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team}}); err != nil {
		t.Fatal(err)
	}
	for user, role := range map[string]string{"alice": "edit", "bob": "view", "carol": "admin"} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: team},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
		}
		if err := c.Create(ctx(t), rb); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		user, verb, resource, namespace string
		allowed                         bool
	}{
		{"alice", "create", "tcpgateways", team, true},
		{"alice", "delete", "tcpgateways", team, true},
		{"alice", "patch", "tcpgateways/scale", team, true},
		{"alice", "get", "tcpgateways/status", team, true},
		{"alice", "update", "tcpgateways/status", team, false},
		{"alice", "create", "tcpgateways", "default", false},
		{"carol", "update", "tcpgateways", team, true},
		{"carol", "patch", "tcpgateways/status", team, false},
		{"bob", "list", "tcpgateways", team, true},
		{"bob", "watch", "tcpgateways", team, true},
		{"bob", "get", "tcpgateways/scale", team, true},
		{"bob", "create", "tcpgateways", team, false},
		{"bob", "update", "tcpgateways/scale", team, false},
	} {
		resource, sub, _ := strings.Cut(tc.resource, "/")
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: tc.user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tc.namespace, Verb: tc.verb, Group: "tcpgateway.io", Resource: resource, Subresource: sub,
			},
		}}
		// RoleBindings reach the authorizer's cache within moments; wait for the expected answer.
		deadline := time.Now().Add(waitTimeout)
		for {
			if err := c.Create(ctx(t), sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed == tc.allowed || time.Now().After(deadline) {
				break
			}
			sar.Status = authorizationv1.SubjectAccessReviewStatus{}
			time.Sleep(100 * time.Millisecond)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s %s %s in %s: allowed=%v, want %v (%s)", tc.user, tc.verb, tc.resource, tc.namespace, sar.Status.Allowed, tc.allowed, sar.Status.Reason)
		}
	}
	h.mustRun(t, "uninstall", "roles", "--kubeconfig", kubeconfig, "--namespace", ns)
}
