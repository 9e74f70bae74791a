package browser

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tcpgateway/tcpgateway/test/repo"
)

// EnvChromium names a Chromium executable to use instead of hack/chromium.sh's.
const EnvChromium = "TCPGW_CHROMIUM"

// Bounds of the harness's own steps.
const (
	installTimeout = 10 * time.Minute // hack/chromium.sh on a cold cache: ~120 MB from apt
	launchTimeout  = time.Minute      // the browser process until its DevTools endpoint answers
	closeTimeout   = 10 * time.Second // every process of a closed browser gone
)

var (
	exeOnce sync.Once
	exePath string
	exeErr  error
)

// Executable returns the Chromium to run: $TCPGW_CHROMIUM when set (hack/test.sh sets it),
// otherwise the one hack/chromium.sh unpacks into the cache, fetched first when missing.
func Executable(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	exeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
		defer cancel()
		exePath, exeErr = repo.Script(ctx, nil, "chromium.sh")
	})
	if exeErr != nil {
		t.Fatalf("chromium: %v", exeErr)
	}
	return exePath
}

// flags are the command-line switches of every browser started here, on top of chromedp's
// defaults (headless, no first run, no background networking, no sync); each browser also
// gets a fresh profile folder of its own (Launch). The machine's network is closed: without
// the switches that stop background and component-update traffic, Chromium keeps dialling
// hosts it cannot reach. --no-sandbox: the tests run as root, where Chromium's sandbox refuses
// to start.
var flags = []chromedp.ExecAllocatorOption{
	chromedp.NoSandbox,
	chromedp.DisableGPU,
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("disable-domain-reliability", true),
}

// Browser is one Chromium process, with its own fresh profile. Closing it (done by the test's
// cleanup) ends the process and every child it started.
type Browser struct {
	t       testing.TB
	ctx     context.Context // the browser's first tab; Open makes more
	cancel  context.CancelFunc
	stderr  *lockedBuffer
	profile string // --user-data-dir: every process of this browser has it on its command line
}

// Launch starts a browser and waits until it answers on the DevTools protocol.
func Launch(t testing.TB) *Browser {
	t.Helper()
	exe := Executable(t)
	profile, err := os.MkdirTemp("", "tcpgw-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	opts := append(append(chromedp.DefaultExecAllocatorOptions[:0:0], chromedp.DefaultExecAllocatorOptions[:]...), flags...)
	opts = append(opts, chromedp.ExecPath(exe), chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(stderr), chromedp.WSURLReadTimeout(launchTimeout))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx, stderr: stderr, profile: profile, cancel: func() { cancel(); acancel() }}
	t.Cleanup(b.Close)
	// The first run starts the process (bounded by WSURLReadTimeout). It takes no deadline of
	// its own: the browser would end with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", exe, err, b.stderr.tail(30))
	}
	return b
}

// Close ends the browser: chromedp closes it through the protocol and waits for its main
// process; then every process still running with the browser's profile folder (a renderer or
// the zygote outliving it) is killed, and the folder removed. Idempotent.
func (b *Browser) Close() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	deadline := time.Now().Add(closeTimeout)
	for {
		left := b.pids()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.t.Errorf("browser processes %v still run %v after it closed", left, closeTimeout)
			break
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(pollEvery) // a killed process leaves /proc when its parent reaps it
	}
	_ = os.RemoveAll(b.profile)
}

// pids are the processes that run with the browser's profile folder: Chromium passes
// --user-data-dir to every child it starts.
func (b *Browser) pids() []int {
	want := []byte("--user-data-dir=" + b.profile + "\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(append(cmdline, 0), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Log is the browser's recent output (stdout and stderr), for failure messages.
func (b *Browser) Log() string { return b.stderr.tail(40) }

// Tab is one page of the browser.
type Tab struct {
	b   *Browser
	ctx context.Context
	URL string
}

// Open loads url in a new tab and waits for its load event.
func (b *Browser) Open(url string) *Tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	// The tab's first run opens it; like the browser's, it takes no deadline of its own.
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("opening a tab: %v\n%s", err, b.Log())
	}
	nctx, ncancel := context.WithTimeout(ctx, launchTimeout)
	defer ncancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("opening %s: %v\n%s", url, err, b.Log())
	}
	return &Tab{b: b, ctx: ctx, URL: url}
}

// Eval evaluates a JavaScript expression in the tab and decodes its value (by JSON) as T.
func Eval[T any](tab *Tab, timeout time.Duration, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tab.ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// lockedBuffer keeps the browser's output; chromedp writes it from its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 1<<20 { // a chatty browser: keep the start, which says why it failed
		return len(p), nil
	}
	return l.buf.Write(p)
}

// tail is the last n lines, less the D-Bus complaints of a browser started without a session
// bus (several at every start, none of them about the test).
func (l *lockedBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []string
	for line := range strings.SplitSeq(strings.TrimRight(l.buf.String(), "\n"), "\n") {
		if !strings.Contains(line, ":ERROR:dbus/") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
