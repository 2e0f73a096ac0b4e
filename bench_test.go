package llmproxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// Benchmarks of the request path's pieces, one by one, with allocations:
//
//	go test -run '^$' -bench 'Hot' -benchmem .
//
// BenchmarkHotServeHTTP is the whole path without a network: its
// allocs/op is the gateway's own per request (the upstream client's are
// in bench/gateway_bench_test.go).

const (
	hotKey     = "sk-hot-0123456789"
	hotRequest = `{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64}`
	hotAnswer  = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"remote","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, this is a short answer."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`
	hotChunk   = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}`
	hotUsage   = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}`
)

// hotStore serves a fixed configuration; only the methods the Gateway
// calls while serving are implemented.
type hotStore struct {
	Storage
	conns    []Connection
	models   []Model
	keys     []VirtualKey
	appended atomic.Int64
}

func (s *hotStore) ConfigVersion(context.Context) (string, error) { return "1", nil }
func (s *hotStore) Connections(context.Context, ListOptions) ([]Connection, error) {
	return s.conns, nil
}
func (s *hotStore) Models(context.Context, ListOptions) ([]Model, error)          { return s.models, nil }
func (s *hotStore) Keys(context.Context, ListOptions) ([]VirtualKey, error)       { return s.keys, nil }
func (s *hotStore) SumUsage(context.Context, UsageFilter) ([]UsageSummary, error) { return nil, nil }
func (s *hotStore) AppendUsage(_ context.Context, r []UsageRecord) error {
	s.appended.Add(int64(len(r)))
	return nil
}

// hotProvider answers without a network: a fixed answer, or a stream of
// events. It builds the upstream body as a passthrough provider does.
type hotProvider struct{ events int }

func (p *hotProvider) ChatCompletion(_ context.Context, req *Request) (*Response, error) {
	_ = req.UpstreamBody()
	if req.Stream {
		return &Response{Stream: &hotStream{left: p.events}}, nil
	}
	return &Response{Body: []byte(hotAnswer)}, nil
}

type hotStream struct {
	left      int
	usageSent bool
}

var hotChunkBytes, hotUsageBytes = []byte(hotChunk), []byte(hotUsage)

func (s *hotStream) Next() ([]byte, error) {
	if s.left > 0 {
		s.left--
		return hotChunkBytes, nil
	}
	if !s.usageSent {
		s.usageSent = true
		return hotUsageBytes, nil
	}
	return nil, io.EOF
}
func (s *hotStream) Close() error { return nil }

// hotGateway is a Gateway over hotStore with routes models behind the
// alias "bench", and a key whose assignment has limits that never bite.
func hotGateway(b *testing.B, routes, events int) (*Gateway, *hotStore) {
	st := &hotStore{conns: []Connection{{ID: "conn_1", Name: "c", Provider: KindCompatible}}}
	for i := range routes {
		st.models = append(st.models, Model{ID: "model_" + string(rune('a'+i)), Name: "bench", Remote: "remote", ConnectionID: "conn_1", Weight: i + 1})
	}
	st.keys = []VirtualKey{{ID: "key_1", Name: "k", Hash: HashKey(hotKey), Assignments: []Assignment{
		{ID: "asg_1", ConnectionID: "conn_1", TPS: 1e9, TokenLimit: 1 << 62, TokenWindow: time.Hour}}}}
	g, err := New(Config{Storage: st, Providers: map[string]NewProviderFunc{
		KindCompatible: func(Connection, ProviderOptions) (Provider, error) { return &hotProvider{events: events}, nil },
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	return g, st
}

// hotWriter is a ResponseWriter that keeps nothing.
type hotWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *hotWriter) Header() http.Header         { return w.h }
func (w *hotWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *hotWriter) WriteHeader(s int)           { w.status = s }
func (w *hotWriter) Flush()                      {}

// hotRequest is an *http.Request reused across iterations: reset puts
// back what ServeHTTP consumes (the body, the Authorization header).
type hotReq struct {
	r    *http.Request
	body *bytes.Reader
	auth []string
	raw  []byte
}

func newHotReq(body string) *hotReq {
	h := &hotReq{raw: []byte(body), auth: []string{"Bearer " + hotKey}}
	h.body = bytes.NewReader(h.raw)
	r, _ := http.NewRequest(http.MethodPost, "http://gw/v1/chat/completions", io.NopCloser(h.body))
	r.Header["Content-Type"] = []string{"application/json"}
	r.ContentLength = int64(len(h.raw))
	h.r = r
	return h
}

func (h *hotReq) reset() *http.Request {
	h.body.Reset(h.raw)
	h.r.Header["Authorization"] = h.auth
	return h.r
}

func BenchmarkHotAuthenticate(b *testing.B) {
	g, _ := hotGateway(b, 1, 0)
	s := g.snap.Load()
	req := newHotReq(hotRequest)
	b.ReportAllocs()
	for b.Loop() {
		c, err := g.authenticate(req.reset(), s)
		if err != nil || c.key == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHotAliasResolution(b *testing.B) {
	for _, routes := range []int{1, 3} {
		b.Run("routes="+string(rune('0'+routes)), func(b *testing.B) {
			g, _ := hotGateway(b, routes, 0)
			s := g.snap.Load()
			c, err := g.authenticate(newHotReq(hotRequest).reset(), s)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				gs := g.order(c.grants(s, "bench"))
				if len(gs) != routes {
					b.Fatal(len(gs))
				}
			}
		})
	}
}

func BenchmarkHotLimiter(b *testing.B) {
	ctx := context.Background()
	l := NewLocalLimiter()
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d, _ := l.AllowRequest(ctx, "r:asg_1", 1e9, 1e9, time.Now()); !d.Allowed {
				b.Fatal("refused")
			}
		}
	})
	b.Run("tokens", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			now := time.Now()
			if d, _ := l.ReserveTokens(ctx, "t:asg_1", 100, 1<<62, time.Hour, now); !d.Allowed {
				b.Fatal("refused")
			}
			l.AdjustTokens(ctx, "t:asg_1", -10, time.Hour, now)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				now := time.Now()
				l.AllowRequest(ctx, "r:asg_1", 1e9, 1e9, now)
				l.ReserveTokens(ctx, "t:asg_1", 100, 1<<62, time.Hour, now)
				l.AdjustTokens(ctx, "t:asg_1", -10, time.Hour, now)
			}
		})
	})
}

func BenchmarkHotParseBody(b *testing.B) {
	body := []byte(hotRequest)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseBody(body, EndpointChat); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHotRewriteBody(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "plain"
		body := []byte(hotRequest)
		if stream {
			name = "stream"
			body = []byte(strings.Replace(hotRequest, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
		}
		b.Run(name, func(b *testing.B) {
			p, err := parseBody(body, EndpointChat)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rewriteBody(body, &p.fields, "gpt-4o-mini-2024-07-18", stream)
			}
		})
	}
}

func BenchmarkHotUsageExtraction(b *testing.B) {
	for _, tc := range []struct{ name, body string }{{"answer", hotAnswer}, {"chunk", hotChunk}, {"usage-chunk", hotUsage}} {
		b.Run(tc.name, func(b *testing.B) {
			data := []byte(tc.body)
			b.ReportAllocs()
			for b.Loop() {
				if bytes.Contains(data, usageKey) {
					usageOf(data)
					isUsageOnly(data)
				}
				jsonscan.StringBytesAfter(data, contentKey)
			}
		})
	}
}

// BenchmarkHotServeHTTP is one non-streaming request through ServeHTTP
// (auth, alias, both limits, body rewrite, usage, ledger) to a provider
// that answers at once.
func BenchmarkHotServeHTTP(b *testing.B) {
	g, st := hotGateway(b, 1, 0)
	req := newHotReq(hotRequest)
	w := &hotWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		g.ServeHTTP(w, req.reset())
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatal(w.status)
		}
	}
	b.StopTimer()
	g.Close()
	if st.appended.Load() == 0 {
		b.Fatal("no usage recorded")
	}
}

// BenchmarkHotRelay relays a 20-event stream (and the usage event, hidden
// from the client) through ServeHTTP; ns/op is per stream.
func BenchmarkHotRelay(b *testing.B) {
	const events = 20
	g, _ := hotGateway(b, 1, events)
	req := newHotReq(strings.Replace(hotRequest, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
	w := &hotWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.n = 0
		g.ServeHTTP(w, req.reset())
		if w.n < events*len(hotChunk) {
			b.Fatalf("relayed %d bytes", w.n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
