package llmproxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
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

func TestFirstByteTimeout(t *testing.T) {
	a, b, url := twoUpstreams(t, llmproxy.Config{})
	a.SetDelay(2*time.Second, 0)
	b.SetDelay(2*time.Second, 0)
	start := time.Now()
	s, body := postTo(t, url, dualBody)
	if s != 504 || !strings.Contains(body, "did not answer within 300ms") {
		t.Errorf("%d %s", s, body)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v", d)
	}
	waitFor(t, func() bool { return a.Cancelled()+b.Cancelled() == 2 })
}

func TestStreamIdleTimeoutEndsWithErrorEvent(t *testing.T) {
	a, b, url := twoUpstreams(t, llmproxy.Config{})
	// Healthy but slow: 50ms between chunks stays under the 150ms idle
	// timeout, however long the stream.
	a.SetDelay(0, 50*time.Millisecond)
	b.SetDelay(0, 50*time.Millisecond)
	s, body := postTo(t, url, `{"model":"dual","stream":true,"messages":[{"role":"user","content":"one two three four five six seven"}]}`)
	if s != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, `"error"`) {
		t.Errorf("slow healthy stream cut: %d %q", s, body)
	}
	// Stalled: 400ms between chunks.
	a.SetDelay(0, 400*time.Millisecond)
	b.SetDelay(0, 400*time.Millisecond)
	s, body = postTo(t, url, `{"model":"dual","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	if s != 200 || !strings.Contains(body, `"code":"upstream_timeout"`) || strings.Contains(body, "[DONE]") {
		t.Errorf("stalled stream: %d %q", s, body)
	}
}
