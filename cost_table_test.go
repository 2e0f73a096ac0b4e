package llmproxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// TestCostFromTable: requests to models priced by the price table (no
// override) cost what the table's figures give by hand, found through
// the table's normalisation of remote names: OpenAI with cached tokens
// (a dated name), Gemini (models/ prefix), an embedding model, Anthropic
// with cache reads and writes (a dated name), Bedrock (a regional
// inference profile).
func TestCostFromTable(t *testing.T) {
	ctx := context.Background()
	oai := fakeopenai.New(t, upstreamKey)
	oai.SetAnswer(func(r fakeopenai.Request) *fakeopenai.Answer {
		if strings.HasSuffix(r.Path, "/embeddings") {
			return &fakeopenai.Answer{Body: []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"m","usage":{"prompt_tokens":5000,"total_tokens":5000}}`)}
		}
		usage := `{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200,"prompt_tokens_details":{"cached_tokens":400}}`
		if r.JSON["model"] == "models/gemini-2.5-flash" {
			usage = `{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}`
		}
		return &fakeopenai.Answer{Body: []byte(`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":` + usage + `}`)}
	})
	ant := anthropictest.New(t)
	br := bedrocktest.NewServer()
	br.SecretAccessKey = "fake-secret"
	t.Cleanup(br.Close)
	br.Handler = func(*bedrocktest.Call) *bedrocktest.Reply { return bedrocktest.TextReply("ok", 1000, 100) }

	spy := &ledgerSpy{Store: memory.New()}
	conns := []*llmproxy.Connection{
		{Name: "openai", Provider: llmproxy.KindOpenAI, Endpoint: oai.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}},
		{Name: "google", Provider: llmproxy.KindGoogle, Endpoint: oai.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}},
		{Name: "anthropic", Provider: llmproxy.KindAnthropic, Endpoint: ant.URL, Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}},
		{Name: "bedrock", Provider: llmproxy.KindBedrock, Endpoint: br.URL, Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "fake-secret"},
			Settings: map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"}},
	}
	for _, c := range conns {
		must(t, spy.CreateConnection(ctx, c))
	}
	for _, m := range []llmproxy.Model{
		{Name: "gpt", Remote: "gpt-4o-2024-08-06", ConnectionID: conns[0].ID},
		{Name: "embed", Remote: "text-embedding-3-small", ConnectionID: conns[0].ID},
		{Name: "gemini", Remote: "models/gemini-2.5-flash", ConnectionID: conns[1].ID},
		{Name: "sonnet", Remote: "claude-sonnet-4-5-20250929", ConnectionID: conns[2].ID},
		{Name: "haiku", Remote: "us.anthropic.claude-haiku-4-5-20251001-v1:0", ConnectionID: conns[3].ID},
	} {
		must(t, spy.CreateModel(ctx, &m))
	}
	gw, err := llmproxy.New(llmproxy.Config{Storage: spy, MasterKey: masterKey, Providers: map[string]llmproxy.NewProviderFunc{
		llmproxy.KindOpenAI: openai.New, llmproxy.KindGoogle: openai.New, llmproxy.KindAnthropic: anthropic.New, llmproxy.KindBedrock: bedrock.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })

	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+masterKey)
		if resp, got := do(t, req); resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", path, body, resp.StatusCode, got)
		}
	}
	for _, m := range []string{"gpt", "gemini", "haiku"} {
		post("/v1/chat/completions", `{"model":"`+m+`","messages":[{"role":"user","content":"hi"}]}`)
	}
	post("/v1/embeddings", `{"model":"embed","input":"some text"}`)
	ant.Reply(anthropictest.Reply(anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("hi")},
		Usage: anthropictest.Usage{InputTokens: 100, OutputTokens: 50, CacheReadInputTokens: 1000, CacheCreationInputTokens: 200}}))
	post("/v1/messages", `{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`)

	srv.Close()
	must(t, gw.Close())
	// Micro-dollars: tokens × dollars per million tokens.
	want := map[string]int64{
		// gpt-4o: 600 uncached at $2.50, 400 cached at $1.25, 200 out at $10.
		"gpt": 600*2.5 + 400*1.25 + 200*10,
		// gemini-2.5-flash: 1,000 in at $0.30, 100 out at $2.50.
		"gemini": 1000*0.3 + 100*2.5,
		// text-embedding-3-small: 5,000 in at $0.02.
		"embed": 5000 * 0.02,
		// claude-sonnet-4-5: 100 uncached at $3, 1,000 read at $0.30,
		// 200 written at $3.75, 50 out at $15.
		"sonnet": 100*3 + 1000*0.3 + 200*3.75 + 50*15,
		// Bedrock's regional Haiku 4.5 (us. prefix: the in-region price,
		// 10% over global): 1,000 in at $1.10, 100 out at $5.50.
		"haiku": 1000*1.1 + 100*5.5,
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range spy.recs {
		seen[r.Model] = true
		if !r.CostKnown || r.CostMicros != want[r.Model] {
			t.Errorf("%s (%s): cost %d µ$ known %v, want %d (usage %d in, %d cached, %d written, %d out)",
				r.Model, r.RemoteModel, r.CostMicros, r.CostKnown, want[r.Model], r.PromptTokens, r.CacheReadTokens, r.CacheWriteTokens, r.CompletionTokens)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("records for %v, want %d models", seen, len(want))
	}
}
