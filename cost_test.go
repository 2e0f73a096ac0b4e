package llmproxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// TestCostRecorded: each request's cost is computed from its exact usage,
// cache reads and writes at their own prices, and recorded in
// micro-dollars; a model without a known price records its cost as
// unknown, never as 0.
func TestCostRecorded(t *testing.T) {
	ctx := context.Background()
	fake := fakeopenai.New(t, upstreamKey)
	ant := anthropictest.New(t)
	spy := &ledgerSpy{Store: memory.New()}
	oai := &llmproxy.Connection{Name: "compat", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, spy.CreateConnection(ctx, oai))
	an := &llmproxy.Connection{Name: "anthropic", Provider: llmproxy.KindAnthropic, Endpoint: ant.URL, Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}}
	must(t, spy.CreateConnection(ctx, an))
	priced := pricing.Price{Input: 2, Output: 8, CachedInput: 0.5}
	must(t, spy.CreateModel(ctx, &llmproxy.Model{Name: "priced", Remote: "my-own-model", ConnectionID: oai.ID, Price: &priced}))
	must(t, spy.CreateModel(ctx, &llmproxy.Model{Name: "unpriced", Remote: "nobody-knows-this-model", ConnectionID: oai.ID}))
	sonnet := pricing.Price{Input: 3, Output: 15, CachedInput: 0.3, CacheWrite: 3.75}
	must(t, spy.CreateModel(ctx, &llmproxy.Model{Name: "claude", Remote: "claude-x", ConnectionID: an.ID, Price: &sonnet}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: spy, MasterKey: masterKey,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New, llmproxy.KindAnthropic: anthropic.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })

	for _, model := range []string{"priced", "unpriced"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hello there"}]}`))
		req.Header.Set("Authorization", "Bearer "+masterKey)
		if resp, body := do(t, req); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", model, resp.StatusCode, body)
		}
	}
	ant.Reply(anthropictest.Reply(anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("hi")},
		Usage: anthropictest.Usage{InputTokens: 100, OutputTokens: 50, CacheReadInputTokens: 1000, CacheCreationInputTokens: 200}}))
	if resp, body := sendAnthropic(t, srv.URL, "/v1/messages", masterKey, `{"model":"claude","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}

	srv.Close()
	must(t, gw.Close())
	spy.mu.Lock()
	defer spy.mu.Unlock()
	for _, r := range spy.recs {
		switch r.Model {
		case "priced":
			want := int64(r.PromptTokens*2 + r.CompletionTokens*8) // no cached tokens from the fake
			if !r.CostKnown || r.CostMicros != want || r.PromptTokens == 0 {
				t.Errorf("priced: cost %d known %v, want %d (%+v)", r.CostMicros, r.CostKnown, want, r)
			}
		case "unpriced":
			if r.CostKnown || r.CostMicros != 0 {
				t.Errorf("unpriced: cost %d known %v", r.CostMicros, r.CostKnown)
			}
		case "claude":
			// 100 uncached at $3, 1,000 read at $0.30, 200 written at $3.75,
			// 50 out at $15 per million: 300+300+750+750 µ$.
			if !r.CostKnown || r.CostMicros != 2100 {
				t.Errorf("claude: cost %d known %v, want 2100 µ$", r.CostMicros, r.CostKnown)
			}
		}
	}
	if len(spy.recs) != 3 {
		t.Errorf("%d records", len(spy.recs))
	}
}
