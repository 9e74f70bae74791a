package chart

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// customMetrics.enabled: the APIServices name the Service in front of the operator's port,
// trust the CA whose certificate the operator serves for that Service's DNS name, and the
// operator may delegate authentication and authorization.
func TestCustomMetrics(t *testing.T) {
	h := newHelm(t)
	objs := render(t, h, testNamespace, "--set", "customMetrics.enabled=true")
	all := byKindAll(objs)
	var dep appsv1.Deployment
	decode(t, all["Deployment"][0], &dep)
	c := dep.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--custom-metrics-port=6443") || !slices.Contains(c.Args, "--custom-metrics-cert-dir=/etc/tcpgateway/custom-metrics-tls") {
		t.Errorf("args %v", c.Args)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "custom-metrics" && p.ContainerPort == 6443 }) {
		t.Errorf("ports %+v", c.Ports)
	}
	const secretName = "tcpgateway-custom-metrics-tls"
	if !slices.ContainsFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == secretName
	}) {
		t.Errorf("volumes %+v", dep.Spec.Template.Spec.Volumes)
	}

	var secret corev1.Secret
	for _, o := range all["Secret"] {
		decode(t, o, &secret)
	}
	if secret.Name != secretName {
		t.Fatalf("Secret %q, want %s", secret.Name, secretName)
	}
	caPEM, certPEM := secret.Data["ca.crt"], secret.Data["tls.crt"]
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("tls.crt is not PEM: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	host := "tcpgateway-custom-metrics." + testNamespace + ".svc"
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
		t.Errorf("the serving certificate does not verify for %s against ca.crt: %v", host, err)
	}

	var svc corev1.Service
	for _, o := range all["Service"] {
		if o.GetName() == "tcpgateway-custom-metrics" {
			decode(t, o, &svc)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.StrVal != "custom-metrics" ||
		svc.Spec.Selector["app.kubernetes.io/component"] != "operator" {
		t.Errorf("Service %+v", svc.Spec)
	}
	var versions []string
	for _, o := range all["APIService"] {
		spec := o.Object["spec"].(map[string]any)
		versions = append(versions, spec["version"].(string))
		ref := spec["service"].(map[string]any)
		if spec["group"] != "custom.metrics.k8s.io" || ref["name"] != svc.Name || ref["namespace"] != testNamespace || ref["port"] != float64(443) {
			t.Errorf("APIService %s: %+v", o.GetName(), spec)
		}
		if ca, err := base64.StdEncoding.DecodeString(spec["caBundle"].(string)); err != nil || string(ca) != string(caPEM) {
			t.Errorf("APIService %s caBundle is not the Secret's ca.crt (%v)", o.GetName(), err)
		}
		if spec["insecureSkipTLSVerify"] != nil {
			t.Errorf("APIService %s skips TLS verification", o.GetName())
		}
	}
	slices.Sort(versions)
	if !slices.Equal(versions, []string{"v1beta1", "v1beta2"}) {
		t.Errorf("APIService versions %v", versions)
	}

	roles := map[string]string{}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range all[kind] {
			var b rbacv1.RoleBinding // the same fields as a ClusterRoleBinding's
			decode(t, o, &b)
			if len(b.Subjects) == 1 && b.Subjects[0].Name == "tcpgateway-operator" {
				roles[b.RoleRef.Name] = b.Namespace
			}
		}
	}
	if ns, ok := roles["system:auth-delegator"]; !ok || ns != "" {
		t.Errorf("no ClusterRoleBinding to system:auth-delegator: %v", roles)
	}
	if ns := roles["extension-apiserver-authentication-reader"]; ns != "kube-system" {
		t.Errorf("no RoleBinding in kube-system to extension-apiserver-authentication-reader: %v", roles)
	}
}
