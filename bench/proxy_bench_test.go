package bench_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/accesslog"
	"github.com/go-llm-proxy/llmproxy/metrics"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	"github.com/prometheus/client_golang/prometheus"
)

// benchUpstream answers every chat with a fixed completion, or a stream of
// chunks events.
func benchUpstream(b *testing.B, chunks int) *httptest.Server {
	chunk := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}` + "\n\n")
	usage := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}` + "\n\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if chunks == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
			io.WriteString(w, answer)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for range chunks {
			w.Write(chunk)
			f.Flush()
		}
		w.Write(usage)
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchGateway(b *testing.B, upstream string, a llmproxy.Assignment) *llmproxy.Gateway {
	ctx := context.Background()
	store := memory.New()
	c := &llmproxy.Connection{Name: "c", Provider: llmproxy.KindCompatible, Endpoint: upstream, Credentials: llmproxy.Credentials{APIKey: "k"}}
	must(b, store.CreateConnection(ctx, c))
	must(b, store.CreateModel(ctx, &llmproxy.Model{Name: "bench", Remote: "remote", ConnectionID: c.ID}))
	a.ConnectionID = c.ID
	must(b, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(key), Assignments: []llmproxy.Assignment{a}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(b, err)
	b.Cleanup(func() { gw.Close() })
	return gw
}

// BenchmarkProxyNonStreaming is one proxied request through ServeHTTP
// (auth, alias, limits, ledger on) to a loopback upstream: its allocs/op is
// the gateway's allocations per request, upstream client included.
func BenchmarkProxyNonStreaming(b *testing.B) {
	up := benchUpstream(b, 0)
	gw := benchGateway(b, up.URL, llmproxy.Assignment{TPS: 1e9, TokenLimit: 1 << 62, TokenWindow: time.Hour})
	body := []byte(request)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := &discard{h: http.Header{}}
		gw.ServeHTTP(w, req)
	}
}

// BenchmarkProxyStream relays a 20-chunk stream.
func BenchmarkProxyStream(b *testing.B) {
	up := benchUpstream(b, 20)
	gw := benchGateway(b, up.URL, llmproxy.Assignment{})
	body := []byte(strings.Replace(request, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		w := &discard{h: http.Header{}}
		gw.ServeHTTP(w, req)
	}
}

// BenchmarkLatency compares one request at a time over loopback HTTP,
// direct to the upstream and through the gateway; compare the two ns/op
// (same run) for the added latency.
func BenchmarkLatency(b *testing.B) {
	up := benchUpstream(b, 0)
	gw := benchGateway(b, up.URL, llmproxy.Assignment{TPS: 1e9, TokenLimit: 1 << 62, TokenWindow: time.Hour})
	gsrv := httptest.NewServer(gw)
	b.Cleanup(gsrv.Close)
	client := &http.Client{Transport: llmproxy.NewTransport()}
	run := func(b *testing.B, url string) {
		body := []byte(request)
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.StatusCode)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL+"/chat/completions") })
	b.Run("gateway", func(b *testing.B) { run(b, gsrv.URL+"/v1/chat/completions") })
}

// BenchmarkObservers is the cost of metrics and access logging per
// request: one non-streaming request through ServeHTTP to a loopback
// upstream, with no observer, the metrics, a JSON access log (to
// io.Discard, so formatting but no I/O is counted), and both. Compare the
// ns/op and allocs/op of the sub-benchmarks of one run.
func BenchmarkObservers(b *testing.B) {
	up := benchUpstream(b, 0)
	for _, c := range []struct {
		name      string
		observers func() []llmproxy.Observer
	}{
		{"off", func() []llmproxy.Observer { return nil }},
		{"metrics", func() []llmproxy.Observer { return []llmproxy.Observer{benchMetrics(b)} }},
		{"accesslog", func() []llmproxy.Observer { return []llmproxy.Observer{benchAccessLog()} }},
		{"both", func() []llmproxy.Observer { return []llmproxy.Observer{benchMetrics(b), benchAccessLog()} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			store := memory.New()
			conn := &llmproxy.Connection{Name: "c", Provider: llmproxy.KindCompatible, Endpoint: up.URL, Credentials: llmproxy.Credentials{APIKey: "k"}}
			must(b, store.CreateConnection(ctx, conn))
			must(b, store.CreateModel(ctx, &llmproxy.Model{Name: "bench", Remote: "remote", ConnectionID: conn.ID}))
			must(b, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(key), Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}))
			gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}, Observers: c.observers()})
			must(b, err)
			defer gw.Close()
			body := []byte(request)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				gw.ServeHTTP(&discard{h: http.Header{}}, req)
			}
		})
	}
}

func benchMetrics(b *testing.B) *metrics.Metrics {
	m, err := metrics.New(prometheus.NewRegistry())
	must(b, err)
	return m
}

// benchAccessLog is the access log as serve makes it (its own formatter).
func benchAccessLog() *accesslog.Log {
	return accesslog.NewWriter(io.Discard, accesslog.JSON, slog.LevelInfo)
}
