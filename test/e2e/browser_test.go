//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/tcpgateway/tcpgateway/api/v1alpha1"
	"github.com/tcpgateway/tcpgateway/gateway/push"
	"github.com/tcpgateway/tcpgateway/test/browser"
)

// The browser's pushes during the rolling update: one every browserStreamEvery until the
// update is over (at most browserStreamMax).
const (
	browserStreamEvery = 50 * time.Millisecond
	browserStreamMax   = 6000 // 5 minutes' worth: more than rolloutTimeout
	browserConnect     = 30 * time.Second
)

// Issue 18, done when: a page in a real headless Chromium, its TypeScript SDK connected over
// WebSocket through the LB simulator to a TCPGateway with spec.websocket (its origin the only
// one allowed), survives a rolling update of the gateways (a new image tag: every pod replaced
// through its preStop drain) while pushes flow to its user: every push once and in order (0
// lost, 0 duplicates), each move a GOAWAY DRAINING followed by a COMPLETE resume of the same
// session on another pod, an ack-required push ACKED before and after, every pod ended by
// draining.
func TestBrowserSurvivesRollingUpdate(t *testing.T) {
	s := shared(t)
	const ns, name, user = "e2e-browser", "web", "browser-user"
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The page is served first: the TCPGateway allows its origin only.
	page := browser.Serve(t, browser.Config{})
	spec := s.gatewaySpec(3)
	spec.WebSocket = &v1alpha1.WebSocket{Enabled: true, AllowedOrigins: []string{page.Origin()}}
	gw, _ := s.apply(ctx, t, ns, name, spec)
	pods := s.waitPods(ctx, t, ns, "3 ready pods", func(pods map[string]*corev1.Pod) bool { return countReady(pods) == 3 })
	url := fmt.Sprintf("ws://%s:%d%s", gw.Status.Address, gw.Spec.WebSocket.Port, gw.Spec.WebSocket.Path)
	page.SetConfig(t, browser.Config{URL: url, Token: token(t, user, nil), ClientVersion: "e2e-browser", ReconnectInitialMs: 100, ReconnectMaxMs: 1000})

	s.awaitTopic(t, gw.Status.Kafka.DownlinkTopic)
	pctx, pcancel := context.WithTimeout(ctx, pushTimeout)
	pub, err := push.New(pctx, push.Options{Brokers: []string{s.brokers}, Topic: gw.Status.Kafka.DownlinkTopic, ReceiptsTopic: gw.Status.Kafka.ReceiptsTopic})
	pcancel()
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	tab := browser.Launch(t).Open(page.URL)
	st := tab.WaitState(t, browserConnect, "the page's first handshake", func(s browser.State) bool { return len(s.Connects) == 1 })
	session := st.Connects[0].SessionID
	if pods[st.Server()] == nil || st.Connects[0].UserID != user {
		t.Fatalf("first handshake %+v: want %s on one of the pods %s", st.Connects[0], user, podList(pods))
	}
	browser.AckPush(t, tab, pub, user, session, "ack-1")

	stop := make(chan struct{})
	type streamed struct {
		ids []string
		err error
	}
	done := make(chan streamed, 1)
	go func() {
		ids, err := browser.Stream(pub, user, "r-", browserStreamMax, browserStreamEvery, stop)
		done <- streamed{ids, err}
	}()
	tab.WaitState(t, browserConnect, "the first pushes of the stream", func(s browser.State) bool { return s.Has("r-009") })

	t0 := time.Now()
	old := uids(pods)
	tag := image + "-browser"
	s.patchGateway(ctx, t, ns, name, func(spec *v1alpha1.TCPGatewaySpec) { spec.Image = tag })
	pods = s.waitPods(ctx, t, ns, "every pod replaced and ready", func(pods map[string]*corev1.Pod) bool {
		for _, p := range pods {
			if old[p.UID] || !isReady(p) || p.Spec.Containers[0].Image != tag {
				return false
			}
		}
		return len(pods) == 3
	})
	s.waitStatefulSetSettled(ctx, t, ns, name, 3)
	took := time.Since(t0)
	close(stop)
	res := <-done
	if res.err != nil {
		t.Fatalf("pushing the stream: %v", res.err)
	}
	want := append([]string{"ack-1"}, res.ids...)
	tab.WaitState(t, settleTimeout, "every push of the stream", func(s browser.State) bool { return s.Has(want[len(want)-1]) })
	browser.AckPush(t, tab, pub, user, session, "ack-2")
	want = append(want, "ack-2")

	st, err = tab.State()
	if err != nil {
		t.Fatal(err)
	}
	diff := browser.Compare(st.IDs(), want)
	if !diff.OK() {
		t.Errorf("the page's pushes: %s", diff)
	}
	// Every pod was replaced, the page's among them: it moved at least once, each time on a
	// GOAWAY DRAINING, and resumed its session completely.
	if len(st.Disconnects) == 0 || len(st.Connects) != len(st.Disconnects)+1 {
		t.Errorf("the page saw %d handshakes and %d disconnects through the rolling update: want at least one move, each followed by a handshake", len(st.Connects), len(st.Disconnects))
	}
	for _, d := range st.Disconnects {
		if d.GoAway != "DRAINING" {
			t.Errorf("the page lost its connection with %+v, want only GOAWAY DRAINING", d)
		}
	}
	var servers []string
	for i, c := range st.Connects {
		servers = append(servers, c.ServerID)
		if i > 0 && (c.SessionID != session || c.Resume != "COMPLETE") {
			t.Errorf("handshake %d %+v: want session %s resumed COMPLETE", i, c, session)
		}
	}
	if last := st.Server(); pods[last] == nil || old[pods[last].UID] {
		t.Errorf("the page ends on %q, not one of the new pods %s", last, podList(pods))
	}
	for _, p := range st.Pushes {
		if p.AckRequired && (!p.Acked || p.AckError != "") {
			t.Errorf("push %+v asked for an ack the page did not write", p)
		}
	}
	terms := s.terminations(ns)
	if ended := termUIDs(terms); len(ended) != len(old) {
		t.Errorf("%d pods terminated, want the %d replaced", len(ended), len(old))
	}
	checkGraceful(t, terms)
	t.Logf("FIGURES browser rolling update: 3 pods replaced in %v; the page went through %s; %d pushes (%d streamed every %v), %d lost, %d duplicated; moves: %d",
		took.Round(100*time.Millisecond), strings.Join(servers, " -> "), len(st.Pushes), len(res.ids), browserStreamEvery, len(diff.Missing), len(diff.Repeated), len(st.Disconnects))
}
