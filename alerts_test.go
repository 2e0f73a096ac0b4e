package llmproxy_test

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

const alertSecret = "whsec-test"

// alertBody is estimated at 80 µ$ + 40 µ$ but costs 350 µ$ (11 prompt and
// 6 completion tokens), so a budget's settled spend can reach 100%.
const alertBody = `{"model":"gpt-alias","max_tokens":1,"messages":[{"role":"user","content":"x"}]}`

// receiver is a webhook that records the events it accepted, after
// failing the first fails attempts with 500; block makes it hang until the
// caller gives up.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	fails    int
	block    bool
	attempts int
	got      []llmproxy.AlertEvent
	srv      *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	block, fail := r.block, r.fails > 0
	if fail {
		r.fails--
	}
	r.mu.Unlock()
	if block {
		<-req.Context().Done()
		return
	}
	if sig := req.Header.Get(llmproxy.HeaderAlertSignature); !hmac.Equal([]byte(sig), []byte(llmproxy.SignAlert(alertSecret, body))) {
		r.t.Errorf("signature %q does not verify", sig)
	}
	if fail {
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	var e llmproxy.AlertEvent
	if err := json.Unmarshal(body, &e); err != nil {
		r.t.Errorf("event %s: %v", body, err)
	}
	if id := req.Header.Get(llmproxy.HeaderAlertEventID); id != e.ID {
		r.t.Errorf("%s header %q; body's id %q", llmproxy.HeaderAlertEventID, id, e.ID)
	}
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
}

// wait waits for n accepted events and returns them.
func (r *receiver) wait(n int) []llmproxy.AlertEvent {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := append([]llmproxy.AlertEvent(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			time.Sleep(100 * time.Millisecond) // room for a duplicate to show
			r.mu.Lock()
			defer r.mu.Unlock()
			return append([]llmproxy.AlertEvent(nil), r.got...)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("the receiver got %d events; want %d", len(r.got), n)
	return nil
}

func alertGateway(t *testing.T, s *budgetStore, hook string) (*llmproxy.Gateway, *httptest.Server) {
	gw, err := llmproxy.New(llmproxy.Config{Storage: s, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
		AlertWebhooks: []string{hook}, AlertWebhookSecret: alertSecret, AlertRetryBase: 20 * time.Millisecond, PollInterval: 50 * time.Millisecond})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return gw, srv
}

// spendAll sends alertBody until the budget refuses it.
func spendAll(t *testing.T, url string) {
	t.Helper()
	for range 10 {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(alertBody))
		req.Header.Set("Authorization", "Bearer "+keyConn)
		if resp, _ := do(t, req); resp.StatusCode == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatal("the budget never refused a request")
}

// checkThresholds wants one event for each default threshold, in order.
func checkThresholds(t *testing.T, got []llmproxy.AlertEvent, s *budgetStore) {
	t.Helper()
	if len(got) != 3 {
		t.Fatalf("events %+v; want 3", got)
	}
	// Retries may reorder deliveries.
	slices.SortFunc(got, func(a, b llmproxy.AlertEvent) int { return cmp.Compare(a.Threshold, b.Threshold) })
	for i, want := range []float64{0.5, 0.8, 1} {
		e := got[i]
		if e.Threshold != want || e.Type != llmproxy.AlertTypeBudgetThreshold || e.Key.ID != s.key.ID || e.Key.Name != "k" ||
			e.AssignmentID != s.key.Assignments[0].ID || e.Scope != "assignment" || e.Budget.USD != 0.00124 ||
			e.Budget.Period != llmproxy.BudgetMonthly || e.PeriodStart == nil || e.PeriodEnd == nil || e.SpentUSD < want*0.00124 {
			t.Errorf("event %d: %+v; want threshold %v of the assignment's budget", i, e, want)
		}
	}
}

// Spending a budget to 100% sends one event per threshold, even to a
// receiver that fails twice first; refused requests add none.
func TestAlertThresholdsOnce(t *testing.T) {
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.00124, Period: llmproxy.BudgetMonthly}, nil)
	r := newReceiver(t)
	r.fails = 2
	gw, srv := alertGateway(t, s, r.srv.URL)
	spendAll(t, srv.URL)
	spendAll(t, srv.URL)
	got := r.wait(3)
	checkThresholds(t, got, s)
	if st := gw.Stats(); st.AlertsEnqueued != 3 || st.AlertsDelivered != 3 || st.AlertFailures != 2 {
		t.Errorf("stats %+v; want 3 enqueued, 3 delivered, 2 failures", st)
	}
}

// A budget with its own Alerts fires at those thresholds only: at 25%,
// not at the default 50%, 80% and 100%.
func TestAlertThresholdsPerBudget(t *testing.T) {
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.00124, Period: llmproxy.BudgetMonthly, Alerts: []float64{0.25}}, nil)
	r := newReceiver(t)
	gw, srv := alertGateway(t, s, r.srv.URL)
	spendAll(t, srv.URL)
	got := r.wait(1)
	if len(got) != 1 || got[0].Threshold != 0.25 || got[0].SpentUSD < 0.25*0.00124 {
		t.Fatalf("events %+v; want one at threshold 0.25", got)
	}
	if st := gw.Stats(); st.AlertsEnqueued != 1 {
		t.Errorf("stats %+v; want 1 enqueued", st)
	}
}

// A gateway closed while a delivery is in flight leaves it in the outbox,
// and the next gateway on the same storage delivers it.
func TestAlertDeliveredAfterRestart(t *testing.T) {
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.00124, Period: llmproxy.BudgetMonthly}, nil)
	r := newReceiver(t)
	r.block = true
	gw, srv := alertGateway(t, s, r.srv.URL)
	spendAll(t, srv.URL)
	// Delivery is asynchronous: close only once one is in flight.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		n := r.attempts
		r.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first gateway attempted no delivery")
		}
	}
	srv.Close()
	must(t, gw.Close())
	r.mu.Lock()
	r.block = false
	r.mu.Unlock()
	due, err := s.DueAlerts(context.Background(), time.Now(), 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("outbox after the restart: %d due, %v; want 3", len(due), err)
	}
	_, srv = alertGateway(t, s, r.srv.URL)
	spendAll(t, srv.URL) // spent already: no new crossing
	checkThresholds(t, r.wait(3), s)
}

// A new period is a new budget: its thresholds fire again, as events of
// their own (another period start, another id).
func TestAlertThresholdsEveryPeriod(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	llmproxy.SetBudgetClock(t, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	s := newBudgetStore(t, &llmproxy.Budget{USD: 0.00124, Period: llmproxy.BudgetDaily}, nil)
	r := newReceiver(t)
	_, srv := alertGateway(t, s, r.srv.URL)
	spendAll(t, srv.URL)
	first := r.wait(3)
	mu.Lock()
	now = now.Add(24 * time.Hour) // the next day: a new period
	mu.Unlock()
	spendAll(t, srv.URL)
	all := r.wait(6)
	if len(all) != 6 {
		t.Fatalf("%d events over two periods; want 6", len(all))
	}
	ids := map[string]bool{}
	starts := map[time.Time]int{}
	for _, e := range all {
		ids[e.ID] = true
		if e.PeriodStart != nil {
			starts[e.PeriodStart.UTC()]++
		}
	}
	if len(ids) != 6 || len(starts) != 2 {
		t.Errorf("events %+v (first period %+v): want 6 ids over 2 period starts, got %d ids, starts %v", all, first, len(ids), starts)
	}
}
