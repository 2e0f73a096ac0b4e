package llmproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/metrics"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	"github.com/prometheus/client_golang/prometheus"
)

// msgEnv is a gateway with two aliases for Messages clients: "claude" on
// an anthropic connection (served natively) and "gpt" on an
// OpenAI-compatible one (translated). key may use both, under limits.
type msgEnv struct {
	t     *testing.T
	store *ledgerSpy
	ant   *anthropictest.Server
	oai   *fakeopenai.Server
	gw    *llmproxy.Gateway
	srv   *httptest.Server
	url   string
	reg   *prometheus.Registry
}

// metric returns the value of the counter name with labels, 0 if none.
func (e *msgEnv) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	must(e.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

const msgKey = "sk-claude-code-team"

func newMsgEnv(t *testing.T, limits llmproxy.Assignment) *msgEnv {
	t.Helper()
	ctx := context.Background()
	e := &msgEnv{t: t, store: &ledgerSpy{Store: memory.New()}, ant: anthropictest.New(t), oai: fakeopenai.New(t, upstreamKey)}
	ant := &llmproxy.Connection{Name: "anthropic", Provider: llmproxy.KindAnthropic, Endpoint: e.ant.URL, Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}}
	must(t, e.store.CreateConnection(ctx, ant))
	oai := &llmproxy.Connection{Name: "compat", Provider: llmproxy.KindCompatible, Endpoint: e.oai.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, e.store.CreateConnection(ctx, oai))
	must(t, e.store.CreateModel(ctx, &llmproxy.Model{Name: "claude", Remote: "claude-sonnet-4-5", ConnectionID: ant.ID}))
	must(t, e.store.CreateModel(ctx, &llmproxy.Model{Name: "gpt", Remote: "remote-model-1", ConnectionID: oai.ID}))
	var as []llmproxy.Assignment
	for _, c := range []*llmproxy.Connection{ant, oai} {
		a := limits
		a.ConnectionID = c.ID
		as = append(as, a)
	}
	must(t, e.store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "claude-code", Hash: llmproxy.HashKey(msgKey), Prefix: llmproxy.KeyPrefix(msgKey), Assignments: as}))
	e.reg = prometheus.NewRegistry()
	m, err := metrics.New(e.reg)
	must(t, err)
	gw, err := llmproxy.New(llmproxy.Config{
		Storage:   e.store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindAnthropic: anthropic.New, llmproxy.KindCompatible: openai.New},
		MasterKey: masterKey,
		Observers: []llmproxy.Observer{m},
	})
	must(t, err)
	e.gw = gw
	srv := httptest.NewServer(gw)
	e.srv, e.url = srv, srv.URL
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return e
}

// ledgerSpy is the in-memory Storage (a ResponseStore too), keeping a
// copy of the usage records written to it so that a test can see every
// column.
type ledgerSpy struct {
	*memory.Store
	mu   sync.Mutex
	recs []llmproxy.UsageRecord
}

func (s *ledgerSpy) AppendUsage(ctx context.Context, recs []llmproxy.UsageRecord) error {
	s.mu.Lock()
	s.recs = append(s.recs, recs...)
	s.mu.Unlock()
	return s.Store.AppendUsage(ctx, recs)
}

// records closes the server (waiting for its handlers: a request's
// record is written after its answer went out) and the gateway (flushing
// the ledger), and returns the usage records it wrote.
func (e *msgEnv) records() []llmproxy.UsageRecord {
	e.t.Helper()
	e.srv.Close()
	must(e.t, e.gw.Close())
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	return e.store.recs
}

// sseEvent is one server-sent event as a client reads it.
type sseEvent struct{ name, data string }

// readEvents reads an SSE body to its end.
func readEvents(t *testing.T, resp *http.Response) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" || cur.name != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[len("data: "):]
		}
	}
	return out
}

// postStream posts a streaming Messages body and returns the answer open.
func postStream(t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/messages?beta=true", strings.NewReader(body))
	req.Header.Set("x-api-key", msgKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-beta", "interleaved-thinking-2025-05-14")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestMessagesNative: on an anthropic connection the body reaches the
// upstream as the client sent it but for model (thinking signatures,
// cache_control and unknown fields included), with the client's
// anthropic-version and anthropic-beta; the answer comes back unchanged
// with the gateway's request id; the ledger holds Anthropic's usage,
// cache counts included.
func TestMessagesNative(t *testing.T) {
	e := newMsgEnv(t, llmproxy.Assignment{})
	e.ant.Reply(anthropictest.Reply(anthropictest.Message{
		Content: []anthropictest.Block{anthropictest.TextBlock("Hi there")},
		Usage:   anthropictest.Usage{InputTokens: 3, OutputTokens: 7, CacheReadInputTokens: 100, CacheCreationInputTokens: 20},
	}))
	body := `{"model":"claude","max_tokens":64,"system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],` +
		`"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"hm \u00e9","signature":"EqQBCgIYAhIM+sig=="},{"type":"text","text":"yo"}]},{"role":"user","content":"again"}],` +
		`"thinking":{"type":"adaptive"},"context_management":{"edits":[]}}`
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/messages?beta=true", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+msgKey)
	req.Header.Set("anthropic-version", "2026-10-21")
	req.Header.Set("anthropic-beta", "interleaved-thinking-2025-05-14,claude-code-20250219")
	req.Header.Set("X-Request-Id", "req-from-client")
	resp, got := do(t, req)
	if resp.StatusCode != 200 || !strings.Contains(got, `"text":"Hi there"`) || !strings.Contains(got, `"type":"message"`) {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	if id := resp.Header.Get("X-Request-Id"); id != "req-from-client" {
		t.Errorf("X-Request-Id %q", id)
	}
	if resp.Header.Get("X-Upstream-Request-Id") == "" {
		t.Error("the upstream's request id is not passed on")
	}
	c := e.ant.LastCall()
	want := strings.Replace(body, `"model":"claude"`, `"model":"claude-sonnet-4-5"`, 1)
	if string(c.Body) != want {
		t.Errorf("upstream body\n got %s\nwant %s", c.Body, want)
	}
	if c.RawQuery != "" && c.RawQuery != "beta=true" {
		t.Errorf("query %q", c.RawQuery)
	}
	if v, b := c.Header.Get("anthropic-version"), c.Header.Get("anthropic-beta"); v != "2026-10-21" || b != "interleaved-thinking-2025-05-14,claude-code-20250219" {
		t.Errorf("headers version %q beta %q", v, b)
	}
	if c.Header.Get("x-api-key") != anthropictest.DefaultAPIKey || c.Header.Get("Authorization") != "" {
		t.Errorf("upstream credentials: x-api-key %q Authorization %q", c.Header.Get("x-api-key"), c.Header.Get("Authorization"))
	}
	// Observers run as the request ends, which may be just after the
	// client has its answer.
	waitFor(t, func() bool {
		return e.metric("llmproxy_requests_total", map[string]string{"route": "messages", "model": "claude", "provider": "anthropic", "status_class": "2xx"}) == 1
	})
	for typ, want := range map[string]float64{"prompt": 123, "completion": 7, "cache_read": 100, "cache_write": 20} {
		if got := e.metric("llmproxy_tokens_total", map[string]string{"key": "claude-code", "model": "claude", "type": typ}); got != want {
			t.Errorf("tokens_total{type=%q} = %v, want %v", typ, got, want)
		}
	}
	recs := e.records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Endpoint != llmproxy.EndpointMessages || r.PromptTokens != 123 || r.CompletionTokens != 7 || r.TotalTokens != 130 ||
		r.CacheReadTokens != 100 || r.CacheWriteTokens != 20 || r.Estimated || r.Streamed || r.Model != "claude" || r.Status != 200 {
		t.Errorf("record %+v", r)
	}
}

// TestMessagesNativeStream: the stream is relayed event by event with
// Anthropic's framing (ping included), and its usage recorded from
// message_start and the final message_delta.
func TestMessagesNativeStream(t *testing.T) {
	e := newMsgEnv(t, llmproxy.Assignment{})
	m := anthropictest.Message{
		Content: []anthropictest.Block{anthropictest.ThinkingBlock("let me see", "sig-abc"), anthropictest.TextBlock("Hello from the stream")},
		Usage:   anthropictest.Usage{InputTokens: 5, OutputTokens: 11, CacheReadInputTokens: 40, CacheCreationInputTokens: 2},
	}
	want := anthropictest.Events(m)
	// The fake sends event i only once the client has read event i-1:
	// nothing may wait for a later event.
	seen := make(chan int, len(want))
	a := anthropictest.Stream(want...)
	a.Pace = func(i int) {
		if i > 0 {
			select {
			case <-seen:
			case <-time.After(5 * time.Second):
			}
		}
	}
	e.ant.Reply(a)
	resp := postStream(t, e.url, `{"model":"claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got []sseEvent
	sc := bufio.NewScanner(resp.Body)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			got = append(got, cur)
			cur = sseEvent{}
			seen <- len(got)
		case strings.HasPrefix(line, "event: "):
			cur.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %v", len(got), len(want), got)
	}
	for i, ev := range got {
		var typ struct{ Type string }
		json.Unmarshal([]byte(ev.data), &typ)
		if ev.name != want[i].Type || typ.Type != ev.name {
			t.Errorf("event %d: %q with data type %q, want %q", i, ev.name, typ.Type, want[i].Type)
		}
	}
	if !strings.Contains(got[len(got)-1].name, "message_stop") {
		t.Errorf("last event %v", got[len(got)-1])
	}
	recs := e.records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.PromptTokens != 47 || r.CompletionTokens != 11 || r.CacheReadTokens != 40 || r.CacheWriteTokens != 2 || r.Estimated || !r.Streamed {
		t.Errorf("record %+v", r)
	}
}

// TestMessagesTranslated: on an OpenAI-compatible connection a Messages
// request is translated to Chat Completions, and the answer and stream
// back to Messages.
func TestMessagesTranslated(t *testing.T) {
	e := newMsgEnv(t, llmproxy.Assignment{})
	body := `{"model":"gpt","max_tokens":50,"system":"be brief","messages":[{"role":"user","content":"hi"}]}`
	resp, got := sendAnthropic(t, e.url, "/v1/messages", msgKey, body)
	var msg struct {
		Type       string `json:"type"`
		Role       string `json:"role"`
		Model      string `json:"model"`
		StopReason string `json:"stop_reason"`
		Content    []struct {
			Type, Text string
		} `json:"content"`
		Usage struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(got), &msg); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	if msg.Type != "message" || msg.Role != "assistant" || msg.Model != "gpt" || msg.StopReason != "end_turn" ||
		len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text == "" || msg.Usage.InputTokens == 0 {
		t.Errorf("message %s", got)
	}
	up := e.oai.Last()
	if !strings.Contains(string(up.Body), `"role":"system"`) || !strings.Contains(string(up.Body), `"model":"remote-model-1"`) {
		t.Errorf("upstream chat body %s", up.Body)
	}

	stream := postStream(t, e.url, `{"model":"gpt","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	evs := readEvents(t, stream)
	var names []string
	for _, ev := range evs {
		names = append(names, ev.name)
	}
	joined := strings.Join(names, ",")
	if !strings.HasPrefix(joined, "message_start,content_block_start,content_block_delta") ||
		!strings.HasSuffix(joined, "content_block_stop,message_delta,message_stop") {
		t.Errorf("events %s", joined)
	}
	recs := e.records()
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		if r.Endpoint != llmproxy.EndpointMessages || r.PromptTokens == 0 || r.CompletionTokens == 0 || r.Estimated {
			t.Errorf("record %+v", r)
		}
	}
}

// TestMessagesErrors: upstream failures reach Messages clients in
// Anthropic's shape, before and during a stream; limits refuse with
// rate_limit_error and retry-after.
func TestMessagesErrors(t *testing.T) {
	e := newMsgEnv(t, llmproxy.Assignment{TPS: 1, Burst: 1})
	e.ant.Reply(anthropictest.Overloaded())
	resp, body := sendAnthropic(t, e.url, "/v1/messages", msgKey, `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	checkAnthropicError(t, resp, body, 529, "overloaded_error", "Overloaded")
	resp, body = sendAnthropic(t, e.url, "/v1/messages", msgKey, `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	checkAnthropicError(t, resp, body, 429, "rate_limit_error", "Rate limit")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no retry-after on a refusal")
	}

	e2 := newMsgEnv(t, llmproxy.Assignment{})
	m := anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("partial answer here")}}
	evs := anthropictest.Events(m)
	e2.ant.Reply(anthropictest.Stream(append(evs[:4:4], anthropictest.ErrorEvent("overloaded_error", "Overloaded"))...))
	got := readEvents(t, postStream(t, e2.url, `{"model":"claude","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	last := got[len(got)-1]
	if last.name != "error" || !strings.Contains(last.data, `"type":"overloaded_error"`) || !strings.Contains(last.data, `{"type":"error"`) {
		t.Errorf("last event %+v", last)
	}
	recs := e2.records()
	if len(recs) != 1 || recs[0].CompletionTokens == 0 || !recs[0].Estimated {
		t.Errorf("a broken stream is charged what it streamed: %+v", recs)
	}
}

// TestCountTokens: count_tokens is answered by an anthropic upstream,
// estimated for others, and recorded without tokens.
func TestCountTokens(t *testing.T) {
	e := newMsgEnv(t, llmproxy.Assignment{})
	e.ant.Reply(anthropictest.Count(4242))
	body := `{"model":"claude","messages":[{"role":"user","content":"How many tokens is this?"}]}`
	resp, got := sendAnthropic(t, e.url, "/v1/messages/count_tokens", msgKey, body)
	if resp.StatusCode != 200 || strings.TrimSpace(got) != `{"input_tokens":4242}` {
		t.Errorf("native: %d %s", resp.StatusCode, got)
	}
	if c := e.ant.LastCall(); c.Path != anthropictest.PathCountTokens || c.Model != "claude-sonnet-4-5" {
		t.Errorf("upstream call %s model %s", c.Path, c.Model)
	}
	resp, got = sendAnthropic(t, e.url, "/v1/messages/count_tokens", msgKey, strings.Replace(body, "claude", "gpt", 1))
	var n struct {
		InputTokens int64 `json:"input_tokens"`
	}
	if json.Unmarshal([]byte(got), &n); resp.StatusCode != 200 || n.InputTokens < 5 || n.InputTokens > 40 {
		t.Errorf("estimate: %d %s", resp.StatusCode, got)
	}
	if len(e.oai.Requests()) != 0 {
		t.Error("an estimate called the upstream")
	}
	for _, r := range e.records() {
		if r.Endpoint != llmproxy.EndpointCountTokens || r.TotalTokens != 0 || r.Status != 200 {
			t.Errorf("record %+v", r)
		}
	}
}

// TestChatOnAnthropic: Chat Completions clients can use an anthropic
// connection: translated to Messages and back.
func TestChatOnAnthropic(t *testing.T) {
	e := newMsgEnv(t, llmproxy.Assignment{})
	e.ant.Reply(anthropictest.Reply(anthropictest.Message{
		Content: []anthropictest.Block{anthropictest.TextBlock("Bonjour")},
		Usage:   anthropictest.Usage{InputTokens: 3, OutputTokens: 2, CacheReadInputTokens: 10},
	}))
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/chat/completions", strings.NewReader(`{"model":"claude","messages":[{"role":"system","content":"fr"},{"role":"user","content":"hello"}]}`))
	req.Header.Set("Authorization", "Bearer "+msgKey)
	resp, got := do(t, req)
	if resp.StatusCode != 200 || !strings.Contains(got, `"content":"Bonjour"`) || !strings.Contains(got, `"prompt_tokens":13`) || !strings.Contains(got, `"cached_tokens":10`) {
		t.Errorf("%d %s", resp.StatusCode, got)
	}
	if c := e.ant.LastCall(); !strings.Contains(string(c.Body), `"system":"fr"`) || !strings.Contains(string(c.Body), `"max_tokens":`) {
		t.Errorf("upstream body %s", c.Body)
	}
	recs := e.records()
	if len(recs) != 1 || recs[0].PromptTokens != 13 || recs[0].CacheReadTokens != 10 || recs[0].Endpoint != llmproxy.EndpointChat {
		t.Errorf("records %+v", recs)
	}
}

// TestMessagesBedrock: a Bedrock connection serves Messages natively for
// Anthropic's models (InvokeModel, the body as the client sent it but for
// model and stream, signed) and through Converse for the others.
func TestMessagesBedrock(t *testing.T) {
	ctx := context.Background()
	br := bedrocktest.NewServer()
	br.SecretAccessKey = "fake-secret"
	t.Cleanup(br.Close)
	store := memory.New()
	conn := &llmproxy.Connection{Name: "bedrock", Provider: llmproxy.KindBedrock, Endpoint: br.URL,
		Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "fake-secret"},
		Settings:    map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"}}
	must(t, store.CreateConnection(ctx, conn))
	must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "claude", Remote: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", ConnectionID: conn.ID}))
	must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "llama", Remote: "meta.llama3-70b-instruct-v1:0", ConnectionID: conn.ID}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, MasterKey: masterKey,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindBedrock: bedrock.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })

	body := `{"model":"claude","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}],"stream":false}`
	resp, got := sendAnthropic(t, srv.URL, "/v1/messages", masterKey, body)
	if resp.StatusCode != 200 || !strings.Contains(got, `"type":"message"`) {
		t.Fatalf("native: %d %s", resp.StatusCode, got)
	}
	c := br.LastCall()
	if c.Operation != bedrocktest.OpInvoke || !strings.Contains(string(c.Body), `"anthropic_version":"bedrock-2023-05-31"`) ||
		!strings.Contains(string(c.Body), `"content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]`) || strings.Contains(string(c.Body), `"model"`) {
		t.Errorf("native call %s: %s", c.Operation, c.Body)
	}

	resp, got = sendAnthropic(t, srv.URL, "/v1/messages", masterKey, strings.Replace(body, `"claude"`, `"llama"`, 1))
	if resp.StatusCode != 200 || !strings.Contains(got, `"type":"message"`) {
		t.Fatalf("translated: %d %s", resp.StatusCode, got)
	}
	if c := br.LastCall(); c.Operation != bedrocktest.OpConverse {
		t.Errorf("translated call %s", c.Operation)
	}
}
