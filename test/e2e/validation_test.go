//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
)

// validGateway is a TCPGateway manifest that the API server accepts; the cases below break
// one thing each.
const validGateway = `apiVersion: tcpgateway.io/v1alpha1
kind: TCPGateway
metadata:
  name: NAME
  namespace: e2e-invalid
spec:
  image: example.test/tcpgateway:e2e
  auth:
    jwt:
      secretRef: {name: jwt}
      hs256Key: hs256.secret
      issuer: https://auth.example.com
      audience: chat
  kafka:
    bootstrapServers: ["127.0.0.1:9092"]
`

// Issue item 5: invalid TCPGateways are refused by the API server (OpenAPI schema and CEL
// rules of the CRD), with a message that says what to fix, through kubectl as users apply them.
func TestInvalidTCPGatewayRejectedByKubectl(t *testing.T) {
	s := shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kubectl := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(s.assets, "kubectl"),
			append([]string{"--kubeconfig", s.cluster.Kubeconfig}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := kubectl("", "create", "namespace", "e2e-invalid"); err != nil {
		t.Fatalf("kubectl create namespace: %v\n%s", err, out)
	}
	valid := strings.Replace(validGateway, "NAME", "valid", 1)
	if out, err := kubectl(valid, "apply", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("the valid manifest was refused: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name, manifest string
		want           []string // in kubectl's output
	}{
		{"port equals adminPort", valid + "  port: 9090\n  adminPort: 9090\n",
			[]string{`The TCPGateway "valid" is invalid`, "spec: Invalid value", "port and adminPort must differ"}},
		{"both jwt and webhook", strings.Replace(valid, "  kafka:", "    webhook: {url: http://auth.example/check}\n  kafka:", 1),
			[]string{"spec.auth: Invalid value", "set exactly one of auth.jwt or auth.webhook"}},
		{"jwt without issuer", strings.Replace(valid, "      issuer: https://auth.example.com\n", "", 1),
			[]string{"spec.auth.jwt: Invalid value", "set issuer (the token's iss must equal it) or skipIssuerCheck: true"}},
		{"broker port out of range", strings.Replace(valid, "127.0.0.1:9092", "127.0.0.1:99999", 1),
			[]string{"spec.kafka.bootstrapServers[0]", "port must be at most 65535"}},
		{"negative duration", valid + "  drain:\n    spreadWindow: -5s\n",
			[]string{"spec.drain.spreadWindow", "should match"}},
		{"route URL without scheme", valid + "  routes:\n  - {service: echo, url: echo.default.svc:8080}\n",
			[]string{"spec.routes[0].url", "must be an absolute http:// or https:// URL"}},
		{"name not a DNS label", strings.Replace(valid, "name: valid", "name: Chat_1", 1),
			[]string{"metadata.name must start with a letter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kubectl(tc.manifest, "apply", "-f", "-")
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("kubectl apply: err=%v, want a non-zero exit; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("kubectl's message lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// Nothing was stored: the only TCPGateway name used above was refused every time.
	err := s.k.Get(ctx, crclient.ObjectKey{Namespace: "e2e-invalid", Name: "valid"}, &v1alpha1.TCPGateway{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after the refusals, getting the TCPGateway: %v, want NotFound", err)
	}
}
