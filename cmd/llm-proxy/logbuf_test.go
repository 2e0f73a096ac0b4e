package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chunks is an io.Writer that keeps every Write it gets apart, so a test
// can see how lines were batched. With gate set, each Write first waits
// for gate to be closed: a stderr that does not drain.
type chunks struct {
	gate chan struct{}
	mu   sync.Mutex
	got  [][]byte
}

func (c *chunks) Write(p []byte) (int, error) {
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, bytes.Clone(p))
	return len(p), nil
}

func (c *chunks) writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *chunks) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(bytes.Join(c.got, nil))
}

// checkWhole fails unless every Write to c was whole lines.
func (c *chunks) checkWhole(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.got {
		if len(p) == 0 || p[len(p)-1] != '\n' {
			t.Fatalf("write %d does not end a line: %q", i, p)
		}
	}
}

// Lines from many goroutines come out whole and, per goroutine, in order,
// with small thresholds so that size flushes, timer flushes and
// backpressure all happen.
func TestLogBufferConcurrent(t *testing.T) {
	out := &chunks{}
	b := newLogBuffer(out)
	b.flushInterval, b.flushSize, b.maxPending = time.Millisecond, 1<<10, 4<<10
	const writers, lines = 16, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				// Lengths vary so that batches end anywhere.
				fmt.Fprintf(b, "g=%d i=%d %s\n", g, i, strings.Repeat("x", (g*7+i)%50))
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	out.checkWhole(t)
	next := make([]int, writers)
	n := 0
	for l := range strings.Lines(out.String()) {
		var g, i int
		if _, err := fmt.Sscanf(l, "g=%d i=%d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("corrupt line %q: %v", l, err)
		}
		if want := fmt.Sprintf("g=%d i=%d %s\n", g, i, strings.Repeat("x", (g*7+i)%50)); l != want {
			t.Fatalf("line %q, want %q", l, want)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
		n++
	}
	if n != writers*lines {
		t.Fatalf("%d lines, want %d", n, writers*lines)
	}
	if w := out.writes(); w >= n/4 {
		t.Errorf("%d writes for %d lines: not batched", w, n)
	}
}

// Info lines wait for the timer, which writes them in one go without any
// further line; a Warn line is written at once, after the lines before it.
func TestLogBufferTimerAndWarn(t *testing.T) {
	out := &chunks{}
	b := newLogBuffer(out)
	defer b.Close()
	e := &env{getenv: func(string) string { return "" }, stderr: io.Discard}
	log, _, err := e.logger(b)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 10 {
		log.Info("request", "i", i)
	}
	quick := time.Since(start) < b.flushInterval // not descheduled meanwhile
	if out.writes() != 0 && quick {
		t.Fatalf("Info lines written before the flush interval: %q", out)
	}
	waitFor(t, 5*time.Second, "the Info lines, written by the timer", func() bool { return strings.Count(out.String(), "msg=request") == 10 })
	if w := out.writes(); w != 1 && quick {
		t.Errorf("10 Info lines in %d writes, want 1", w)
	}

	// A Warn line, from a logger with attributes as the Gateway's are, is
	// out when Warn returns, with the Info line before it.
	b.flushInterval = time.Hour
	log.Info("before")
	log.With("component", "gateway").WithGroup("g").Warn("upstream down")
	got := out.String()
	if !strings.Contains(got, "msg=before") || !strings.Contains(got, `msg="upstream down"`) || strings.Index(got, "msg=before") > strings.Index(got, "upstream down") {
		t.Fatalf("Warn not written at once, in order:\n%s", got)
	}
	log.Error("boom")
	if !strings.Contains(out.String(), "msg=boom") {
		t.Fatalf("Error not written at once:\n%s", out)
	}
	out.checkWhole(t)
}

// Close writes everything in one Write; lines after it go straight out.
func TestLogBufferClose(t *testing.T) {
	out := &chunks{}
	b := newLogBuffer(out)
	b.flushInterval = time.Hour
	var want strings.Builder
	for i := range 100 {
		l := fmt.Sprintf("line %d\n", i)
		want.WriteString(l)
		io.WriteString(b, l)
	}
	if out.writes() != 0 {
		t.Fatal("written before Close")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want.String() || out.writes() != 1 {
		t.Fatalf("after Close, %d writes of %q", out.writes(), got)
	}
	io.WriteString(b, "late\n")
	if !strings.HasSuffix(out.String(), "late\n") {
		t.Fatal("a line after Close was held back")
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Past flushSize the lines go out without waiting for the timer.
func TestLogBufferSizeFlush(t *testing.T) {
	out := &chunks{}
	b := newLogBuffer(out)
	defer b.Close()
	b.flushInterval = time.Hour
	line := strings.Repeat("x", 1023) + "\n"
	for range logFlushSize / len(line) {
		io.WriteString(b, line)
	}
	waitFor(t, 5*time.Second, "64 KiB of lines to be written", func() bool { return len(out.String()) == logFlushSize })
	out.checkWhole(t)
}

// A stderr that blocks holds writers back at maxPending instead of
// growing the buffer; once it drains, every line is there, in order.
func TestLogBufferBackpressure(t *testing.T) {
	out := &chunks{gate: make(chan struct{})}
	b := newLogBuffer(out)
	b.flushInterval, b.flushSize, b.maxPending = time.Millisecond, 256, 1024
	const lines = 200
	line := func(i int) string { return fmt.Sprintf("line %03d %s\n", i, strings.Repeat("y", 40)) }
	var done atomic.Int64
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := range lines {
			io.WriteString(b, line(i))
			done.Add(1)
		}
	}()
	// A write to stderr is stuck; the writer fills the buffer (or makes
	// the stuck write itself) and then waits.
	waitFor(t, 5*time.Second, "a write to stderr", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.flushing
	})
	var n int64
	waitFor(t, 5*time.Second, "the writer to stop", func() bool {
		n = done.Load()
		time.Sleep(20 * time.Millisecond)
		return done.Load() == n
	})
	if n == lines {
		t.Fatalf("the writer wrote all %d lines while stderr was blocked", n)
	}
	b.mu.Lock()
	pending := len(b.pending)
	b.mu.Unlock()
	if pending > b.maxPending+len(line(0)) {
		t.Fatalf("%d bytes pending, limit %d", pending, b.maxPending)
	}
	close(out.gate)
	<-finished
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range lines {
		want.WriteString(line(i))
	}
	if got := out.String(); got != want.String() {
		t.Fatalf("lost or reordered lines:\n%s", got)
	}
	out.checkWhole(t)
}

// Steady state allocates nothing: the two slices are reused.
func TestLogBufferAllocs(t *testing.T) {
	b := newLogBuffer(io.Discard)
	defer b.Close()
	b.flushInterval = time.Hour
	line := []byte(strings.Repeat("z", 200) + "\n")
	warm := func() {
		for range 100 {
			b.Write(line)
		}
		b.Flush()
	}
	warm()
	if n := testing.AllocsPerRun(20, warm); n != 0 {
		t.Errorf("%v allocations per 100 lines and a flush", n)
	}
}

// serve writes its buffered lines when it fails, before run's error
// line: here the metrics listener's Info line, then the main address
// that is taken.
func TestServeFlushesLogsOnError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := newCLI(t)
	var logs bytes.Buffer
	err = run(t.Context(), []string{"serve", "--addr", taken.Addr().String(), "--metrics-addr", "127.0.0.1:0"}, c.getenv, io.Discard, &logs)
	if err == nil {
		t.Fatal("serve on a taken address succeeded")
	}
	got := logs.String()
	if i, j := strings.Index(got, `msg="metrics listening"`), strings.Index(got, "llm-proxy: "); i < 0 || j < i {
		t.Fatalf("logs on error:\n%s", got)
	}
}

// BenchmarkLogLine is an access-log-sized line logged from many
// goroutines to a pipe that another goroutine drains, as when stderr is
// piped to a log collector: straight to the pipe, and through logBuffer.
func BenchmarkLogLine(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		b.Run(map[bool]string{false: "direct", true: "buffered"}[buffered], func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan struct{})
			go func() { io.Copy(io.Discard, r); close(drained) }()
			e := &env{getenv: func(string) string { return "" }, stderr: w}
			var buf *logBuffer
			if buffered {
				buf = newLogBuffer(w)
			}
			log, _, err := e.logger(buf)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.Info("request", "request_id", "0123456789abcdef", "route", "chat", "status", 200,
						"key_name", "Mobile-App", "model", "gemini-flash", "total_tokens", 42, "duration_ms", 12.5)
				}
			})
			if buf != nil {
				buf.Close()
			}
			w.Close()
			<-drained
			r.Close()
		})
	}
}
