//go:build soak

// The soak test is kept out of the default test run. Run it with
//
//	go test -tags soak -run Soak -timeout 20m -v ./cmd/llm-proxy
//
// LLMPROXY_SOAK_DURATION (a Go duration, default 10m) sets how long the
// load runs; LLMPROXY_SOAK_WORKERS (default 8) how many clients send it.

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

// soakMetricsToken is serve's METRICS_TOKEN in the soak.
const soakMetricsToken = "soak-metrics-token"

// scrape reads the gauges the soak watches from the server's /metrics.
func scrape(t *testing.T, c *http.Client, base string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+soakMetricsToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping /metrics: %s", resp.Status)
	}
	want := []string{"go_goroutines", "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes",
		"llmproxy_inflight_streams", "llmproxy_ledger_pending", "llmproxy_ledger_written_total", "llmproxy_ledger_dropped_total"}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for _, w := range want {
			if name == w {
				out[w], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return out
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// TestSoak runs a mixed load (plain and streamed chats, embeddings,
// clients hanging up mid-stream, rate and token refusals, failing
// upstreams, bad keys and bodies) against one real server process, then
// checks that its goroutines and heap are back to their baseline, that no
// usage record was lost (one per request that reached a model), and that
// it shuts down cleanly.
func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if v := os.Getenv("LLMPROXY_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		duration = d
	}
	workers := 8
	if v := os.Getenv("LLMPROXY_SOAK_WORKERS"); v != "" {
		workers, _ = strconv.Atoi(v)
	}
	const encKey = "soak encryption passphrase"
	fast, slow, broken := fakeopenai.New(t, "sk-up-fast"), fakeopenai.New(t, "sk-up-slow"), fakeopenai.New(t, "sk-up-broken")
	slow.SetDelay(0, 15*time.Millisecond)
	broken.SetFail(500)

	dir := t.TempDir()
	dsn := filepath.Join(dir, "soak.db")
	env := map[string]string{"DB_DSN": dsn, "ENCRYPTION_KEY": encKey}
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut); err != nil {
			t.Fatalf("%v: %v %s", args, err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	for _, up := range []struct {
		name string
		f    *fakeopenai.Server
	}{{"fast", fast}, {"slow", slow}, {"broken", broken}} {
		cli("connection", "add", "--name", up.name, "--provider", "compatible", "--endpoint", up.f.BaseURL(), "--api-key", up.f.APIKey, "-q")
		cli("model", "add", "--name", up.name, "--remote", "remote-"+up.name, "--conn-id", up.name, "-q")
	}
	cli("vkey", "add", "--name", "open", "--key", "sk-soak-open", "--conn-id", "fast", "--conn-id", "slow", "--conn-id", "broken", "-q")
	cli("vkey", "add", "--name", "rate", "--key", "sk-soak-rate", "--conn-id", "fast", "--tps", "2", "--burst", "2", "-q")
	cli("vkey", "add", "--name", "tokens", "--key", "sk-soak-tokens", "--conn-id", "fast", "--token-limit", "3000", "--token-window", "10s", "-q")

	// The server: the real binary, one process, on a free port; its
	// warnings (one per failing-upstream request) go to a file.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(binary(t), "serve", "--addr", addr, "--shutdown-grace", "20s")
	cmd.Env = append(os.Environ(), "DB_DSN="+dsn, "ENCRYPTION_KEY="+encKey, "LOG_LEVEL=warn", "METRICS_TOKEN="+soakMetricsToken)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	base := "http://" + addr
	for ready := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(ready) {
			t.Fatal("serve did not start within 30s")
		}
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	metricsClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	type kind int
	const (
		chatOK kind = iota
		streamOK
		longStream
		hangUp
		embed
		rateLimited
		tokenLimited
		upstreamDown
		badKey
		badBody
		unknownModel
		kinds
	)
	names := [kinds]string{"chat", "stream", "long stream", "hang-up mid-stream", "embeddings", "rate-limited key", "token-limited key",
		"failing upstream", "bad key", "bad body", "unknown model"}
	weights := [kinds]int{25, 20, 5, 8, 7, 10, 8, 7, 4, 3, 3}
	var table []kind
	for k, w := range weights {
		for range w {
			table = append(table, kind(k))
		}
	}
	var (
		mu       sync.Mutex
		byStatus = map[string]int{} // "kind status" -> count
		total    atomic.Int64
		routed   atomic.Int64 // requests that reached a model: one usage record each
		failures atomic.Int64
	)
	note := func(k kind, status int) {
		mu.Lock()
		byStatus[fmt.Sprintf("%-20s %d", names[k], status)]++
		mu.Unlock()
	}
	one := func(ctx context.Context, k kind) {
		key, model, stream, body := "sk-soak-open", "fast", false, ""
		text := "soak test message"
		switch k {
		case streamOK:
			stream = true
		case longStream:
			model, stream, text = "slow", true, strings.Repeat("word ", 20)
		case hangUp:
			model, stream, text = "slow", true, strings.Repeat("word ", 40)
		case rateLimited:
			key = "sk-soak-rate"
		case tokenLimited:
			key = "sk-soak-tokens"
		case upstreamDown:
			model = "broken"
		case badKey:
			key = "sk-soak-wrong"
		case unknownModel:
			model = "nope"
		}
		path := "/v1/chat/completions"
		switch k {
		case embed:
			path, body = "/v1/embeddings", `{"model":"fast","input":["a","b"]}`
		case badBody:
			body = `{"model":"fast","messages":[`
		default:
			body = fmt.Sprintf(`{"model":%q,"stream":%v,"max_tokens":50,"messages":[{"role":"user","content":%q}]}`, model, stream, text)
		}
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				failures.Add(1)
				t.Logf("%s: %v", names[k], err)
			}
			return
		}
		total.Add(1)
		switch resp.StatusCode {
		case 400, 401, 404:
		default:
			routed.Add(1)
		}
		if k == hangUp && resp.StatusCode == 200 {
			r := bufio.NewReader(resp.Body)
			for range 4 { // two events
				r.ReadString('\n')
			}
			cancel()
			resp.Body.Close()
			note(k, 499)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ctx.Err() != nil { // the load ended mid-answer: a hang-up
			note(k, 499)
			return
		}
		if resp.StatusCode == 200 && stream && !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			failures.Add(1)
			t.Logf("%s: stream without [DONE]: %q", names[k], b)
		}
		note(k, resp.StatusCode)
	}

	// Warm up, then take the baseline at rest.
	for i := range 200 {
		one(context.Background(), table[i%len(table)])
	}
	// At rest no connection is open: the clients' idle ones are closed,
	// and so are the gateway's idle upstream ones (from the fakes' side).
	settle := func() map[string]float64 {
		client.CloseIdleConnections()
		for _, f := range []*fakeopenai.Server{fast, slow, broken} {
			f.CloseClientConnections()
		}
		time.Sleep(3 * time.Second)
		return scrape(t, metricsClient, base)
	}
	before := settle()
	t.Logf("baseline: goroutines %.0f, heap in use %s, RSS %s", before["go_goroutines"], mib(before["go_memstats_heap_inuse_bytes"]), mib(before["process_resident_memory_bytes"]))

	// Load.
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var peakG, peakRSS, peakHeap float64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				m := scrape(t, metricsClient, base)
				peakG, peakRSS, peakHeap = max(peakG, m["go_goroutines"]), max(peakRSS, m["process_resident_memory_bytes"]), max(peakHeap, m["go_memstats_heap_inuse_bytes"])
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				one(ctx, table[rng.IntN(len(table))])
				time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	<-sampled
	elapsed := time.Since(start)

	// Back at rest: goroutines and heap return to the baseline.
	var after map[string]float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		after = settle()
		if (after["go_goroutines"] <= before["go_goroutines"]+3 && after["llmproxy_ledger_pending"] == 0) || time.Now().After(deadline) {
			break
		}
	}
	keys := make([]string, 0, len(byStatus))
	for k := range byStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var mix strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&mix, "\n  %s  %7d", k, byStatus[k])
	}
	t.Logf("%d requests in %v (%.0f/s) by %d clients, %d transport failures; by kind and status:%s",
		total.Load(), elapsed.Round(time.Second), float64(total.Load())/elapsed.Seconds(), workers, failures.Load(), mix.String())
	t.Logf("goroutines: before %.0f, peak %.0f, after %.0f", before["go_goroutines"], peakG, after["go_goroutines"])
	t.Logf("heap in use: before %s, peak %s, after %s", mib(before["go_memstats_heap_inuse_bytes"]), mib(peakHeap), mib(after["go_memstats_heap_inuse_bytes"]))
	t.Logf("RSS: before %s, peak %s, after %s", mib(before["process_resident_memory_bytes"]), mib(peakRSS), mib(after["process_resident_memory_bytes"]))
	if failures.Load() > 0 {
		t.Errorf("%d requests failed at the transport or ended a stream early", failures.Load())
	}
	if g := after["go_goroutines"]; g > before["go_goroutines"]+3 {
		t.Errorf("goroutines did not return to the baseline: %.0f before, %.0f after", before["go_goroutines"], g)
	}
	if h := after["go_memstats_heap_inuse_bytes"]; h > before["go_memstats_heap_inuse_bytes"]+32<<20 {
		t.Errorf("heap in use did not return to the baseline: %s before, %s after", mib(before["go_memstats_heap_inuse_bytes"]), mib(h))
	}
	if s := after["llmproxy_inflight_streams"]; s != 0 {
		t.Errorf("%.0f streams still counted in flight", s)
	}
	if d := after["llmproxy_ledger_dropped_total"]; d != 0 {
		t.Errorf("%.0f usage records dropped", d)
	}

	// A clean stop, then every usage record is in the database.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			b, _ := os.ReadFile(logFile.Name())
			t.Errorf("serve exited with %v\n%s", err, b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
	var store *sqlite.Store
	key, _ := secret.ParseKey(encKey)
	sealer, _ := secret.NewAESGCM(key)
	store, err = sqlite.Open(context.Background(), dsn, sqlite.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sums, err := store.SumUsage(context.Background(), llmproxy.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var records int64
	for _, s := range sums {
		records += s.Requests
	}
	// The warm-up's requests are in the ledger too.
	if want := routed.Load(); records != want {
		t.Errorf("the ledger holds %d records; %d requests reached a model", records, want)
	} else {
		t.Logf("ledger: %d records = %d requests that reached a model (of %d answered)", records, want, total.Load())
	}
}
