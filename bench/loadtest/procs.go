package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a child server process: the fake upstream, the bare proxy or
// the gateway.
type process struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	tlsAddr string        // the upstream's HTTPS (HTTP/2) address
	client  string        // a bare proxy's or gateway's upstream client
	logs    *bytes.Buffer // the gateway's stderr, bounded
	debug   string        // the profiler's address (/debug/pprof/); "" none
	bin     string        // the executable, for -perf's probe
}

// procUsage is what /proc says about a process.
type procUsage struct {
	cpu     time.Duration // user + system
	rss     int64         // VmRSS bytes
	hwm     int64         // VmHWM bytes (peak RSS)
	threads int
	fds     int
}

// clkTck is the unit of /proc/PID/stat times; 100 on every Linux
// configuration Go supports (USER_HZ).
const clkTck = 100

func readUsage(pid int) (procUsage, error) {
	var u procUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return u, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(ut+st) * time.Second / clkTck
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			u.rss = n << 10
		case "VmHWM":
			u.hwm = n << 10
		case "Threads":
			u.threads = int(n)
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		u.fds = len(ents)
	}
	return u, nil
}

// resetPeak resets VmHWM to the current RSS (Linux ≥ 4.0), so each
// scenario reports its own peak. It reports whether that worked.
func resetPeak(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// raiseFileLimit lifts RLIMIT_NOFILE so 10,000 streams fit: each needs a
// descriptor in the harness, two in the gateway and one in the upstream.
// Children inherit it.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	nl := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		// Not privileged: take what the hard limit allows.
		nl = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err2 != nil {
			return lim.Cur, err
		}
		return lim.Max, err
	}
	return want, nil
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startUpstream runs this program's "upstream" subcommand.
func startUpstream(ctx context.Context, cfg upstreamConfig, certFile, keyFile string) (*process, error) {
	cmd, addrs, err := startSelf(ctx, "fake upstream", 2, "upstream",
		"-latency", cfg.Latency.String(), "-resp-bytes", strconv.Itoa(cfg.RespBytes),
		"-chunks", strconv.Itoa(cfg.Chunks), "-chunk-gap", cfg.ChunkGap.String(),
		"-tls-addr", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile)
	if err != nil {
		return nil, err
	}
	return &process{name: "upstream", cmd: cmd, addr: addrs[0], tlsAddr: addrs[1]}, nil
}

// startBare runs this program's "bareproxy" subcommand in front of the
// upstream up, with the upstream client named client: plain HTTP/1.1 (as
// the gateway's "bench" model), and HTTPS with HTTP/2 under h2Prefix (as
// "bench-hold"), trusting certFile. Its profiler listens too, as the
// gateway's does.
func startBare(ctx context.Context, up *process, certFile, client string) (*process, error) {
	cmd, addrs, err := startSelf(ctx, "bare proxy", 2, "bareproxy", "-addr", "127.0.0.1:0", "-upstream", up.addr,
		"-tls-upstream", up.tlsAddr, "-tls-ca", certFile, "-client", client, "-debug-addr", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	self, _ := os.Executable()
	return &process{name: "bare", cmd: cmd, addr: addrs[0], client: client, debug: addrs[1], bin: self}, nil
}

// startSelf runs one of this program's subcommands, which prints the
// addresses it listens on (n of them) on its first line.
func startSelf(ctx context.Context, what string, n int, args ...string) (*exec.Cmd, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addrs := strings.Fields(line)
	if err == nil && len(addrs) != n {
		err = fmt.Errorf("printed %q, not %d addresses", line, n)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, fmt.Errorf("%s did not start: %w", what, err)
	}
	return cmd, addrs, nil
}

// buildGateway builds ./cmd/llm-proxy from the repository at root.
func buildGateway(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "llm-proxy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/llm-proxy")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building llm-proxy: %w", err)
	}
	return bin, nil
}

// gatewaySetup is what configureGateway created.
type gatewaySetup struct {
	key string
}

const benchKey = "sk-bench-0123456789abcdefghijklmnopqrstuv"

// configureGateway uses the real CLI, as an operator would: connections
// to the fake upstream over HTTP/1.1 ("fake") and over HTTPS with HTTP/2
// ("fake-h2"), the aliases "bench" (HTTP/1.1), "bench-hold" (a stream the
// upstream holds open, over HTTP/2) and "bench-hold-h1", and a virtual key
// whose assignments have request and token limits far above what the run
// can reach, so they are checked on every request but never refuse one.
func configureGateway(ctx context.Context, bin string, env []string, up *process) (gatewaySetup, error) {
	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("llm-proxy %s: %w: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(strings.SplitN(out.String(), "\n", 2)[0]), nil
	}
	conn, err := cli("connection", "add", "--name", "fake", "--provider", "compatible",
		"--endpoint", "http://"+up.addr+"/v1", "--api-key", "sk-upstream", "-q")
	if err != nil {
		return gatewaySetup{}, err
	}
	connH2, err := cli("connection", "add", "--name", "fake-h2", "--provider", "compatible",
		"--endpoint", "https://"+up.tlsAddr+"/v1", "--api-key", "sk-upstream", "-q")
	if err != nil {
		return gatewaySetup{}, err
	}
	connMsg, err := cli("connection", "add", "--name", "fake-anthropic", "--provider", "anthropic",
		"--endpoint", "http://"+up.addr, "--api-key", "sk-upstream", "-q")
	if err != nil {
		return gatewaySetup{}, err
	}
	connResp, err := cli("connection", "add", "--name", "fake-responses", "--provider", "compatible",
		"--endpoint", "http://"+up.addr+"/v1", "--api-key", "sk-upstream", "--setting", "responses=native", "-q")
	if err != nil {
		return gatewaySetup{}, err
	}
	for _, m := range [][3]string{{"bench", "fake", conn}, {"bench-hold-h1", "hold", conn}, {"bench-hold", "hold", connH2},
		{"bench-msg", "fake", connMsg}, {"bench-resp", "fake", connResp}, {"bench-resp-tr", "fake", conn}} {
		if _, err := cli("model", "add", "--name", m[0], "--remote", m[1], "--conn-id", m[2], "-q"); err != nil {
			return gatewaySetup{}, err
		}
	}
	if _, err := cli("vkey", "add", "--name", "bench", "--key", benchKey, "--conn-id", conn, "--conn-id", connH2, "--conn-id", connMsg, "--conn-id", connResp,
		"--tps", "10000000", "--token-limit", "1000000000000000", "--token-window", "24h", "-q"); err != nil {
		return gatewaySetup{}, err
	}
	return gatewaySetup{key: benchKey}, nil
}

// startGateway runs "llm-proxy serve" on a free loopback port and waits
// until /healthz answers. Its profiler listens on another free port
// (DEBUG_ADDR), unless env sets DEBUG_ADDR itself.
func startGateway(ctx context.Context, bin string, env []string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debug := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "DEBUG_ADDR="); ok {
			debug = v // the last one wins, as in the process
		}
	}
	if debug == "" {
		if debug, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(slices.Clip(env), "DEBUG_ADDR="+debug)
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr)
	cmd.Env = env
	logs := &bytes.Buffer{}
	cmd.Stderr = &limitedWriter{w: logs, n: 1 << 20}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: "gateway", cmd: cmd, addr: addr, logs: logs, debug: debug, bin: bin}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("the gateway did not answer /healthz within 20s: %s", logs.String())
}

// goroutines reads the process's goroutine count from its profiler's
// index page (runtime.NumGoroutine, which unlike the goroutine profile
// costs no stack walk nor memory), or -1 if it has none.
func (p *process) goroutines() int {
	if p.debug == "" {
		return -1
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.debug + "/debug/pprof/")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return -1
	}
	return goroutineCount(body)
}

// liveMem has the process collect its garbage, then reads its HeapAlloc
// (the live heap) and StackInuse, in bytes, from its heap profile's
// runtime.MemStats lines, or -1s: unlike RSS, they do not depend on when
// the last collection ran (the gateway lets its heap grow to 64 MiB or ten
// times what is live before collecting). Read after RSS: it collects and
// allocates.
func (p *process) liveMem() (heap, stack int64) {
	heap, stack = -1, -1
	if p.debug == "" {
		return
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.debug + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			heap, _ = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(sc.Text(), "# Stack = "); ok { // "# Stack = StackInuse / StackSys"
			v, _, _ = strings.Cut(v, " ")
			stack, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return
}

// goroutineCount finds the goroutine count in net/http/pprof's index page
// ("<tr><td>N</td><td><a href='goroutine?debug=1'>goroutine</a>…"), or
// returns -1.
func goroutineCount(page []byte) int {
	for line := range bytes.Lines(page) {
		if !bytes.Contains(line, []byte(">goroutine</a>")) {
			continue
		}
		_, rest, ok := bytes.Cut(line, []byte("<td>"))
		if !ok {
			return -1
		}
		num, _, _ := bytes.Cut(rest, []byte("</td>"))
		n, err := strconv.Atoi(string(num))
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

// stop ends the process with SIGTERM (the gateway then flushes its
// ledger), and kills it after 15s.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	l.w.Write(q)
	return len(p), nil
}
