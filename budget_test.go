package llmproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/internal/testdb"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/redislimit"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	"github.com/redis/go-redis/v9"
)

// budgetPrice makes chatBody cost 110 µ$ of prompt (the fake's 11 tokens
// at $10 per million) plus $40 per million completion tokens, and be
// estimated at 8 prompt tokens plus its max_tokens of 10: 480 µ$.
var budgetPrice = pricing.Price{Input: 10, Output: 40}

// budgetStore is a memory store with a priced model "gpt-alias", an
// unpriced "unpriced", both on one connection, and keyConn assigned to
// the connection under the budget ab, the key itself under kb.
type budgetStore struct {
	*memory.Store
	key *llmproxy.VirtualKey

	mu    sync.Mutex
	scans []llmproxy.UsageFilter // the ledger reads, by SumUsage
}

// SumUsage records the ledger reads the gateway makes.
func (s *budgetStore) SumUsage(ctx context.Context, f llmproxy.UsageFilter) ([]llmproxy.UsageSummary, error) {
	s.mu.Lock()
	s.scans = append(s.scans, f)
	s.mu.Unlock()
	return s.Store.SumUsage(ctx, f)
}

func newBudgetStore(t *testing.T, ab, kb *llmproxy.Budget) *budgetStore {
	ctx := context.Background()
	fake := fakeopenai.New(t, upstreamKey)
	s := &budgetStore{Store: memory.New()}
	c := &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, s.CreateConnection(ctx, c))
	price := budgetPrice
	must(t, s.CreateModel(ctx, &llmproxy.Model{Name: "gpt-alias", Remote: "remote-model-1", ConnectionID: c.ID, Price: &price}))
	must(t, s.CreateModel(ctx, &llmproxy.Model{Name: "unpriced", Remote: "nobody-knows-this-model", ConnectionID: c.ID}))
	s.key = &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Budget: kb,
		Assignments: []llmproxy.Assignment{{ConnectionID: c.ID, Budget: ab}}}
	must(t, s.CreateKey(ctx, s.key))
	return s
}

// gateway starts a Gateway on s with lim (nil: local counters).
func (s *budgetStore) gateway(t *testing.T, lim llmproxy.Limiter) (*llmproxy.Gateway, *httptest.Server) {
	gw, err := llmproxy.New(llmproxy.Config{Storage: s, Limiter: lim, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return gw, srv
}

// spent is the cost the ledger holds for keyConn.
func (s *budgetStore) spent(t *testing.T) (total int64) {
	sums, err := s.SumUsage(context.Background(), llmproxy.UsageFilter{KeyID: s.key.ID})
	must(t, err)
	for _, u := range sums {
		total += u.CostMicros
	}
	return total
}

// chat sends chatBody with keyConn and returns the answer.
func chat(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	return do(t, req)
}

// A $0.01 budget under 40 concurrent requests is overrun by at most one
// request's estimate error: what is reserved before forwarding holds
// the budget, not what was spent when the request came in.
func TestBudgetConcurrent(t *testing.T) {
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.01, Period: llmproxy.BudgetTotal}, nil)
	gw, srv := s.gateway(t, nil)
	counts := fire(t, []string{srv.URL}, 40, 40)
	srv.Close()
	must(t, gw.Close())
	total := s.spent(t)
	most := total / int64(max(counts[200], 1)) // every request costs the same
	t.Logf("$0.01 under 40 concurrent requests: %v, spent %d µ$ (one request at most %d)", counts, total, most)
	if total > 10000+most || counts[200] < 10000/480 || counts[429] == 0 || counts[200]+counts[429] != 40 {
		t.Errorf("budget of 10000 µ$: %v, spent %d µ$", counts, total)
	}
}

// Budgets start again at their period's boundary in their zone, and not
// at another midnight: a daily budget in Bangkok at Bangkok's midnight,
// not UTC's; a weekly one on Monday, not Sunday; a monthly one on the
// 1st, not the 31st.
func TestBudgetPeriods(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		must(t, err)
		return v
	}
	cases := []struct {
		period, tz             string
		spend, notReset, reset string
	}{
		{llmproxy.BudgetDaily, "Asia/Bangkok", "2026-03-11T06:59:59+07:00", "2026-03-11T07:00:00+07:00", "2026-03-12T00:00:00+07:00"},
		{llmproxy.BudgetWeekly, "", "2026-03-10T12:00:00Z", "2026-03-15T00:00:00Z", "2026-03-16T00:00:00Z"},
		{llmproxy.BudgetMonthly, "America/New_York", "2026-03-15T12:00:00-04:00", "2026-03-31T00:00:00-04:00", "2026-04-01T00:00:00-04:00"},
	}
	for _, c := range cases {
		t.Run(c.period, func(t *testing.T) {
			var now atomic.Int64
			llmproxy.SetBudgetClock(t, func() time.Time { return time.Unix(0, now.Load()) })
			set := func(s string) { now.Store(at(s).UnixNano()) }
			s := newBudgetStore(t, &llmproxy.Budget{USD: 0.0005, Period: c.period, TZ: c.tz}, nil)
			_, srv := s.gateway(t, nil)
			set(c.spend)
			if resp, body := chat(t, srv.URL); resp.StatusCode != 200 || resp.Header.Get(llmproxy.HeaderBudgetReset) != c.reset {
				t.Fatalf("first request: %d %s, reset %q", resp.StatusCode, body, resp.Header.Get(llmproxy.HeaderBudgetReset))
			}
			if resp, body := chat(t, srv.URL); resp.StatusCode != 429 {
				t.Fatalf("over the budget: %d %s", resp.StatusCode, body)
			}
			set(c.notReset)
			if resp, body := chat(t, srv.URL); resp.StatusCode != 429 {
				t.Errorf("at %s (not a boundary): %d %s", c.notReset, resp.StatusCode, body)
			}
			now.Store(at(c.reset).Add(-time.Second).UnixNano())
			if resp, body := chat(t, srv.URL); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
				t.Errorf("a second before %s: %d Retry-After %q %s", c.reset, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			set(c.reset)
			resp, body := chat(t, srv.URL)
			if resp.StatusCode != 200 {
				t.Errorf("at %s: %d %s", c.reset, resp.StatusCode, body)
			}
			if got := resp.Header.Get(llmproxy.HeaderBudgetRemaining); got == "" || got == "0.00" {
				t.Errorf("remaining after the reset: %q", got)
			}
		})
	}
}

// A spent budget answers 429 insufficient_quota in the client's dialect,
// with Retry-After to the period's end and the budget headers; an
// unpriced model under a budget is refused.
func TestBudgetSpentAnswer(t *testing.T) {
	noon := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	llmproxy.SetBudgetClock(t, func() time.Time { return noon })
	s := newBudgetStore(t, nil, &llmproxy.Budget{USD: 0.0005, Period: llmproxy.BudgetDaily})
	_, srv := s.gateway(t, nil)
	resp, body := chat(t, srv.URL)
	if resp.StatusCode != 200 || resp.Header.Get(llmproxy.HeaderBudgetRemaining) != "0.00002" || resp.Header.Get(llmproxy.HeaderBudgetReset) != "2026-03-11T00:00:00Z" {
		t.Fatalf("%d %s %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = chat(t, srv.URL)
	var e struct {
		Error struct{ Message, Type, Code string }
	}
	must(t, json.Unmarshal([]byte(body), &e))
	if resp.StatusCode != 429 || e.Error.Type != "insufficient_quota" || e.Error.Code != "insufficient_quota" || resp.Header.Get("Retry-After") != "43200" ||
		!strings.Contains(e.Error.Message, "daily budget of $0.0005") || resp.Header.Get(llmproxy.HeaderBudgetReset) != "2026-03-11T00:00:00Z" || resp.Header.Get(llmproxy.HeaderBudgetRemaining) == "" {
		t.Errorf("chat: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	t.Logf("chat: %s", body)
	resp, body = sendAnthropic(t, srv.URL, "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`)
	checkAnthropicError(t, resp, body, 429, "rate_limit_error", "daily budget of $0.0005")
	if resp.Header.Get("Retry-After") != "43200" || resp.Header.Get(llmproxy.HeaderBudgetReset) == "" {
		t.Errorf("messages: %v", resp.Header)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"unpriced","messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	if resp, body := do(t, req); resp.StatusCode != 403 || !strings.Contains(body, "model_not_priced") || !strings.Contains(body, `\"unpriced\" has no price`) {
		t.Errorf("unpriced model under a budget: %d %s", resp.StatusCode, body)
	}
}

// A restart without Redis restores the period's spend from the ledger.
func TestBudgetRestoredAfterRestart(t *testing.T) {
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.002, Period: llmproxy.BudgetMonthly}, &llmproxy.Budget{USD: 0.003, Period: llmproxy.BudgetWeekly, TZ: "Europe/Paris"})
	gw, srv := s.gateway(t, nil)
	admitted := 0
	for range 10 {
		if resp, _ := chat(t, srv.URL); resp.StatusCode == 200 {
			admitted++
		}
	}
	srv.Close()
	must(t, gw.Close())
	total := s.spent(t)
	_, srv = s.gateway(t, nil)
	resp, body := chat(t, srv.URL)
	if admitted == 0 || total == 0 || resp.StatusCode != 429 {
		t.Errorf("admitted %d spending %d µ$, then after a restart: %d %s", admitted, total, resp.StatusCode, body)
	}
	if want := formatMicros(2000 - total); resp.Header.Get(llmproxy.HeaderBudgetRemaining) != want {
		t.Errorf("remaining after the restart %q, want %q", resp.Header.Get(llmproxy.HeaderBudgetRemaining), want)
	}
}

// A restart restores a month's spend in Bangkok from the daily rollups,
// reading raw ledger rows only for the month's first hours, which fall on
// the last UTC day of the month before.
func TestBudgetRestoredFromRollups(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	llmproxy.SetBudgetClock(t, func() time.Time { return now })
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.002, Period: llmproxy.BudgetMonthly, TZ: "Asia/Bangkok"}, nil)
	a := s.key.Assignments[0]
	var recs []llmproxy.UsageRecord
	for i, r := range []struct {
		at     string
		micros int64
	}{
		{"2026-02-28T23:30:00+07:00", 500}, // February in Bangkok: not this month's
		{"2026-03-01T00:30:00+07:00", 300}, // the month's first hour, on 28 February UTC
		{"2026-03-05T10:00:00Z", 900},
		{"2026-03-10T11:00:00Z", 750},
	} {
		at, err := time.Parse(time.RFC3339, r.at)
		must(t, err)
		recs = append(recs, llmproxy.UsageRecord{ID: fmt.Sprint("r", i), Time: at, KeyID: s.key.ID, AssignmentID: a.ID, Model: "gpt-alias",
			ConnectionID: a.ConnectionID, PromptTokens: 10, TotalTokens: 10, CostMicros: r.micros, CostKnown: true, Status: 200})
	}
	must(t, s.AppendUsage(context.Background(), recs))
	_, srv := s.gateway(t, nil)
	// 1,950 µ$ spent of 2,000: the next request's 120 µ$ estimate does not fit.
	resp, body := chat(t, srv.URL)
	if resp.StatusCode != 429 || resp.Header.Get(llmproxy.HeaderBudgetRemaining) != "0.00005" {
		t.Errorf("after the restart: %d remaining %q %s; want 429 with $0.00005 left",
			resp.StatusCode, resp.Header.Get(llmproxy.HeaderBudgetRemaining), body)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.scans {
		if f.Since.IsZero() || f.Until.IsZero() || f.Until.Sub(f.Since) > 24*time.Hour {
			t.Errorf("the restore read the ledger from %v to %v; want at most a day's rows", f.Since, f.Until)
		}
	}
	if len(s.scans) != 1 {
		t.Errorf("%d ledger reads: %+v; want 1, for the month's first hours", len(s.scans), s.scans)
	}
}

// formatMicros is llmproxy's dollar formatting of the budget headers:
// at least cents, no trailing zeros past them.
func formatMicros(m int64) string {
	out := strconv.FormatFloat(float64(m)/1e6, 'f', 6, 64)
	for strings.HasSuffix(out, "0") && out[len(out)-3] != '.' {
		out = out[:len(out)-1]
	}
	return out
}

// Three replicas on one Redis hold one budget together.
func TestBudgetReplicas(t *testing.T) {
	redisURL, prefix := testdb.RedisURL(t)
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.01, Period: llmproxy.BudgetDaily, TZ: "Asia/Bangkok"}, nil)
	var urls []string
	var gws []*llmproxy.Gateway
	for range 3 {
		lim, err := redislimit.Open(redisURL, redislimit.Options{Prefix: prefix, Timeout: time.Second})
		must(t, err)
		t.Cleanup(func() { lim.Close() })
		gw, srv := s.gateway(t, lim)
		urls, gws = append(urls, srv.URL), append(gws, gw)
	}
	counts := fire(t, urls, 60, 12)
	for _, gw := range gws {
		must(t, gw.Close())
	}
	total := s.spent(t)
	most := total / int64(max(counts[200], 1))
	t.Logf("$0.01 daily across 3 replicas: %v, spent %d µ$", counts, total)
	if total > 10000+most || counts[200] < 10000/480 || counts[429] == 0 {
		t.Errorf("one budget across 3 replicas: %v, spent %d µ$", counts, total)
	}
}

// A period's counters expire in Redis a day after the period ends, so past
// periods do not pile up; a total budget's counter stays.
func TestBudgetCountersExpire(t *testing.T) {
	redisURL, prefix := testdb.RedisURL(t)
	now := time.Now()
	s := newBudgetStore(t, &llmproxy.Budget{USD: 1, Period: llmproxy.BudgetDaily, TZ: "Asia/Bangkok"}, &llmproxy.Budget{USD: 1, Period: llmproxy.BudgetTotal})
	lim, err := redislimit.Open(redisURL, redislimit.Options{Prefix: prefix, Timeout: time.Second})
	must(t, err)
	t.Cleanup(func() { lim.Close() })
	gw, srv := s.gateway(t, lim)
	if resp, body := chat(t, srv.URL); resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, body)
	}
	srv.Close()
	must(t, gw.Close())
	o, err := redis.ParseURL(redisURL)
	must(t, err)
	c := redis.NewClient(o)
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Keys(ctx, prefix+"*").Result()
	must(t, err)
	b := llmproxy.Budget{Period: llmproxy.BudgetDaily, TZ: "Asia/Bangkok"}
	_, end := b.Bounds(now)
	var daily, total int
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		must(t, err)
		switch {
		case strings.Contains(k, ":total"):
			total++
			if ttl >= 0 {
				t.Errorf("%s: ttl %v; a total budget's counter never expires", k, ttl)
			}
		case strings.Contains(k, "b:"):
			daily++
			if want := time.Until(end) + 24*time.Hour; ttl <= 0 || ttl > want+time.Second || ttl < want-time.Minute {
				t.Errorf("%s: ttl %v; want about %v (a day past the period's end)", k, ttl, want)
			}
		}
	}
	if daily != 1 || total != 1 {
		t.Errorf("keys %v: want the daily budget's counter and the total budget's", keys)
	}
}

// A key's budget counts all its assignments; the headers show the
// tighter of the key's and the assignment's budgets.
func TestKeyBudgetCountsAllAssignments(t *testing.T) {
	ctx := context.Background()
	fake := fakeopenai.New(t, upstreamKey)
	s := memory.New()
	price := budgetPrice
	var as []llmproxy.Assignment
	for _, name := range []string{"a", "b"} {
		c := &llmproxy.Connection{Name: name, Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
		must(t, s.CreateConnection(ctx, c))
		must(t, s.CreateModel(ctx, &llmproxy.Model{Name: name, Remote: "remote-" + name, ConnectionID: c.ID, Price: &price}))
		as = append(as, llmproxy.Assignment{ConnectionID: c.ID, Budget: &llmproxy.Budget{USD: 1, Period: llmproxy.BudgetMonthly}})
	}
	must(t, s.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Assignments: as,
		Budget: &llmproxy.Budget{USD: 0.001, Period: llmproxy.BudgetTotal}}))
	_, srv := (&budgetStore{Store: s}).gateway(t, nil)
	ask := func(model string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"`+model+`","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`))
		req.Header.Set("Authorization", "Bearer "+keyConn)
		return do(t, req)
	}
	for _, m := range []string{"a", "b"} {
		resp, body := ask(m)
		if resp.StatusCode != 200 || resp.Header.Get(llmproxy.HeaderBudgetReset) != "" {
			t.Fatalf("%s: %d %s %v", m, resp.StatusCode, body, resp.Header)
		}
	}
	// 700 µ$ spent on a and b together; 480 more would pass $0.001.
	resp, body := ask("a")
	if resp.StatusCode != 429 || !strings.Contains(body, "the key's total budget of $0.001 has $0.0007 spent") ||
		resp.Header.Get("Retry-After") != "" || resp.Header.Get(llmproxy.HeaderBudgetRemaining) != "0.0003" {
		t.Errorf("third request: %d %s %v", resp.StatusCode, body, resp.Header)
	}
}
