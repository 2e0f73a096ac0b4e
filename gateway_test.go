package llmproxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	goopenai "github.com/sashabaranov/go-openai"
)

func TestPassthroughNonStreaming(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	status, h, body := e.post("/v1/chat/completions", keyConn, "application/json",
		`{"model":"gpt-alias","messages":[{"role":"user","content":"hi"}],"x_unknown":{"keep":[1,"two",null]},"temperature":0.5}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	// The client sees the gateway's request id (the access log's and the
	// ledger's), and the upstream's beside it.
	if id := h.Get("X-Request-Id"); !strings.HasPrefix(id, "req") || id == fakeopenai.RequestID {
		t.Errorf("X-Request-Id = %q; want the gateway's", id)
	}
	if got := h.Get("X-Upstream-Request-Id"); got != fakeopenai.RequestID {
		t.Errorf("X-Upstream-Request-Id = %q; want the upstream's %q", got, fakeopenai.RequestID)
	}
	if !strings.Contains(body, fakeopenai.Reply("remote-model-1", "hi")) {
		t.Errorf("body = %s", body)
	}
	up := e.fake.Last()
	if up.JSON["model"] != "remote-model-1" {
		t.Errorf("upstream saw model %v", up.JSON["model"])
	}
	if got := up.Header.Get("Authorization"); got != "Bearer "+upstreamKey {
		t.Errorf("upstream saw Authorization %q", got)
	}
	if !strings.Contains(string(up.Body), `"x_unknown":{"keep":[1,"two",null]},"temperature":0.5`) {
		t.Errorf("unknown fields not passed through: %s", up.Body)
	}
	sums := e.usage(llmproxy.UsageFilter{KeyID: e.connKey.ID})
	if len(sums) != 1 || sums[0].Requests != 1 || sums[0].PromptTokens != fakeopenai.PromptTokens || sums[0].EstimatedTokens != 0 {
		t.Errorf("usage = %+v", sums)
	}
}

func TestStreamingUsageHiddenUnlessAsked(t *testing.T) {
	for _, ask := range []bool{false, true} {
		t.Run(map[bool]string{false: "not asked", true: "asked"}[ask], func(t *testing.T) {
			e := newEnv(t, llmproxy.Assignment{})
			c := goClient(e, keyConn)
			req := goopenai.ChatCompletionRequest{Model: "gpt-alias", Stream: true,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "tell me"}}}
			if ask {
				req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
			}
			st, err := c.CreateChatCompletionStream(context.Background(), req)
			must(t, err)
			var text strings.Builder
			sawUsage := false
			for {
				r, err := st.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				must(t, err)
				if r.Usage != nil {
					sawUsage = true
					if r.Usage.CompletionTokens != 7 {
						t.Errorf("usage %+v", r.Usage)
					}
				}
				for _, ch := range r.Choices {
					text.WriteString(ch.Delta.Content)
				}
			}
			st.Close()
			if want := fakeopenai.Reply("remote-model-1", "tell me"); text.String() != want {
				t.Errorf("text %q, want %q", text.String(), want)
			}
			if sawUsage != ask {
				t.Errorf("client saw usage: %v, asked: %v", sawUsage, ask)
			}
			if so, _ := e.fake.Last().JSON["stream_options"].(map[string]any); so["include_usage"] != true {
				t.Errorf("upstream was not asked for usage: %s", e.fake.Last().Body)
			}
			sums := e.usage(llmproxy.UsageFilter{})
			if len(sums) != 1 || sums[0].TotalTokens != fakeopenai.PromptTokens+7 || sums[0].EstimatedTokens != 0 {
				t.Errorf("usage = %+v", sums)
			}
		})
	}
}

func TestRights(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	chat := func(key, model string) (int, string) {
		s, _, b := e.post("/v1/chat/completions", key, "", `{"model":"`+model+`","messages":[{"role":"user","content":"x"}]}`)
		return s, b
	}
	cases := []struct {
		key, model string
		status     int
		code       string
	}{
		{keyConn, "gpt-alias", 200, ""},
		{keyConn, "other", 404, "model_not_found"},
		{keyConn, "does-not-exist", 404, "model_not_found"},
		{keyModel, "other", 200, ""},
		{keyModel, "gpt-alias", 404, "model_not_found"},
		{masterKey, "gpt-alias", 200, ""},
		{masterKey, "other", 200, ""},
		{"sk-wrong", "gpt-alias", 401, "invalid_api_key"},
		{"", "gpt-alias", 401, "invalid_api_key"},
	}
	for _, c := range cases {
		status, body := chat(c.key, c.model)
		if status != c.status {
			t.Errorf("key %q model %q: status %d, want %d: %s", c.key, c.model, status, c.status, body)
			continue
		}
		if c.code != "" {
			var env struct{ Error llmproxy.Error }
			var raw struct {
				Error struct{ Code, Message, Type string }
			}
			json.Unmarshal([]byte(body), &raw)
			_ = env
			if raw.Error.Code != c.code || raw.Error.Message == "" || raw.Error.Type == "" {
				t.Errorf("key %q model %q: error %s", c.key, c.model, body)
			}
		}
	}
	// A model added later to the connection is usable at once by the
	// connection-scoped key.
	must(t, e.store.CreateModel(context.Background(), &llmproxy.Model{Name: "later", Remote: "r-later", ConnectionID: e.conn.ID}))
	waitFor(t, func() bool { s, _ := chat(keyConn, "later"); return s == 200 })

	models := func(key string) []string {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var list struct {
			Object string
			Data   []struct{ ID, Object string }
		}
		json.NewDecoder(resp.Body).Decode(&list)
		var ids []string
		for _, d := range list.Data {
			ids = append(ids, d.ID)
		}
		return ids
	}
	if got := strings.Join(models(keyConn), ","); got != "gpt-alias,later" {
		t.Errorf("models for the connection key: %s", got)
	}
	if got := strings.Join(models(keyModel), ","); got != "other" {
		t.Errorf("models for the model key: %s", got)
	}
	if got := strings.Join(models(masterKey), ","); got != "gpt-alias,later,other" {
		t.Errorf("models for the master key: %s", got)
	}
	// A deleted key stops working within 2s, without a restart.
	must(t, e.store.DeleteKey(context.Background(), e.modelKey.ID))
	start := time.Now()
	waitFor(t, func() bool { s, _ := chat(keyModel, "other"); return s == 401 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("deleted key worked for %v", d)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	cases := []struct {
		name, path, ct, body string
		status               int
		param, want          string
	}{
		{"malformed", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[`, 400, "", "not valid JSON"},
		{"missing model", "/v1/chat/completions", "application/json", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model", "model"},
		{"model not a string", "/v1/chat/completions", "application/json", `{"model":1,"messages":[{"role":"user","content":"x"}]}`, 400, "model", "string"},
		{"empty messages", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[]}`, 400, "messages", "empty"},
		{"message not an object", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"},"hi"]}`, 400, "messages[1]", "object"},
		{"message role missing", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","messages":[{"content":"x"}]}`, 400, "messages[0].role", "role"},
		{"stream not bool", "/v1/chat/completions", "application/json", `{"model":"gpt-alias","stream":1,"messages":[1]}`, 400, "stream", "boolean"},
		{"wrong content type", "/v1/chat/completions", "multipart/form-data; boundary=x", `{"model":"gpt-alias","messages":[1]}`, 400, "", "Content-Type"},
		{"empty body", "/v1/chat/completions", "application/json", ``, 400, "", "empty"},
		{"unknown path", "/v1/nothing", "application/json", `{}`, 404, "", "Unknown request URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := e.post(c.path, keyConn, c.ct, c.body)
			var env struct {
				Error struct {
					Message string
					Type    string
					Param   *string
				}
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || h.Get("Content-Type") != "application/json" {
				t.Fatalf("not an OpenAI JSON error: %s", body)
			}
			param := ""
			if env.Error.Param != nil {
				param = *env.Error.Param
			}
			if status != c.status || param != c.param || !strings.Contains(env.Error.Message, c.want) {
				t.Errorf("got %d param=%q %q", status, param, env.Error.Message)
			}
		})
	}
	status, _, body := e.post("/v1/chat/completions", keyConn, "", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Errorf("no content type (curl -d): %d %s", status, body)
	}
	status, _, _ = e.post("/v1/chat/completions", keyConn, "application/x-www-form-urlencoded", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`)
	if status != 200 {
		t.Errorf("form content type (curl -d): %d", status)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/chat/completions", nil)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET chat: %d allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := len(e.fake.Requests()); n != 2 {
		t.Errorf("upstream got %d requests, want only the 2 good ones", n)
	}
}

func TestUpstreamErrors(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	cases := []struct {
		upstream, status int
		retryAfter       string
	}{
		{429, 429, "2"},
		{400, 400, ""},
		{401, 502, ""},
		{500, 502, ""},
		{503, 503, "1"},
	}
	for _, c := range cases {
		e.fake.SetFail(c.upstream)
		status, h, body := e.post("/v1/chat/completions", keyConn, "", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`)
		if status != c.status || h.Get("Retry-After") != c.retryAfter || !strings.Contains(body, `"error"`) {
			t.Errorf("upstream %d: got %d retry-after=%q %s", c.upstream, status, h.Get("Retry-After"), body)
		}
		if strings.Contains(body, upstreamKey) {
			t.Errorf("upstream key leaked: %s", body)
		}
	}
}

func TestRequestRateLimit(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{TPS: 5})
	ok, limited := 0, 0
	began := time.Now()
	for range 20 {
		status, h, body := e.post("/v1/chat/completions", keyConn, "", `{"model":"gpt-alias","messages":[{"role":"user","content":"x"}]}`)
		switch status {
		case 200:
			ok++
			if h.Get("X-Ratelimit-Limit-Requests") != "5" {
				t.Errorf("limit header %q", h.Get("X-Ratelimit-Limit-Requests"))
			}
		case 429:
			limited++
			if h.Get("Retry-After") == "" || !strings.Contains(body, "rate_limit_exceeded") {
				t.Errorf("429 without Retry-After or code: %s", body)
			}
		default:
			t.Fatalf("status %d", status)
		}
	}
	// The burst of 5, and what refilled while the 20 were sent.
	if most := 5 + refill(5, time.Since(began)); ok < 5 || ok > most {
		t.Errorf("admitted %d of 20 (limited %d), want 5 to %d", ok, limited, most)
	}
}

func TestTokenLimit(t *testing.T) {
	// Each request reserves its prompt and max_tokens (10) and settles to
	// the upstream's usage (11 + 7 words).
	e := newEnv(t, llmproxy.Assignment{TokenLimit: 60, TokenWindow: time.Hour})
	statuses := []int{}
	for range 5 {
		status, h, _ := e.post("/v1/chat/completions", keyConn, "", `{"model":"gpt-alias","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`)
		statuses = append(statuses, status)
		if h.Get("X-Ratelimit-Limit-Tokens") != "60" {
			t.Errorf("tokens limit header %q", h.Get("X-Ratelimit-Limit-Tokens"))
		}
	}
	// 18 tokens each: 3 fit in 60, the 4th would pass 60 after settling
	// but its reservation (~17) fits only while 60-54=6 remain: refused.
	if got := statuses; got[0] != 200 || got[2] != 200 || got[3] != 429 || got[4] != 429 {
		t.Errorf("statuses %v", got)
	}
	sums := e.usage(llmproxy.UsageFilter{})
	if len(sums) != 1 || sums[0].TotalTokens > 60 {
		t.Errorf("usage %+v", sums)
	}
}

func TestClientDisconnectMidStreamIsCharged(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	e.fake.SetDelay(0, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-alias","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	r := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ { // role chunk and two words
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		r.ReadString('\n')
	}
	cancel()
	resp.Body.Close()
	waitFor(t, func() bool { return e.fake.Cancelled() == 1 })
	sums := e.usage(llmproxy.UsageFilter{})
	if len(sums) != 1 || sums[0].CompletionTokens == 0 || sums[0].EstimatedTokens == 0 {
		t.Errorf("usage after hang-up: %+v", sums)
	}
}
