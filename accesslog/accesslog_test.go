package accesslog_test

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
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/accesslog"
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

// logGateway is a Gateway with access log al in front of a fake
// upstream: key "Mobile-App" (keyConn) on the connection, key "Limited"
// (keyLimitedLog) with one request per 1000s.
func logGateway(t *testing.T, al *accesslog.Log) (*httptest.Server, *fakeopenai.Server, map[string]string) {
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

// accessLogs are the two ways to make an AccessLog writing format at
// level to w, for tests that run with each.
var accessLogs = []struct {
	name string
	make func(w io.Writer, format accesslog.Format, level slog.Leveler) *accesslog.Log
}{
	{"slog", func(w io.Writer, format accesslog.Format, level slog.Leveler) *accesslog.Log {
		opts := &slog.HandlerOptions{Level: level}
		if format == accesslog.JSON {
			return accesslog.New(slog.New(slog.NewJSONHandler(w, opts)))
		}
		return accesslog.New(slog.New(slog.NewTextHandler(w, opts)))
	}},
	{"writer", accesslog.NewWriter},
}

func TestAccessLog(t *testing.T) {
	for _, al := range accessLogs {
		t.Run(al.name, func(t *testing.T) {
			var buf syncBuffer
			testAccessLog(t, &buf, al.make(&buf, accesslog.JSON, slog.LevelDebug))
		})
	}
}

// testAccessLog checks the JSON lines access log al writes to buf.
func testAccessLog(t *testing.T, buf *syncBuffer, al *accesslog.Log) {
	srv, fake, ids := logGateway(t, al)
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
	for _, al := range accessLogs {
		t.Run(al.name, func(t *testing.T) {
			var buf syncBuffer
			testAccessLogText(t, &buf, al.make(&buf, accesslog.Text, slog.LevelInfo))
		})
	}
}

func testAccessLogText(t *testing.T, buf *syncBuffer, al *accesslog.Log) {
	srv, _, _ := logGateway(t, al)
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

// benchAccessLog is the access log as serve makes it (its own formatter).
func benchAccessLog() *accesslog.Log {
	return accesslog.NewWriter(io.Discard, accesslog.JSON, slog.LevelInfo)
}

// lineRecorder is an io.Writer with Flush that records what it is given:
// each Write as "write" (failing the test unless it is one whole line)
// and each Flush as "flush". Its Write is not safe for concurrent use, so
// the race detector sees an AccessLog that does not serialize them.
type lineRecorder struct {
	t      testing.TB
	out    bytes.Buffer
	writes int

	mu      sync.Mutex // for events and flushes: Flush comes unserialized
	events  []string
	flushes int
}

func (r *lineRecorder) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') != len(p)-1 {
		r.t.Errorf("a Write that is not one line: %q", p)
	}
	r.writes++
	r.out.Write(p)
	r.mu.Lock()
	r.events = append(r.events, "write")
	r.mu.Unlock()
	return len(p), nil
}

func (r *lineRecorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "flush")
	r.flushes++
	return nil
}

// accessLogLines has al log what a serving gateway would: an answered
// chat request, a failed one (Warn), a health check (Debug), a model list
// and a failed model list (Warn).
func accessLogLines(al *accesslog.Log) {
	al.ObserveRequest(&llmproxy.RequestInfo{RequestID: "ok", Route: "chat", Method: "POST", Status: 200})
	al.ObserveRequest(&llmproxy.RequestInfo{RequestID: "failed", Route: "chat", Method: "POST", Status: 502, UpstreamError: true})
	for _, c := range []struct {
		path   string
		status int
	}{{"/healthz", 200}, {"/v1/models", 200}, {"/v1/models", 500}} {
		h := al.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(c.status) }))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", c.path, nil))
	}
}

func TestAccessLogWriterLevels(t *testing.T) {
	var dynamic slog.LevelVar
	dynamic.Set(slog.LevelWarn)
	for _, c := range []struct {
		level slog.Leveler
		want  []string // request ids, or routes for Handler's lines
	}{
		{slog.LevelDebug, []string{"ok", "failed", "route=health method=GET status=200", "route=models method=GET status=200", "route=models method=GET status=500"}},
		{nil, []string{"ok", "failed", "route=models method=GET status=200", "route=models method=GET status=500"}},
		{slog.LevelInfo, []string{"ok", "failed", "route=models method=GET status=200", "route=models method=GET status=500"}},
		{slog.LevelWarn, []string{"failed", "route=models method=GET status=500"}},
		{&dynamic, []string{"failed", "route=models method=GET status=500"}},
		{slog.LevelError, nil},
	} {
		w := &lineRecorder{t: t}
		accessLogLines(accesslog.NewWriter(w, accesslog.Text, c.level))
		lines := strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n")
		if len(c.want) == 0 {
			lines = nil
		}
		if len(lines) != len(c.want) || w.writes != len(c.want) {
			t.Errorf("level %v: %d lines in %d writes, want %d:\n%s", c.level, len(lines), w.writes, len(c.want), w.out.String())
			continue
		}
		for i, want := range c.want {
			if !strings.Contains(want, "=") {
				want = "request_id=" + want
			}
			if !strings.Contains(lines[i], want) {
				t.Errorf("level %v: line %d is %q, want %s", c.level, i, lines[i], want)
			}
		}
	}
}

// A buffering writer is flushed after each Warn line, and only then.
func TestAccessLogWriterFlush(t *testing.T) {
	w := &lineRecorder{t: t}
	accessLogLines(accesslog.NewWriter(w, accesslog.JSON, slog.LevelDebug))
	want := "write write flush write write write flush"
	if got := strings.Join(w.events, " "); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	w = &lineRecorder{t: t}
	accessLogLines(accesslog.NewWriter(w, accesslog.JSON, slog.LevelError))
	if len(w.events) != 0 {
		t.Errorf("events with every line filtered out: %q", w.events)
	}
}

// Lines logged at once come out whole, one Write each; run with -race.
func TestAccessLogWriterConcurrent(t *testing.T) {
	const goroutines, rounds = 8, 50
	w := &lineRecorder{t: t}
	al := accesslog.NewWriter(w, accesslog.JSON, slog.LevelDebug)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				accessLogLines(al)
			}
		})
	}
	wg.Wait()
	n := 0
	for l := range strings.Lines(w.out.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] != "request" {
			t.Fatalf("not a whole line: %q", l)
		}
		n++
	}
	if want := goroutines * rounds * 5; n != want || w.writes != want {
		t.Errorf("%d lines in %d writes, want %d", n, w.writes, want)
	}
	if want := goroutines * rounds * 2; w.flushes != want {
		t.Errorf("%d flushes, want %d (one per Warn line)", w.flushes, want)
	}
}

// BenchmarkAccessLog is ObserveRequest's line for one request, through
// slog's handlers and formatted by NewAccessLogWriter's AccessLog, in
// each format, to io.Discard: formatting alone is counted.
func BenchmarkAccessLog(b *testing.B) {
	info := &llmproxy.RequestInfo{RequestID: "0123456789abcdef", Route: "chat", Method: "POST", Status: 200, Authenticated: true,
		KeyID: "key_01", KeyName: "Mobile-App", Model: "gemini-flash", RemoteModel: "gemini-2.0-flash", Provider: "google", ConnectionID: "conn_01", Connection: "google main",
		Usage: llmproxy.Usage{PromptTokens: 12, CompletionTokens: 9, TotalTokens: 21}, Attempts: 1,
		Start: time.Now(), Total: 912345 * time.Nanosecond, Upstream: 700 * time.Microsecond}
	for _, al := range accessLogs {
		for _, format := range []struct {
			name string
			f    accesslog.Format
		}{{"text", accesslog.Text}, {"json", accesslog.JSON}} {
			b.Run(al.name+"/"+format.name, func(b *testing.B) {
				a := al.make(io.Discard, format.f, slog.LevelInfo)
				b.ReportAllocs()
				for b.Loop() {
					a.ObserveRequest(info)
				}
			})
		}
	}
}
