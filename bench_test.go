package llmproxy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const benchAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"remote","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, this is a short answer."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`

const benchRequest = `{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64}`

// benchUpstream answers every chat with a fixed completion, or a stream of
// chunks events.
func benchUpstream(b *testing.B, chunks int) *httptest.Server {
	chunk := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}` + "\n\n")
	usage := []byte(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}` + "\n\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if chunks == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(benchAnswer)))
			io.WriteString(w, benchAnswer)
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
	must(b, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Assignments: []llmproxy.Assignment{a}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(b, err)
	b.Cleanup(func() { gw.Close() })
	return gw
}

// discardWriter is a minimal ResponseWriter, so the benchmark counts the
// gateway's allocations and its upstream client's, nothing else.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// BenchmarkProxyNonStreaming is one proxied request through ServeHTTP
// (auth, alias, limits, ledger on) to a loopback upstream: its allocs/op is
// the gateway's allocations per request, upstream client included.
func BenchmarkProxyNonStreaming(b *testing.B) {
	up := benchUpstream(b, 0)
	gw := benchGateway(b, up.URL, llmproxy.Assignment{TPS: 1e9, TokenLimit: 1 << 62, TokenWindow: time.Hour})
	body := []byte(benchRequest)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+keyConn)
		req.Header.Set("Content-Type", "application/json")
		w := &discardWriter{h: http.Header{}}
		gw.ServeHTTP(w, req)
	}
}

// BenchmarkProxyStream relays a 20-chunk stream.
func BenchmarkProxyStream(b *testing.B) {
	up := benchUpstream(b, 20)
	gw := benchGateway(b, up.URL, llmproxy.Assignment{})
	body := []byte(strings.Replace(benchRequest, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+keyConn)
		w := &discardWriter{h: http.Header{}}
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
		body := []byte(benchRequest)
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+keyConn)
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
