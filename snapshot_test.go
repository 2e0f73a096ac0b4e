package llmproxy_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

func TestFallbackAndCoolDown(t *testing.T) {
	a, b, url := twoUpstreams(t, llmproxy.Config{})
	a.SetFail(500)
	for i := range 10 {
		if s, body := postTo(t, url, dualBody); s != 200 || !strings.Contains(body, "remote-upb") {
			t.Fatalf("request %d: %d %s", i, s, body)
		}
	}
	// After three failures in a row, a cools down: it is tried last, so
	// it sees few of the ten requests.
	if n := len(a.Requests()); n > 4 {
		t.Errorf("failing upstream got %d of 10 requests despite the cool-down", n)
	}
	// Both failing: the client sees the error, not a hang.
	b.SetFail(503)
	if s, _ := postTo(t, url, dualBody); s != 503 && s != 502 {
		t.Errorf("both down: %d", s)
	}
	// A 400 is the client's fault: no retry elsewhere.
	a.SetFail(0)
	b.SetFail(400)
	before := len(a.Requests()) + len(b.Requests())
	for range 5 {
		postTo(t, url, dualBody)
	}
	if got := len(a.Requests()) + len(b.Requests()) - before; got != 5 {
		t.Errorf("5 requests made %d upstream calls; 400s must not be retried", got)
	}
}

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
