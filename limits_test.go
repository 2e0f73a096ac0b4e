package llmproxy_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/redislimit"
)

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

// tps 5: 50 requests at once from 10 goroutines admit the burst of 5;
// then a steady 20 rps for 3s admits 5/s ±10%.
func TestRequestRateBurstThenSteady(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{TPS: 5})
	began := time.Now()
	counts := fire(t, []string{e.srv.URL}, 50, 10)
	// The burst, plus what the bucket refilled while the 50 were served.
	if most := 5 + refill(5, time.Since(began)); counts[200] < 5 || counts[200] > most || counts[200]+counts[429] != 50 {
		t.Errorf("at once: %v, want 5 to %d admitted", counts, most)
	}
	got := steady(t, []string{e.srv.URL}, 20, 3*time.Second)
	t.Logf("tps 5: burst admitted %d of 50; then 20 rps for 3s admitted %d (%.2f/s)", counts[200], got, float64(got)/3)
	if !within(got, 15, 0.1) {
		t.Errorf("steady 20 rps for 3s admitted %d, want 15 ±10%%", got)
	}
}

// token_limit 1000: 80 requests, 40 at a time, never push recorded usage past
// the limit by more than one request's worth, and the next one is refused.
func TestTokenLimitUnderConcurrency(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{TokenLimit: 1000, TokenWindow: 24 * time.Hour})
	counts := fire(t, []string{e.srv.URL}, 80, 40)
	if s := send(t, e.srv.URL); s != 429 {
		t.Errorf("request after the burst: %d", s)
	}
	sums := e.usage(llmproxy.UsageFilter{})
	var total int64
	for _, s := range sums {
		total += s.TotalTokens
	}
	// One request uses 17 tokens and reserves ~27.
	if total > 1000+27 || counts[200] < 1000/27 {
		t.Errorf("recorded %d tokens with %v", total, counts)
	}
}
