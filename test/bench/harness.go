// Package bench compares the netpoll gateway with a goroutine-per-connection baseline
// (test/bench/baseline) speaking the same protocol, in one run on one machine: idle memory per
// connection, and throughput, latency and server CPU per request under a fixed offered load.
//
// Every process is real and separate: the harness builds cmd/gateway, the baseline,
// test/echobackend (the uplink backend) and tcpgwctl, starts each server with a generated
// configuration, drives it with `tcpgwctl bench` child processes and samples the server's
// /proc/<pid>/status (VmRSS) and /proc/<pid>/stat (utime+stime) at the instants the load tool
// announces on stderr ("bench: phase=..."). The test that runs it, TestCompare, is behind the
// "bench" build tag; docs/benchmarks.md has the command and the numbers.
package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server kinds under comparison.
const (
	Gateway  = "gateway"  // cmd/gateway: netpoll
	Baseline = "baseline" // test/bench/baseline: goroutine per connection on net
)

// Binaries are the programs a comparison runs.
type Binaries struct {
	Gateway, Baseline, Echo, Tcpgwctl string
}

// Build compiles the four programs of the module rooted at root into dir.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	b := Binaries{
		Gateway:  filepath.Join(dir, "gateway"),
		Baseline: filepath.Join(dir, "baseline"),
		Echo:     filepath.Join(dir, "echobackend"),
		Tcpgwctl: filepath.Join(dir, "tcpgwctl"),
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/gateway", "./test/bench/baseline/cmd/baseline", "./test/echobackend", "./cmd/tcpgwctl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return b, nil
}

// BuildGatewayVariant compiles cmd/gateway with one extra Go file (source, package main) added
// through `go build -overlay`, without touching the work tree: for trying settings such as
// netpoll's buffer sizes from an init function. The binary is dir/name.
func BuildGatewayVariant(ctx context.Context, root, dir, name, source string) (string, error) {
	extra := filepath.Join(dir, name+"_overlay.go")
	if err := os.WriteFile(extra, []byte(source), 0o600); err != nil {
		return "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(root, "cmd", "gateway", "zz_bench_"+name+".go"): extra},
	})
	if err != nil {
		return "", err
	}
	overlayFile := filepath.Join(dir, name+"_overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", overlayFile, "-o", bin, "./cmd/gateway")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", name, err, out)
	}
	return bin, nil
}

// codecFiles are where the protocol's Version is declared: sdk/go since the Go SDK became its
// own module, gateway/protocol before (reference commits predate the move).
var codecFiles = []string{"sdk/go/protocol/codec.go", "gateway/protocol/codec.go"}

// ProtocolVersion reads the protocol version that the source tree at src declares.
func ProtocolVersion(src string) (string, error) {
	for _, rel := range codecFiles {
		codec, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(rel)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		m := regexp.MustCompile(`(?m)^const Version = (\d+)$`).FindSubmatch(codec)
		if m == nil {
			return "", fmt.Errorf("no protocol Version in %s", rel)
		}
		return string(m[1]), nil
	}
	return "", fmt.Errorf("no codec.go at %s", strings.Join(codecFiles, " or "))
}

// BuildGatewayAt compiles cmd/gateway as it was at the git revision ref of the repository
// at root (extracted with git archive into dir/name-src: the work tree and the repository's
// worktree list are not touched) into dir/name, and describes what it speaks and reads: the
// protocol version to send it and the configuration template its strict loader accepts.
func BuildGatewayAt(ctx context.Context, root, dir, name, ref string) (Variant, string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", ref+"^{commit}").Output()
	if err != nil {
		return Variant{}, "", fmt.Errorf("git rev-parse %s: %w", ref, err)
	}
	commit := strings.TrimSpace(string(out))
	src := filepath.Join(dir, name+"-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return Variant{}, "", err
	}
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return Variant{}, "", fmt.Errorf("git archive %s: %w\n%s", commit, err, out)
	}
	v := Variant{Bin: filepath.Join(dir, name), Config: configYAML}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", v.Bin, "./cmd/gateway")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Variant{}, "", fmt.Errorf("go build %s at %s: %w\n%s", name, commit, err, out)
	}
	version, err := ProtocolVersion(src)
	if err != nil {
		return Variant{}, "", fmt.Errorf("%s: %w", commit, err)
	}
	v.BenchArgs = []string{"-protocol-version", version}
	files, err := filepath.Glob(filepath.Join(src, "gateway", "config", "*.go"))
	if err != nil {
		return Variant{}, "", err
	}
	var schema []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return Variant{}, "", err
		}
		schema = append(schema, b...)
	}
	for _, f := range newerConfig {
		if !bytes.Contains(schema, []byte(f.tag)) {
			v.Config = strings.Replace(v.Config, f.lines, "", 1)
			v.PprofOnAdmin = v.PprofOnAdmin || f.lines == pprofLine
		}
	}
	return v, commit, nil
}

// Proc is a started process; Stop ends it (SIGTERM, then SIGKILL) and waits.
type Proc struct {
	Name string
	Pid  int
	// Pprof is the base URL of a server's net/http/pprof handlers ("" if it has none).
	Pprof string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	done  chan struct{}
	err   error
}

// Nice is the niceness the harness runs servers, backend and load tool at (through nice(1),
// so that every thread has it): below 0, other work sharing the machine disturbs the
// measurement less. 0 runs them as they are. Negative values need root; without it nice(1)
// warns and runs the program at the normal priority.
var Nice = 0

// command is exec.CommandContext, through nice(1) when Nice is set.
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if Nice != 0 {
		if nice, err := exec.LookPath("nice"); err == nil {
			return exec.CommandContext(ctx, nice, append([]string{"-n", strconv.Itoa(Nice), bin}, args...)...)
		}
	}
	return exec.CommandContext(ctx, bin, args...)
}

// Start runs bin with args; its output is kept for error reports. The process is killed when
// ctx ends, and by Stop.
func Start(ctx context.Context, name, bin string, args ...string) (*Proc, error) {
	cmd := command(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	buf := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, Pid: cmd.Process.Pid, cmd: cmd, log: &buf.b, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Stop terminates the process: SIGTERM, SIGKILL after 10 s.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Output is what the process printed so far (truncated to the last 4 KiB).
func (p *Proc) Output() string {
	s := p.log.String()
	if len(s) > 4096 {
		s = "..." + s[len(s)-4096:]
	}
	return s
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 { // a noisy server must not eat the memory
		l.b.Reset()
	}
	return l.b.Write(p)
}

// waitListening waits until addr accepts connections or p exits.
func waitListening(p *Proc, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited (%v):\n%s", p.Name, err, p.Output())
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening on %s after %s:\n%s", p.Name, addr, limit, p.Output())
}

// FreeAddr returns a loopback address with a port nobody listens on right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// RSSKiB is the resident set of a process (VmRSS), in KiB.
func RSSKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on Linux
// (sysconf(_SC_CLK_TCK) is fixed at 100 for user space on every architecture Go supports).
const clockTick = 100

// CPUMicros is the CPU time a process used so far (utime + stime of all its threads), in µs.
func CPUMicros(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after its closing parenthesis are
	// state (3), ..., utime (14), stime (15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/pid/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/pid/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) * (1e6 / clockTick), nil
}

// CPUNanos is the CPU time a process's threads used so far, in ns: the sum of each live
// thread's se.sum_exec_runtime in /proc/<pid>/task/<tid>/sched, which the scheduler keeps to
// the nanosecond, where /proc/<pid>/stat rounds utime and stime down to 10 ms ticks (the noise
// of a ~0.2 s broadcast's CPU). A thread that exited takes its time with it; Go programs keep
// their threads. ok is false where the kernel has no sched files (no CONFIG_SCHED_DEBUG).
func CPUNanos(pid int) (ns int64, ok bool) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "sched"))
		if err != nil {
			continue // the thread exited meanwhile
		}
		found := false
		for line := range strings.SplitSeq(string(b), "\n") {
			rest, hit := strings.CutPrefix(line, "se.sum_exec_runtime")
			if !hit {
				continue
			}
			_, v, _ := strings.Cut(rest, ":")
			// Milliseconds with six decimals: parsed as an integer of nanoseconds.
			whole, frac, _ := strings.Cut(strings.TrimSpace(v), ".")
			ms, err1 := strconv.ParseInt(whole, 10, 64)
			frac = (frac + "000000")[:6]
			part, err2 := strconv.ParseInt(frac, 10, 64)
			if err1 != nil || err2 != nil {
				return 0, false
			}
			ns += ms*1e6 + part
			found = true
			break
		}
		if !found {
			return 0, false
		}
	}
	return ns, true
}

// MachineBusyMicros is the CPU time all processors spent outside idle since boot, from
// /proc/stat (user, nice, system, irq, softirq, steal), in µs.
func MachineBusyMicros() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		busy += v
	}
	return busy * (1e6 / clockTick), nil
}

// NetDrops returns the packets the kernel dropped because its per-CPU input backlog was full
// (/proc/net/softnet_stat, all CPUs; on loopback this happens when softirq processing falls
// behind) and the TCP segments retransmitted (/proc/net/snmp RetransSegs), since boot. Either
// one costs the connection concerned at least the 200 ms minimum retransmission timeout.
func NetDrops() (drops, retrans int64, err error) {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 16, 64)
		if err != nil {
			return 0, 0, err
		}
		drops += v
	}
	b, err = os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, 0, err
	}
	var names []string
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Tcp: ")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		for i, v := range strings.Fields(rest) {
			if i < len(names) && names[i] == "RetransSegs" {
				retrans, err = strconv.ParseInt(v, 10, 64)
				return drops, retrans, err
			}
		}
	}
	return drops, 0, errors.New("no Tcp RetransSegs in /proc/net/snmp")
}

// WaitQuiet waits, up to limit, for a second in which the whole machine is busy for less than
// maxCores (other sessions may share it), and returns the load of the last second measured.
func WaitQuiet(ctx context.Context, maxCores float64, limit time.Duration) float64 {
	deadline := time.Now().Add(limit)
	for {
		b0, err0 := MachineBusyMicros()
		t0 := time.Now()
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(time.Second):
		}
		b1, err1 := MachineBusyMicros()
		if err0 != nil || err1 != nil {
			return 0
		}
		cores := float64(b1-b0) / float64(time.Since(t0).Microseconds())
		if cores < maxCores || time.Now().After(deadline) {
			return cores
		}
	}
}

// Variant is a gateway binary other than the work tree's cmd/gateway.
type Variant struct {
	Bin string // takes -config, as cmd/gateway does
	// Config is the configuration template (configYAML if empty): an older gateway's strict
	// loader refuses fields it does not know.
	Config string
	// BenchArgs are added to every `tcpgwctl bench` run against it (e.g. -protocol-version).
	BenchArgs []string
	// PprofOnAdmin: it serves pprof on the admin port rather than on listen.pprof.
	PprofOnAdmin bool
}

// Env is a running comparison environment: binaries, the echo backend, an HS256 secret.
type Env struct {
	Bins       Binaries
	Dir        string
	SecretFile string
	EchoAddr   string
	Logf       func(format string, args ...any)

	// Variants are more server kinds to compare, by name (see BuildGatewayVariant and
	// BuildGatewayAt).
	Variants map[string]Variant

	// IdleAddresses is how many source addresses Idle spreads its connections over (0: the
	// fewest with enough ports; the gateway's per-address state then costs nothing per
	// connection).
	IdleAddresses int

	echo    *Proc
	sources int // source address blocks handed out so far
}

// NewEnv builds the binaries into dir and starts the echo backend. Close stops it.
func NewEnv(ctx context.Context, root, dir string, logf func(string, ...any)) (*Env, error) {
	logf("building gateway, baseline, echobackend and tcpgwctl")
	bins, err := Build(ctx, root, dir)
	if err != nil {
		return nil, err
	}
	e := &Env{Bins: bins, Dir: dir, Logf: logf, SecretFile: filepath.Join(dir, "hs256.secret")}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	if err := os.WriteFile(e.SecretFile, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		return nil, err
	}
	if e.EchoAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if e.echo, err = Start(ctx, "echobackend", bins.Echo, "-listen", e.EchoAddr); err != nil {
		return nil, err
	}
	if err := waitListening(e.echo, e.EchoAddr, 10*time.Second); err != nil {
		e.echo.Stop()
		return nil, err
	}
	return e, nil
}

// Close stops the echo backend.
func (e *Env) Close() {
	if e.echo != nil {
		e.echo.Stop()
	}
}

// nextSources hands out at least n fresh source addresses in a new block B per run, so that no
// run meets the ports another left behind: 127.B.0.2 ... 127.B.0.(n+1), or above 250 the
// smallest prefix 127.B.0.0/L that holds n (a list that long would pass the kernel's limit
// on one argument).
func (e *Env) nextSources(n int) string {
	e.sources++
	b := 10 + e.sources%240
	if n > 250 {
		return fmt.Sprintf("127.%d.0.0/%d", b, 32-bits.Len(uint(n-1)))
	}
	ips := make([]string, n)
	for i := range ips {
		ips[i] = fmt.Sprintf("127.0.%d.%d", b, i+2)
	}
	return strings.Join(ips, ",")
}

// Bench tokens carry an issuer and an audience, and the servers require them: gateways from
// before issue 12 accept these fields, later ones may require them.
const (
	benchIssuer   = "tcpgw-bench"
	benchAudience = "tcpgateway"
)

// configYAML is the configuration both servers get: HS256 auth, one route to the echo
// backend, limits generous enough that only the machine limits the benchmark. Arguments:
// server kind, client address, admin address, control socket, secret file, echo address,
// pprof address (the baseline ignores listen.pprof).
const configYAML = `serverID: bench-%[1]s
listen:
  clients: %[2]s
  admin: %[3]s
` + controlLine + pprofLine + `limits:
  maxConnections: 50000
  handshakeTimeout: 10s
  heartbeatInterval: 30s
  idleTimeout: 10m
  requestsPerSecond: 1000000
  requestBurst: 1000000
` + perAddressLines + `auth:
  jwt:
    hs256SecretFile: %[5]s
    issuer: ` + benchIssuer + `
    audience: ` + benchAudience + `
routes:
  - service: echo
    url: http://%[6]s/rpc
    timeout: 5s
    maxInFlight: 4096
logging:
  level: warn
`

// Lines of configYAML for fields that older gateways do not know (before a243da1 and a605407):
// their loader is strict, so BuildGatewayAt drops those its reference lacks (newerConfig).
// A gateway without listen.pprof serves pprof on its admin port.
const (
	controlLine     = "  control: %[4]s\n"
	pprofLine       = "  pprof: %[7]s\n"
	perAddressLines = `  # Every connection comes from a few loopback addresses.
  perAddress:
    maxConnections: 50000
    handshakesPerSecond: 1000000
    handshakeBurst: 1000000
`
)

// newerConfig pairs those lines with the field's json tag in gateway/config.
var newerConfig = []struct{ lines, tag string }{
	{controlLine, `json:"control`},
	{pprofLine, `json:"pprof`},
	{perAddressLines, `json:"perAddress`},
}

// benchAuth are the tcpgwctl bench flags minting tokens the servers accept.
func (e *Env) benchAuth() []string {
	return []string{"-secret-file", e.SecretFile, "-issuer", benchIssuer, "-audience", benchAudience}
}

// StartServer starts a fresh server of the given kind and waits until it accepts connections;
// its address is returned.
func (e *Env) StartServer(ctx context.Context, kind string) (*Proc, string, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, "", err
	}
	admin, err := FreeAddr()
	if err != nil {
		return nil, "", err
	}
	pprof, err := FreeAddr()
	if err != nil {
		return nil, "", err
	}
	bin, tmpl := e.Bins.Gateway, configYAML
	if kind == Baseline {
		bin = e.Bins.Baseline
	} else if v, ok := e.Variants[kind]; ok {
		bin = v.Bin
		tmpl = cmp.Or(v.Config, configYAML)
		if v.PprofOnAdmin {
			pprof = admin
		}
	}
	cfg := filepath.Join(e.Dir, kind+".yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, tmpl, kind, addr, admin, filepath.Join(e.Dir, kind+".sock"), e.SecretFile, e.EchoAddr, pprof), 0o600); err != nil {
		return nil, "", err
	}
	p, err := Start(ctx, kind, bin, "-config", cfg)
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(p, addr, 15*time.Second); err != nil {
		p.Stop()
		return nil, "", err
	}
	if kind != Baseline {
		p.Pprof = "http://" + pprof + "/debug/pprof"
	}
	return p, addr, nil
}

// LoadResult is the JSON printed by `tcpgwctl bench -json` (the fields the harness uses).
type LoadResult struct {
	Conns          int              `json:"conns"`
	Established    int              `json:"established"`
	ConnectFailed  map[string]int   `json:"connectFailed"`
	Lost           int64            `json:"connectionsLost"`
	OfferedRate    float64          `json:"offeredRate"`
	Sent           int64            `json:"sent"`
	OK             int64            `json:"ok"`
	Failed         map[string]int64 `json:"failed"`
	TotalResponses int64            `json:"totalResponses"`
	Throughput     float64          `json:"throughput"`
	Latency        Latency          `json:"latencyUs"`
	SendLag        Latency          `json:"sendLagUs"`
	ToolCPUSeconds float64          `json:"toolCpuSeconds"`
	ToolMaxRSSKiB  int64            `json:"toolMaxRssKiB"`
}

// Latency percentiles in µs.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// RunBench runs `tcpgwctl bench -json args...` and calls onPhase, on the goroutine reading the
// tool's stderr, for every "bench: phase=NAME" line as it is printed, with the tool's pid.
func (e *Env) RunBench(ctx context.Context, limit time.Duration, onPhase func(phase string, pid int), args ...string) (*LoadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := command(ctx, e.Bins.Tcpgwctl, append([]string{"bench", "-json"}, args...)...)
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var tail []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "bench: phase="); ok {
			if onPhase != nil {
				onPhase(strings.Fields(rest)[0], cmd.Process.Pid)
			}
			continue
		}
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
	}
	_, _ = io.Copy(io.Discard, stderr)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("tcpgwctl bench %s: %w\n%s", strings.Join(args, " "), err, strings.Join(tail, "\n"))
	}
	var r LoadResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("tcpgwctl bench output: %w\n%s", err, stdout.String())
	}
	return &r, nil
}

// IdleResult is the memory of one server holding Conns idle connections.
type IdleResult struct {
	Server        string
	Conns         int
	Established   int
	RSSBeforeKiB  int64
	RSSAfterKiB   int64
	PerConnKiB    float64
	ToolMaxRSSKiB int64
	// Live heap and stacks (LiveHeapKiB) before and after, and the growth per connection;
	// 0 for a server without pprof (the baseline).
	HeapBeforeKiB, HeapAfterKiB int64
	HeapPerConnKiB              float64
}

// LiveHeapKiB has the server collect garbage (pprof's heap?gc=1) and returns what is live
// then: heap objects (HeapAlloc) plus goroutine stacks (StackInuse), in KiB. RSS depends on
// when the GC last ran and what it returned to the kernel (run to run, ±0.4 KiB per idle
// connection here); this does not, so it resolves a few hundred bytes per connection.
func LiveHeapKiB(ctx context.Context, pprof string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pprof+"/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/heap: %s", pprof, resp.Status)
	}
	var heap, stack int64 = -1, -1
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() { // "# HeapAlloc = N", "# Stack = inuse / sys"
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			heap, err = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(sc.Text(), "# Stack = "); ok {
			v, _, _ = strings.Cut(v, " ")
			stack, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return 0, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if heap < 0 || stack < 0 {
		return 0, fmt.Errorf("%s/heap?debug=1: no HeapAlloc or Stack line", pprof)
	}
	return (heap + stack) / 1024, nil
}

// Idle starts a fresh server, opens conns connections that then stay idle (heartbeats only),
// and reads the server's RSS before and once they have settled.
func (e *Env) Idle(ctx context.Context, kind string, conns, procs int) (*IdleResult, error) {
	p, addr, err := e.StartServer(ctx, kind)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	time.Sleep(time.Second) // let start-up garbage settle
	res := &IdleResult{Server: kind, Conns: conns}
	if res.RSSBeforeKiB, err = RSSKiB(p.Pid); err != nil {
		return nil, err
	}
	if p.Pprof != "" {
		if res.HeapBeforeKiB, err = LiveHeapKiB(ctx, p.Pprof); err != nil {
			return nil, err
		}
	}
	var after int64
	var afterErr error
	nSources := max(2, conns/8000+1)
	if e.IdleAddresses > 0 {
		nSources = e.IdleAddresses
	}
	args := append(e.benchAuth(), "-addr", addr, "-conns", strconv.Itoa(conns),
		"-procs", strconv.Itoa(procs), "-sources", e.nextSources(nSources), "-ramp", "5000",
		"-rate", "0", "-warmup", "3s", "-duration", "1s")
	lr, err := e.RunBench(ctx, 3*time.Minute, func(phase string, _ int) {
		if phase == "measure-start" { // established, then 3 s of warm-up to settle
			after, afterErr = RSSKiB(p.Pid)
			if p.Pprof != "" && afterErr == nil { // after RSS: the forced GC may lower it
				res.HeapAfterKiB, afterErr = LiveHeapKiB(ctx, p.Pprof)
			}
		}
	}, append(args, e.Variants[kind].BenchArgs...)...)
	if err != nil {
		return nil, err
	}
	if afterErr != nil {
		return nil, afterErr
	}
	if exited, werr := p.Exited(); exited {
		return nil, fmt.Errorf("%s exited during the run (%v):\n%s", kind, werr, p.Output())
	}
	res.Established, res.RSSAfterKiB, res.ToolMaxRSSKiB = lr.Established, after, lr.ToolMaxRSSKiB
	if lr.Established > 0 {
		res.PerConnKiB = float64(after-res.RSSBeforeKiB) / float64(lr.Established)
		if p.Pprof != "" {
			res.HeapPerConnKiB = float64(res.HeapAfterKiB-res.HeapBeforeKiB) / float64(lr.Established)
		}
	}
	return res, nil
}

// LoadSpec is one request-load scenario.
type LoadSpec struct {
	Conns    int
	Payload  int
	Rate     float64
	Warmup   time.Duration
	Duration time.Duration
}

// LoadOutcome is one server's result under a LoadSpec.
type LoadOutcome struct {
	Server string
	Spec   LoadSpec
	Result *LoadResult
	// CPUMicrosPerRequest is the server's CPU time in the measured window divided by the
	// requests sent in it.
	CPUMicrosPerRequest float64
	// CPUCores is the server's CPU use in the measured window, in cores; ToolCores the load
	// tool's, EchoCores the backend's, OtherCores everything else on the machine (other
	// sessions sharing it: noise), QuietBefore the machine's load just before the run.
	CPUCores, ToolCores, EchoCores, OtherCores, QuietBefore float64
	// Drops and Retrans are the machine's input-backlog drops and TCP retransmissions in the
	// measured window (see NetDrops).
	Drops, Retrans int64
	// ServerLog is the tail of the server's log when the run had failures.
	ServerLog string
}

// Load starts a fresh server and runs spec against it, reading the server's CPU time at the
// start and the end of the measured window.
func (e *Env) Load(ctx context.Context, kind string, spec LoadSpec) (*LoadOutcome, error) {
	quiet := WaitQuiet(ctx, 0.3, 15*time.Second)
	p, addr, err := e.StartServer(ctx, kind)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	type sample struct {
		t                                         time.Time
		server, tool, echo, total, drops, retrans int64
	}
	var s [2]sample
	var cpuErr error
	take := func(i, toolPid int) {
		var e1, e2, e3, e4, e5 error
		s[i].t = time.Now()
		s[i].server, e1 = CPUMicros(p.Pid)
		s[i].tool, e2 = CPUMicros(toolPid)
		s[i].echo, e3 = CPUMicros(e.echo.Pid)
		s[i].total, e4 = MachineBusyMicros()
		s[i].drops, s[i].retrans, e5 = NetDrops()
		cpuErr = errors.Join(cpuErr, e1, e2, e3, e4, e5)
	}
	lr, err := e.RunBench(ctx, spec.Warmup+spec.Duration+2*time.Minute, func(phase string, toolPid int) {
		switch phase {
		case "measure-start":
			take(0, toolPid)
		case "measure-end":
			take(1, toolPid)
		}
	}, append(append(e.benchAuth(), "-addr", addr, "-conns", strconv.Itoa(spec.Conns),
		"-sources", e.nextSources(2), "-ramp", "5000",
		"-rate", strconv.FormatFloat(spec.Rate, 'f', -1, 64), "-payload", strconv.Itoa(spec.Payload),
		"-warmup", spec.Warmup.String(), "-duration", spec.Duration.String()),
		e.Variants[kind].BenchArgs...)...)
	if err != nil {
		return nil, err
	}
	if cpuErr != nil {
		return nil, cpuErr
	}
	if exited, werr := p.Exited(); exited {
		return nil, fmt.Errorf("%s exited during the run (%v):\n%s", kind, werr, p.Output())
	}
	o := &LoadOutcome{Server: kind, Spec: spec, Result: lr, QuietBefore: quiet,
		Drops: s[1].drops - s[0].drops, Retrans: s[1].retrans - s[0].retrans}
	if len(lr.Failed) > 0 || lr.Lost > 0 {
		o.ServerLog = p.Output()
	}
	server := s[1].server - s[0].server
	if lr.Sent > 0 {
		o.CPUMicrosPerRequest = float64(server) / float64(lr.Sent)
	}
	if d := float64(s[1].t.Sub(s[0].t).Microseconds()); d > 0 {
		tool, echo := s[1].tool-s[0].tool, s[1].echo-s[0].echo
		o.CPUCores, o.ToolCores, o.EchoCores = float64(server)/d, float64(tool)/d, float64(echo)/d
		o.OtherCores = max(0, float64(s[1].total-s[0].total-server-tool-echo)/d)
	}
	return o, nil
}

// Report is a whole comparison. Load may hold several runs of each (spec, server): the
// tables show their medians.
type Report struct {
	Idle []*IdleResult
	Load []*LoadOutcome
	// Discarded counts load runs repeated because other processes loaded the machine.
	Discarded int
}

// Markdown renders the report as the tables of docs/benchmarks.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	if len(r.Idle) > 0 {
		b.WriteString("| idle connections | server | established | RSS before (MiB) | RSS after (MiB) | KiB per connection | live heap+stacks KiB per connection |\n")
		b.WriteString("|---:|---|---:|---:|---:|---:|---:|\n")
		for _, i := range r.Idle {
			heap := "–"
			if i.HeapAfterKiB > 0 {
				heap = fmt.Sprintf("%.2f", i.HeapPerConnKiB)
			}
			fmt.Fprintf(&b, "| %d | %s | %d | %.1f | %.1f | **%.2f** | %s |\n", i.Conns, i.Server, i.Established,
				float64(i.RSSBeforeKiB)/1024, float64(i.RSSAfterKiB)/1024, i.PerConnKiB, heap)
		}
		b.WriteString("\n")
	}
	if len(r.Load) == 0 {
		return b.String()
	}
	type key struct {
		spec   LoadSpec
		server string
	}
	var order []key
	runs := map[key][]*LoadOutcome{}
	for _, o := range r.Load {
		k := key{o.Spec, o.Server}
		if runs[k] == nil {
			order = append(order, k)
		}
		runs[k] = append(runs[k], o)
	}
	b.WriteString("| conns | payload | offered req/s | server | runs | ok req/s | failed | p50 µs | p90 µs | p99 µs (min–max) | p99.9 µs | server CPU µs/req | server / tool / echo / other cores | tool send lag p99 µs | drops / retransmits |\n")
	b.WriteString("|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---|\n")
	for _, k := range order {
		rs := runs[k]
		med := func(f func(*LoadOutcome) float64) float64 {
			v := make([]float64, len(rs))
			for i, o := range rs {
				v[i] = f(o)
			}
			return Median(v)
		}
		p99 := make([]float64, len(rs))
		var failed []string
		for i, o := range rs {
			p99[i] = o.Result.Latency.P99
			if f := failedText(o.Result); f != "0" {
				failed = append(failed, f)
			}
		}
		if len(failed) == 0 {
			failed = []string{"0"}
		}
		fmt.Fprintf(&b, "| %d | %d B | %.0f | %s | %d | %.0f | %s | %.0f | %.0f | **%.0f** (%.0f–%.0f) | %.0f | **%.1f** | %.2f / %.2f / %.2f / %.2f | %.0f | %.0f / %.0f |\n",
			k.spec.Conns, k.spec.Payload, k.spec.Rate, k.server, len(rs),
			med(func(o *LoadOutcome) float64 { return o.Result.Throughput }), strings.Join(failed, "; "),
			med(func(o *LoadOutcome) float64 { return o.Result.Latency.P50 }),
			med(func(o *LoadOutcome) float64 { return o.Result.Latency.P90 }),
			med(func(o *LoadOutcome) float64 { return o.Result.Latency.P99 }), slices.Min(p99), slices.Max(p99),
			med(func(o *LoadOutcome) float64 { return o.Result.Latency.P999 }),
			med(func(o *LoadOutcome) float64 { return o.CPUMicrosPerRequest }),
			med(func(o *LoadOutcome) float64 { return o.CPUCores }),
			med(func(o *LoadOutcome) float64 { return o.ToolCores }),
			med(func(o *LoadOutcome) float64 { return o.EchoCores }),
			med(func(o *LoadOutcome) float64 { return o.OtherCores }),
			med(func(o *LoadOutcome) float64 { return o.Result.SendLag.P99 }),
			med(func(o *LoadOutcome) float64 { return float64(o.Drops) }),
			med(func(o *LoadOutcome) float64 { return float64(o.Retrans) }))
	}
	if r.Discarded > 0 {
		fmt.Fprintf(&b, "(%d load runs were repeated because other processes used the machine during them.)\n", r.Discarded)
	}
	b.WriteString("\n")
	return b.String()
}

// Median is the median over the runs of (spec, server) of f, and whether there were any.
func (r *Report) Median(spec LoadSpec, server string, f func(*LoadOutcome) float64) (float64, bool) {
	var v []float64
	for _, o := range r.Load {
		if o.Spec == spec && o.Server == server {
			v = append(v, f(o))
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return Median(v), true
}

// Median is the median of v (not empty); it sorts v.
func Median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func failedText(r *LoadResult) string {
	var parts []string
	for k, v := range r.Failed {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(parts)
	if r.Lost > 0 {
		parts = append(parts, fmt.Sprintf("%d conns lost", r.Lost))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}
