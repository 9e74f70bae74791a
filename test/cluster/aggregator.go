package cluster

import (
	"os"
	"path/filepath"

	"github.com/tcpgateway/tcpgateway/test/tlstest"
)

// aggregatorFlags are the kube-apiserver flags its aggregator needs to serve an APIService
// backed by a Service, as kubeadm sets them: a front-proxy CA (written to dir) whose client
// certificate the aggregator presents to the extension API server, which trusts the
// X-Remote-* headers only from a client certificate of that CA and name (the kube-apiserver
// publishes both in kube-system/extension-apiserver-authentication); and the "cluster" egress
// through the ServiceProxy, since nothing else routes a Service's cluster IP here.
func aggregatorFlags(dir string, proxy *ServiceProxy) (map[string]string, error) {
	ca, err := tlstest.NewCA("local-cluster front-proxy CA")
	if err != nil {
		return nil, err
	}
	client, err := ca.IssueLeaf(tlstest.Leaf{Client: true})
	if err != nil {
		return nil, err
	}
	d := filepath.Join(dir, "front-proxy")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"ca.crt": ca.PEM, "client.crt": client.CertPEM, "client.key": client.KeyPEM,
		"egress-selector.yaml": []byte(proxy.egressConfig()),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return map[string]string{
		"requestheader-client-ca-file":       filepath.Join(d, "ca.crt"),
		"requestheader-allowed-names":        client.Leaf.Subject.CommonName,
		"requestheader-username-headers":     "X-Remote-User",
		"requestheader-uid-headers":          "X-Remote-Uid",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"proxy-client-cert-file":             filepath.Join(d, "client.crt"),
		"proxy-client-key-file":              filepath.Join(d, "client.key"),
		"egress-selector-config-file":        filepath.Join(d, "egress-selector.yaml"),
	}, nil
}
