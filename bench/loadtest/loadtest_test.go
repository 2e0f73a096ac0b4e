package main

import (
	"bytes"
	"crypto/x509"
	"debug/elf"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestClientAgainstFake checks the load generator's HTTP/1.1 client on
// the fake upstream: plain answers, streams (events counted, first event
// timed), keep-alive reuse, and both load loops.
func TestClientAgainstFake(t *testing.T) {
	up := newFakeUpstream(upstreamConfig{RespBytes: 500, Chunks: 5})
	srv := httptest.NewServer(up)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, tc := range []struct {
		name   string
		body   string
		events int
	}{
		{"plain", chatBody, 0},
		{"stream", streamBody, 5 + 3}, // chunks, the finish chunk, usage, [DONE]
		{"plain again", chatBody, 0},
	} {
		r := checkExchange(t, c, addr, up, tc.name, tc.body, tc.events)
		if (tc.events > 0) == r.first.IsZero() {
			t.Errorf("%s: first event at %v", tc.name, r.first)
		}
	}
	plain := target{name: "direct", addr: addr, req: buildRequest(addr, "/v1/chat/completions", "k", []byte(strings.Replace(chatBody, "%s", "fake", 1)))}
	if o := closedLoop(plain, 2, 0, 200*time.Millisecond, false); o.requests == 0 || o.errors != 0 || len(o.lat) != int(o.requests) {
		t.Errorf("closed loop: %d requests, %d errors (%s)", o.requests, o.errors, o.firstErr)
	}
	if o := openLoop(plain, 200, 4, 0, 300*time.Millisecond); o.errors != 0 || o.requests < 50 || o.requests > 70 {
		t.Errorf("open loop at 200/s for 300ms: %d requests, %d errors (%s)", o.requests, o.errors, o.firstErr)
	}
}

// TestBareProxy checks that the bare proxy relays plain answers and
// streams unchanged, over kept-alive connections on both sides, with each
// upstream client.
func TestBareProxy(t *testing.T) {
	for _, client := range upstreamClients {
		t.Run(client, func(t *testing.T) {
			up := newFakeUpstream(upstreamConfig{RespBytes: 500, Chunks: 5})
			usrv := httptest.NewServer(up)
			defer usrv.Close()
			// The HTTPS upstream records the protocol of what it serves.
			var h2 atomic.Int64
			tsrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.ProtoMajor == 2 {
					h2.Add(1)
				}
				up.ServeHTTP(w, r)
			}))
			tsrv.EnableHTTP2 = true
			tsrv.StartTLS()
			defer tsrv.Close()
			roots := x509.NewCertPool()
			roots.AddCert(tsrv.Certificate())
			p, err := newBareProxy(bareConfig{upstream: strings.TrimPrefix(usrv.URL, "http://"),
				tlsUpstream: strings.TrimPrefix(tsrv.URL, "https://"), client: client, roots: roots})
			if err != nil {
				t.Fatal(err)
			}
			psrv := httptest.NewServer(p)
			defer psrv.Close()
			addr := strings.TrimPrefix(psrv.URL, "http://")
			c, err := dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			for _, tc := range []struct {
				name   string
				body   string
				events int
			}{
				{"plain", chatBody, 0},
				{"stream", streamBody, 5 + 3},
				{"plain again", chatBody, 0},
				{"stream again", streamBody, 5 + 3},
			} {
				checkExchange(t, c, addr, up, tc.name, tc.body, tc.events)
			}
			if n := up.served.Load(); n != 4 {
				t.Errorf("upstream served %d requests, want 4", n)
			}
			// Under h2Prefix, the HTTPS upstream over HTTP/2, the prefix
			// dropped (the fake answers only its own paths).
			req := buildRequest(addr, h2Prefix+"v1/chat/completions", "k", []byte(strings.Replace(streamBody, "%s", "fake", 1)))
			r, err := c.do(req, time.Now().Add(5*time.Second))
			if err != nil || r.status != 200 || r.events != 5+3 {
				t.Fatalf("over HTTP/2: %+v, %v", r, err)
			}
			if n := h2.Load(); n != 1 {
				t.Errorf("the HTTPS upstream served %d requests over HTTP/2, want 1", n)
			}
		})
	}
	if _, err := newBareProxy(bareConfig{upstream: "127.0.0.1:1/x", client: clientNetHTTP}); err == nil {
		t.Error("an upstream with a path was taken")
	}
	if _, err := newBareProxy(bareConfig{upstream: "127.0.0.1:1", tlsUpstream: "127.0.0.1:2/x", client: clientNetHTTP}); err == nil {
		t.Error("an HTTPS upstream with a path was taken")
	}
	if _, err := newBareProxy(bareConfig{upstream: "127.0.0.1:1", client: "curl"}); err == nil {
		t.Error("an unknown upstream client was taken")
	}
}

// checkExchange sends one request (body with the model "fake") on c and checks
// that it was answered 200 on a kept-alive connection with the wanted
// events, or the fake's whole answer when none are wanted.
func checkExchange(t *testing.T, c *conn, addr string, up *fakeUpstream, name, body string, events int) result {
	t.Helper()
	req := buildRequest(addr, "/v1/chat/completions", "k", []byte(strings.Replace(body, "%s", "fake", 1)))
	r, err := c.do(req, time.Now().Add(5*time.Second))
	if err != nil || r.status != 200 || !r.keep {
		t.Fatalf("%s: %+v, %v", name, r, err)
	}
	if r.events != events {
		t.Errorf("%s: %d events, want %d", name, r.events, events)
	}
	if events == 0 && r.body != len(up.answer) {
		t.Errorf("%s: %d body bytes, want %d", name, r.body, len(up.answer))
	}
	return r
}

func TestPercentile(t *testing.T) {
	s := make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Microsecond
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 501 * time.Microsecond}, {99, 991 * time.Microsecond}, {99.9, 1000 * time.Microsecond}, {100, 1000 * time.Microsecond}} {
		if got := pct(s, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if pct(nil, 50) != 0 {
		t.Error("empty")
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, "0.0.0.0:80": false, ":8080": false, "10.0.0.1:1": false} {
		if err := loopbackOnly(addr); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// TestGoroutineCount reads the goroutine count off a real profiler index,
// the bare proxy's (the gateway's serves the same handlers).
func TestGoroutineCount(t *testing.T) {
	srv := httptest.NewServer(debugMux())
	defer srv.Close()
	p := &process{debug: strings.TrimPrefix(srv.URL, "http://")}
	if n := p.goroutines(); n < 2 || n > runtime.NumGoroutine()+10 {
		t.Errorf("goroutines() = %d; runtime.NumGoroutine() = %d", n, runtime.NumGoroutine())
	}
	if heap, stack := p.liveMem(); heap <= 0 || stack <= 0 {
		t.Errorf("liveMem() = %d, %d", heap, stack)
	}
	if n := (&process{}).goroutines(); n != -1 {
		t.Errorf("no profiler: %d", n)
	}
	if n := goroutineCount([]byte("<tr><td>x</td><td><a href='goroutine?debug=1'>goroutine</a></td></tr>")); n != -1 {
		t.Errorf("malformed count: %d", n)
	}
}

func TestParsePerfCSV(t *testing.T) {
	out := "# started on Mon Dec  7 03:20:16 2026\n\n" +
		"0.26,msec,task-clock,264819,100.00,0.001,CPUs utilized\n" +
		"<not counted>,,cpu-migrations,0,100.00,,\n" +
		"12,,syscalls:sys_enter_futex,264819,100.00,0.000,/sec\nEvents disabled\n"
	v, err := parsePerfCSV([]byte(out), 3)
	if err != nil || len(v) != 3 || v[0] != 0.26 || v[1] != -1 || v[2] != 12 {
		t.Errorf("parsePerfCSV = %v, %v", v, err)
	}
	if _, err := parsePerfCSV([]byte(out), 4); err == nil {
		t.Error("a missing count was not noticed")
	}
}

// TestPerfStat runs perf stat on this process through its control FIFOs,
// where perf is installed and allowed to count (root).
func TestPerfStat(t *testing.T) {
	if _, err := exec.LookPath("perf"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs perf, as root")
	}
	events := []perfEvent{{"task-clock", "", "CPU µs"}, {"raw_syscalls:sys_enter", "", "syscalls"}}
	p, err := startPerf(t.TempDir(), os.Getpid(), events)
	if err != nil {
		t.Skip("perf stat cannot count here:", err)
	}
	if err := p.command("enable"); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		syscall.Getppid()
	}
	if err := p.command("disable"); err != nil {
		t.Fatal(err)
	}
	v, err := p.finish()
	if err != nil {
		t.Fatal(err)
	}
	if v[0] <= 0 || v[1] < 100 {
		t.Errorf("counts %v: want CPU time and at least 100 system calls", v)
	}
}

// TestFuncOffset finds a function of this test binary both ways: in its
// symbol table, and in the table Go keeps for stack traces (all that go
// run's binaries have); and its offset in the file.
func TestFuncOffset(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want := runtime.FuncForPC(reflect.ValueOf(funcOffset).Pointer())
	f, err := elf.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Symbols(); err == nil { // linked with a symbol table
		if addr, err := symAddr(f, want.Name()); err != nil || uintptr(addr) != want.Entry() {
			t.Errorf("symAddr(%s) = %#x, %v; want %#x", want.Name(), addr, err, want.Entry())
		}
	}
	if addr, err := pclnAddr(f, want.Name()); err != nil || uintptr(addr) != want.Entry() {
		t.Errorf("pclnAddr(%s) = %#x, %v; want %#x", want.Name(), addr, err, want.Entry())
	}
	// The function's first bytes, read at the offset, are the code the
	// process runs.
	off, err := funcOffset(self, want.Name())
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	code := make([]byte, 16)
	if _, err := mem.ReadAt(code, int64(want.Entry())); err != nil {
		t.Fatal(err)
	}
	if off+16 > uint64(len(file)) || !bytes.Equal(file[off:off+16], code) {
		t.Errorf("funcOffset = %#x: not the function's code", off)
	}
	if _, err := funcOffset(self, "main.noSuchFunction"); err == nil {
		t.Error("a missing function was found")
	}
}

func TestVariantFlag(t *testing.T) {
	o, err := parseFlags([]string{"-variant", "gogc400:GOGC=400", "-variant", "old:BIN=/tmp/llm-proxy-old;UPSTREAM_CLIENT=h1client;A=b=c"})
	if err != nil {
		t.Fatal(err)
	}
	want := []variant{{name: "gogc400", client: "net/http", env: []string{"GOGC=400"}},
		{name: "old", client: "h1client", bin: "/tmp/llm-proxy-old", env: []string{"A=b=c"}}}
	if !reflect.DeepEqual(o.variants, want) {
		t.Errorf("variants = %+v, want %+v", o.variants, want)
	}
	for _, bad := range []string{"", ":GOGC=1", "Big:GOGC=1", "net/http:GOGC=1", "x:GOGC", "x:UPSTREAM_CLIENT=curl", "a:X=1,a:Y=2"} {
		args := []string{"-variant", bad}
		if bad == "a:X=1,a:Y=2" {
			args = []string{"-variant", "a:X=1", "-variant", "a:Y=2"}
		}
		if _, err := parseFlags(args); err == nil || !strings.Contains(err.Error(), "-variant") {
			t.Errorf("-variant %q: err = %v, want one naming -variant", bad, err)
		}
	}
}
