package llmproxy_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/redislimit"
)

// A restarted gateway restores the token window from the ledger instead of
// granting a fresh one.
func TestTokenWindowSurvivesRestart(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{TokenLimit: 60, TokenWindow: time.Hour})
	for range 3 {
		if s, _, b := e.post("/v1/chat/completions", keyConn, "", chatBody); s != 200 {
			t.Fatalf("%d %s", s, b)
		}
	}
	e.srv.Close()
	e.gw.Close() // flushes the ledger: 3 x 17 tokens
	gw, err := llmproxy.New(llmproxy.Config{Storage: e.store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	defer gw.Close()
	e.srv = httptest.NewServer(gw)
	defer e.srv.Close()
	s, h, _ := e.post("/v1/chat/completions", keyConn, "", chatBody)
	if s != 429 || h.Get("X-Ratelimit-Remaining-Tokens") != "9" {
		t.Errorf("after restart: %d remaining %q, want 429 with 9 left", s, h.Get("X-Ratelimit-Remaining-Tokens"))
	}
}

// With the shared limiter unreachable, requests keep flowing under local
// limits, and none waits much longer than the limiter's timeout.
func TestSharedLimiterDownFallsBackToLocal(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{TPS: 5})
	shared, err := redislimit.Open("redis://127.0.0.1:1/0", redislimit.Options{Timeout: 50 * time.Millisecond})
	must(t, err)
	defer shared.Close()
	gw, err := llmproxy.New(llmproxy.Config{Storage: e.store, Limiter: shared, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	defer gw.Close()
	e.srv = httptest.NewServer(gw)
	defer e.srv.Close()
	ok := 0
	began := time.Now()
	for range 10 {
		start := time.Now()
		s, _, _ := e.post("/v1/chat/completions", keyConn, "", chatBody)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("a request waited %v", d)
		}
		if s == 200 {
			ok++
		}
	}
	if most := 5 + refill(5, time.Since(began)); ok < 5 || ok > most {
		t.Errorf("admitted %d of 10 under the local fallback, want 5 to %d", ok, most)
	}
}

// Every answer under both limits carries all six x-ratelimit headers, as
// OpenAI's do.
func TestRateLimitHeaders(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{TPS: 5, TokenLimit: 1000, TokenWindow: time.Hour})
	s, h, b := e.post("/v1/chat/completions", keyConn, "", chatBody)
	if s != 200 {
		t.Fatalf("%d %s", s, b)
	}
	for k, want := range map[string]string{
		"X-Ratelimit-Limit-Requests":     "5",
		"X-Ratelimit-Remaining-Requests": "4",
		"X-Ratelimit-Limit-Tokens":       "1000",
		"X-Ratelimit-Remaining-Tokens":   "982", // 1000 - (30 bytes of messages / 4 + 1, + max_tokens 10) reserved
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens"} {
		if d, err := time.ParseDuration(h.Get(k)); err != nil || d < 0 || d > time.Hour {
			t.Errorf("%s = %q, want a duration within the window", k, h.Get(k))
		}
	}
}
