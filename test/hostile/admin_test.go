package hostile

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcpgateway/tcpgateway/sdk/go/protocol/pb"
)

// Finding 3, open admin surface: the admin port listened on every interface and the headless
// Service published it, and /drain (any method) and /debug/pprof answered anyone, so any pod
// in the cluster could drain every gateway at once or profile it. Now a plain HTTP client on
// the network gets 404 there, the gateway stays ready and keeps serving clients, and the
// drain is reachable only through the control socket, mode 0600, inside the pod.
func TestAdminPortCannotDrainOrProfile(t *testing.T) {
	g := Start(t, Options{})
	hc := &http.Client{Timeout: 5 * time.Second}
	base := "http://" + g.AdminAddr
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/drain"},
		{http.MethodGet, "/drain"},
		{http.MethodGet, "/drain?wait=true"},
		{http.MethodPut, "/drain"},
		{http.MethodGet, "/debug/pprof/"},
		{http.MethodGet, "/debug/pprof/heap"},
		{http.MethodGet, "/debug/pprof/profile?seconds=1"},
		{http.MethodGet, "/debug/pprof/cmdline"},
	} {
		r, err := http.NewRequest(req.method, base+req.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", req.method, req.path, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s from the network = %d %q, want 404", req.method, req.path, resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	// Other methods on the read-only paths are refused, not served.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/status"} {
		resp, err := hc.Post(base+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s = %d, want 405", path, resp.StatusCode)
		}
	}

	if r, err := g.Readyz(); err != nil || r != "" {
		t.Errorf("readiness after the attack: %q (%v), want ready (not draining)", r, err)
	}
	c := g.Dial()
	defer c.Close()
	c.Handshake(g.Token("u1"), nil)
	c.Send(&pb.Frame{Seq: 1, Body: &pb.Frame_Request{Request: &pb.Request{Service: "echo", Method: "m", Payload: []byte("still serving")}}})
	if resp := c.Read().GetResponse(); resp == nil || !strings.HasSuffix(string(resp.Payload), "still serving") {
		t.Errorf("a client's request after the attack: %v", resp)
	}
	if strings.Contains(g.Log.String(), "drain started") {
		t.Error("the gateway logged a drain")
	}

	fi, err := os.Lstat(g.Config.Listen.Control)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket %s: mode %s, want a socket with 0600", g.Config.Listen.Control, fi.Mode())
	}
	// The preStop hook's command does drain it.
	if dr := g.PreStop(); !dr.OK() {
		t.Errorf("gateway drain -wait: exit %d %q (%v)", dr.ExitCode, dr.Output, dr.Err)
	}
	if code, err := g.WaitExit(10 * time.Second); err != nil || code != 0 {
		t.Errorf("after the drain: exit %d, %v", code, err)
	}
}
