package cluster

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// ServiceAccountMountPath is where a kubelet mounts a pod's service account token, CA and
// namespace.
const ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// serviceAccountTokenTTL is the lifetime of the tokens the agent requests; pods outliving it
// are not refreshed (test clusters are short-lived).
const serviceAccountTokenTTL = 3600

// APIServerAccess is how pods reach the API server with their service account, as the
// kubelet gives them: a bound token from the TokenRequest API and the cluster's CA.
type APIServerAccess struct {
	Host   string // https://127.0.0.1:port
	CAData []byte
}

// mountServiceAccount writes the pod's service account files into dir — token (bound to the
// pod, as a projected volume would hold), ca.crt and namespace — and, beside them, a
// kubeconfig using them. It returns the environment that points the process at them.
//
// A stand-in for in-cluster configuration: client-go reads the token from the fixed path
// ServiceAccountMountPath, which a process on this machine cannot have, so the agent sets
// KUBECONFIG (which client-go and controller-runtime consult first) to a file with the same
// credentials. KUBERNETES_SERVICE_HOST/PORT are set as a kubelet would, to the API server.
// The process therefore talks to the API server as system:serviceaccount:<ns>:<name>, with
// exactly the RBAC that account has.
func (a *NodeAgent) mountServiceAccount(ctx context.Context, pod *corev1.Pod, dir string) ([]string, error) {
	api := a.opts.APIServer
	if api == nil || !ptr.Deref(pod.Spec.AutomountServiceAccountToken, true) {
		return nil, nil
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](serviceAccountTokenTTL)}}
	sa := pod.Spec.ServiceAccountName
	if sa != "" {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	} else {
		// envtest's API server runs without the ServiceAccount admission plugin, which would
		// have set "default" (and added a projected token volume): the token of "default",
		// not bound to the pod, which the API server binds only to a pod naming the account.
		sa = "default"
	}
	tr, err := a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("serviceaccount %q not found: %w", sa, errNotYet)
	}
	if err != nil {
		return nil, fmt.Errorf("requesting a token for serviceaccount %q: %w", sa, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: api.Host, CertificateAuthorityData: api.CAData}
	kc.AuthInfos["serviceaccount"] = &clientcmdapi.AuthInfo{TokenFile: filepath.Join(dir, "token")}
	kc.Contexts["serviceaccount"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "serviceaccount", Namespace: pod.Namespace}
	kc.CurrentContext = "serviceaccount"
	kubeconfig, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{
		"token": []byte(tr.Status.Token), "ca.crt": api.CAData, "namespace": []byte(pod.Namespace), "kubeconfig": kubeconfig,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(api.Host)
	if err != nil {
		return nil, fmt.Errorf("API server address %q: %w", api.Host, err)
	}
	return []string{
		"KUBECONFIG=" + filepath.Join(dir, "kubeconfig"),
		"KUBERNETES_SERVICE_HOST=" + u.Hostname(),
		"KUBERNETES_SERVICE_PORT=" + u.Port(),
	}, nil
}
