package llmproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/syncbuf"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/metrics"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// syncBuffer is a buffer safe for a writer and the test at once.
type syncBuffer = syncbuf.Buffer

const keyLimitedLog = "sk-limited-log-789"

// logGateway is a Gateway with an access log (handler h) in front of a
// fake upstream: key "Mobile-App" (keyConn) on the connection, key
// "Limited" (keyLimitedLog) with one request per 1000s.
func logGateway(t *testing.T, h slog.Handler) (*httptest.Server, *fakeopenai.Server, map[string]string) {
	ctx := context.Background()
	store := memory.New()
	fake := fakeopenai.New(t, upstreamKey)
	conn := &llmproxy.Connection{Name: "fake-conn", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, store.CreateConnection(ctx, conn))
	must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "gpt-alias", Remote: "remote-model-1", ConnectionID: conn.ID}))
	ids := map[string]string{}
	for _, k := range []struct {
		name, secret string
		tps          float64
	}{{"Mobile-App", keyConn, 0}, {"Limited", keyLimitedLog, 0.001}} {
		vk := &llmproxy.VirtualKey{Name: k.name, Hash: llmproxy.HashKey(k.secret), Prefix: llmproxy.KeyPrefix(k.secret),
			Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID, TPS: k.tps}}}
		must(t, store.CreateKey(ctx, vk))
		ids[k.name] = vk.ID
	}
	al := llmproxy.NewAccessLog(slog.New(h))
	gw, err := llmproxy.New(llmproxy.Config{
		Storage:   store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
		MasterKey: masterKey,
		Observers: []llmproxy.Observer{al},
	})
	must(t, err)
	srv := httptest.NewServer(al.Handler(gw))
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return srv, fake, ids
}

func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	srv, fake, ids := logGateway(t, slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const (
		chat   = `{"model":"gpt-alias","messages":[{"role":"user","content":"hi there"}]}`
		stream = `{"model":"gpt-alias","stream":true,"messages":[{"role":"user","content":"hi there"}]}`
		embed  = `{"model":"gpt-alias","input":"a"}`
		nope   = `{"model":"made-up","messages":[{"role":"user","content":"hi"}]}`
	)
	type want struct {
		status        int
		keyName       string
		model         string
		prompt        float64
		upstreamError bool
		refused       string
	}
	steps := []struct {
		name, method, path, key, body string
		fail                          int
		want                          want
	}{
		{"ok", "POST", "/v1/chat/completions", keyConn, chat, 0, want{200, "Mobile-App", "gpt-alias", fakeopenai.PromptTokens, false, ""}},
		{"stream", "POST", "/v1/chat/completions", keyConn, stream, 0, want{200, "Mobile-App", "gpt-alias", fakeopenai.PromptTokens, false, ""}},
		{"embeddings", "POST", "/v1/embeddings", keyConn, embed, 0, want{200, "Mobile-App", "gpt-alias", 3, false, ""}},
		{"master", "POST", "/v1/chat/completions", masterKey, chat, 0, want{200, "", "gpt-alias", fakeopenai.PromptTokens, false, ""}},
		{"unknown model", "POST", "/v1/chat/completions", keyConn, nope, 0, want{404, "Mobile-App", "", 0, false, ""}},
		{"bad key", "POST", "/v1/chat/completions", "sk-wrong-secret-000", chat, 0, want{401, "", "", 0, false, ""}},
		{"limited ok", "POST", "/v1/chat/completions", keyLimitedLog, chat, 0, want{200, "Limited", "gpt-alias", fakeopenai.PromptTokens, false, ""}},
		{"limited refused", "POST", "/v1/chat/completions", keyLimitedLog, chat, 0, want{429, "Limited", "gpt-alias", 0, false, "requests"}},
		{"upstream 500", "POST", "/v1/chat/completions", keyConn, chat, 500, want{502, "Mobile-App", "gpt-alias", 0, true, ""}},
		{"models", "GET", "/v1/models", keyConn, "", 0, want{status: 200}},
		{"health", "GET", "/healthz", "", "", 0, want{status: 200}},
		{"unknown path", "GET", "/nope", "", "", 0, want{status: 404}},
	}
	for i, s := range steps {
		fake.SetFail(s.fail)
		req, _ := http.NewRequest(s.method, srv.URL+s.path, strings.NewReader(s.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", fmt.Sprintf("test-%d", i))
		if s.key != "" {
			req.Header.Set("Authorization", "Bearer "+s.key)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.want.status {
			t.Fatalf("%s: status %d, want %d", s.name, resp.StatusCode, s.want.status)
		}
	}
	fake.SetFail(0)

	// The line of a stream is written when its handler returns, which
	// may be just after the client saw the end.
	var lines []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines = lines[:0]
		for l := range strings.Lines(buf.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			if m["msg"] == "request" {
				lines = append(lines, m)
			}
		}
		if len(lines) >= len(steps) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	byID := map[string]map[string]any{}
	for _, l := range lines {
		id, _ := l["request_id"].(string)
		if byID[id] != nil {
			t.Errorf("two lines for request %q", id)
		}
		byID[id] = l
	}
	if len(lines) != len(steps) {
		t.Errorf("%d access-log lines for %d requests", len(lines), len(steps))
	}
	for i, s := range steps {
		l := byID[fmt.Sprintf("test-%d", i)]
		if l == nil {
			t.Errorf("%s: no line", s.name)
			continue
		}
		if l["status"] != float64(s.want.status) {
			t.Errorf("%s: status %v", s.name, l["status"])
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("%s: no duration_ms: %v", s.name, l)
		}
		if s.method == "GET" {
			continue // not observed by the Gateway: route, status, duration only
		}
		route := "chat"
		if strings.HasSuffix(s.path, "/embeddings") {
			route = "embeddings"
		}
		for k, v := range map[string]any{
			"key_name":      s.want.keyName,
			"key_id":        ids[s.want.keyName],
			"model":         s.want.model,
			"prompt_tokens": s.want.prompt,
			"route":         route,
		} {
			if got := l[k]; got != v {
				t.Errorf("%s: %s = %v, want %v", s.name, k, l[k], v)
			}
		}
		if s.want.model != "" && l["provider"] != llmproxy.KindCompatible {
			t.Errorf("%s: provider %v", s.name, l["provider"])
		}
		if (l["upstream_error"] == true) != s.want.upstreamError {
			t.Errorf("%s: upstream_error %v", s.name, l["upstream_error"])
		}
		if s.want.refused != "" && l["refused"] != s.want.refused {
			t.Errorf("%s: refused %v", s.name, l["refused"])
		}
		if s.want.status == 200 {
			if _, ok := l["upstream_ms"].(float64); !ok {
				t.Errorf("%s: no upstream_ms", s.name)
			}
		}
		if s.name == "stream" {
			if l["stream"] != true || l["first_token_ms"] == nil || l["completion_tokens"].(float64) <= 0 {
				t.Errorf("stream line: %v", l)
			}
		}
		if s.name == "master" && l["master_key"] != true {
			t.Errorf("master line: %v", l)
		}
		if s.name == "upstream 500" && l["level"] != "WARN" {
			t.Errorf("a 5xx is logged at %v", l["level"])
		}
	}
	for _, secret := range []string{keyConn, keyLimitedLog, masterKey, upstreamKey, "sk-wrong-secret-000", llmproxy.HashKey(keyConn)} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
	}
}

// TestAccessLogText checks the text format and that the level filters.
func TestAccessLogText(t *testing.T) {
	var buf syncBuffer
	srv, _, _ := logGateway(t, slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	resp, err = http.Get(srv.URL + "/healthz") // Debug: filtered out
	must(t, err)
	resp.Body.Close()
	waitFor(t, func() bool { return strings.Contains(buf.String(), "msg=request") })
	out := buf.String()
	if n := strings.Count(out, "msg=request"); n != 1 {
		t.Errorf("%d lines, want 1 (health checks are Debug):\n%s", n, out)
	}
	for _, f := range []string{"level=INFO", "route=chat", "status=200", "key_name=Mobile-App", "model=gpt-alias", "provider=compatible", "prompt_tokens=11", "duration_ms="} {
		if !strings.Contains(out, f) {
			t.Errorf("no %s in %s", f, out)
		}
	}
	if strings.Contains(out, keyConn) || strings.Contains(out, upstreamKey) {
		t.Errorf("secret in %s", out)
	}
}

func TestRouteOf(t *testing.T) {
	for _, c := range []struct {
		method, path, route string
		observed            bool
	}{
		{"POST", "/v1/chat/completions", "chat", true},
		{"POST", "/chat/completions/", "chat", true},
		{"GET", "/v1/chat/completions", "chat", false},
		{"POST", "/v1/embeddings", "embeddings", true},
		{"GET", "/v1/models", "models", false},
		{"GET", "/v1/models/gpt-4o", "models", false},
		{"GET", "/healthz", "health", false},
		{"GET", "/metrics", "metrics", false},
		{"GET", "/admin/v1/keys", "admin", false},
		{"GET", "/v1/anything-a-client-makes-up", "other", false},
	} {
		route, observed := llmproxy.RouteOf(c.method, c.path)
		if route != c.route || observed != c.observed {
			t.Errorf("RouteOf(%s %s) = %s, %v; want %s, %v", c.method, c.path, route, observed, c.route, c.observed)
		}
	}
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
			must(b, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}))
			gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}, Observers: c.observers()})
			must(b, err)
			defer gw.Close()
			body := []byte(benchRequest)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+keyConn)
				req.Header.Set("Content-Type", "application/json")
				gw.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			}
		})
	}
}

// BenchmarkObserve is the observers alone, for one request's info.
func BenchmarkObserve(b *testing.B) {
	info := &llmproxy.RequestInfo{RequestID: "req_01", Route: "chat", Method: "POST", Status: 200, Authenticated: true,
		KeyID: "key_01", KeyName: "Mobile-App", Model: "bench", RemoteModel: "remote", Provider: "compatible", ConnectionID: "conn_01", Connection: "c",
		Usage: llmproxy.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21}, Attempts: 1,
		Start: time.Now(), Total: 900 * time.Microsecond, Upstream: 700 * time.Microsecond}
	for _, c := range []struct {
		name string
		o    llmproxy.Observer
	}{{"metrics", benchMetrics(b)}, {"accesslog", benchAccessLog()}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.o.ObserveRequest(info)
			}
		})
	}
}

func benchMetrics(b *testing.B) *metrics.Metrics {
	m, err := metrics.New(prometheus.NewRegistry())
	must(b, err)
	return m
}

func benchAccessLog() *llmproxy.AccessLog {
	return llmproxy.NewAccessLog(slog.New(slog.NewJSONHandler(io.Discard, nil)))
}
