package console

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

// trafficStore is the memory store with the hourly traffic and the
// recent-requests query computed from its records: a reference
// implementation of llmproxy.TrafficReporter (what the real backends
// keep as rollups and indexes), not a mock.
type trafficStore struct {
	*memory.Store
	mu      sync.Mutex
	records []llmproxy.UsageRecord
}

func (s *trafficStore) AppendUsage(ctx context.Context, records []llmproxy.UsageRecord) error {
	if err := s.Store.AppendUsage(ctx, records); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		if !r.CostKnown {
			r.CostMicros = 0
		}
		s.records = append(s.records, r)
	}
	return nil
}

func (s *trafficStore) Traffic(ctx context.Context, f llmproxy.TrafficFilter) ([]llmproxy.TrafficPoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byHour := map[time.Time]*llmproxy.TrafficPoint{}
	for i := range s.records {
		r := &s.records[i]
		h := r.Time.UTC().Truncate(time.Hour)
		if f.KeyID != "" && r.KeyID != f.KeyID || !f.Since.IsZero() && !h.Add(time.Hour).After(f.Since) ||
			!f.Until.IsZero() && !h.Before(f.Until) {
			continue
		}
		p := byHour[h]
		if p == nil {
			p = &llmproxy.TrafficPoint{Hour: h}
			byHour[h] = p
		}
		p.AddRecord(r)
	}
	var out []llmproxy.TrafficPoint
	for _, p := range byHour {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b llmproxy.TrafficPoint) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}

func (s *trafficStore) RecentUsage(ctx context.Context, f llmproxy.RecentFilter) ([]llmproxy.UsageRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []llmproxy.UsageRecord
	for _, r := range s.records {
		if f.KeyID != "" && r.KeyID != f.KeyID || f.Model != "" && r.Model != f.Model ||
			f.Status != 0 && r.Status != f.Status || f.Errors && r.Status < 400 ||
			!f.Before.IsZero() && !r.Time.Before(f.Before) {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b llmproxy.UsageRecord) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.ID, a.ID))
	})
	return out[:min(len(out), f.RecentLimit())], nil
}

// reportingStore is a store with daily rollups, as every standard
// backend is.
type reportingStore interface {
	llmproxy.Storage
	llmproxy.UsageReporter
}

// pageStores are the backends the page tests run on: the memory store
// (with the reference traffic above until it keeps its own), and SQLite
// once it keeps hourly traffic.
var pageStores = []struct {
	name string
	open func(t *testing.T) reportingStore
}{
	{"memory", func(t *testing.T) reportingStore {
		m := memory.New()
		if _, ok := any(m).(llmproxy.TrafficReporter); ok {
			return m
		}
		return &trafficStore{Store: m}
	}},
	{"sqlite", func(t *testing.T) reportingStore {
		sealer, err := secret.NewAESGCM(make([]byte, 32))
		must(t, err)
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "console.db"), sqlite.Options{Sealer: sealer})
		must(t, err)
		t.Cleanup(func() { s.Close() })
		if _, ok := any(s).(llmproxy.TrafficReporter); !ok {
			t.Skip("this SQLite store keeps no hourly traffic yet")
		}
		return s
	}},
}

// forEachStore runs f on the test ledger in each of pageStores.
func forEachStore(t *testing.T, f func(t *testing.T, l *ledger)) {
	for _, s := range pageStores {
		t.Run(s.name, func(t *testing.T) { f(t, newLedger(t, s.open(t))) })
	}
}

// memoryLedger is the test ledger in the memory store.
func memoryLedger(t *testing.T) *ledger { return newLedger(t, pageStores[0].open(t)) }

// now is when the test pages are drawn: 15:30 UTC.
var now = time.Date(2026, 3, 10, 15, 30, 0, 0, time.UTC)

// ledger is a store with keys alpha, beta and gamma and a known ledger.
type ledger struct {
	env                pageEnv
	store              reportingStore
	alpha, beta, gamma string // key IDs
	conn, gpt, mini    string // connection and model IDs
	records            []llmproxy.UsageRecord
	ctx                context.Context
}

// newLedger stores the workload every figure below is computed from by
// hand (times back from now, 15:30 UTC on 2026-03-10):
//
//	id  key     model   back  status tokens (p+c)  cost µ$    latency (bucket)
//	r1  alpha   gpt-4o  10m   200    100+50=150    1500       30ms (≤50ms)
//	r2  alpha   gpt-4o  2h    500    10+0=10       0          300ms (≤500ms)
//	r3  beta    mini    5h    200    1000+200=1200 240        80ms (≤100ms)
//	r4  master  gpt-4o  20h   200    40+10=50      unknown    1.5s (≤2s)
//	r5  beta    mini    3d    200    100+100=200   80000      150ms
//	r6  alpha   gpt-4o  40h   429    0             0          1ms
//	r7  beta    mini    20d   200    500+500=1000  400000     40ms
//	r8  alpha   gpt-4o  40d   200    1+1=2         7          5ms
func newLedger(t *testing.T, s reportingStore) *ledger {
	t.Helper()
	ctx := context.Background()
	f := &ledger{store: s, ctx: ctx, env: pageEnv{Storage: s, Admin: &admin.Service{Storage: s}, Now: now}}
	c := &llmproxy.Connection{Name: "openai-main", Provider: llmproxy.KindCompatible, Endpoint: "http://127.0.0.1:1"}
	must(t, s.CreateConnection(ctx, c))
	gpt := &llmproxy.Model{Name: "gpt-4o", Remote: "gpt-4o", ConnectionID: c.ID}
	mini := &llmproxy.Model{Name: "mini", Remote: "gpt-4o-mini", ConnectionID: c.ID}
	must(t, s.CreateModel(ctx, gpt))
	must(t, s.CreateModel(ctx, mini))
	f.conn, f.gpt, f.mini = c.ID, gpt.ID, mini.ID
	alpha := &llmproxy.VirtualKey{Name: "alpha", Hash: llmproxy.HashKey("sk-alpha-secret"),
		Budget:      &llmproxy.Budget{USD: 0.001, Period: llmproxy.BudgetDaily}, // 1000 µ$, spent 1500 today
		Assignments: []llmproxy.Assignment{{ConnectionID: c.ID}}}
	beta := &llmproxy.VirtualKey{Name: "beta", Hash: llmproxy.HashKey("sk-beta-secret"),
		Assignments: []llmproxy.Assignment{{ModelID: mini.ID, // 100000 µ$ a month, 80240 spent in March: 80.24%
			Budget: &llmproxy.Budget{USD: 0.1, Period: llmproxy.BudgetMonthly}}}}
	gamma := &llmproxy.VirtualKey{Name: "gamma", Hash: llmproxy.HashKey("sk-gamma-secret"),
		Budget:      &llmproxy.Budget{USD: 10, Period: llmproxy.BudgetMonthly}, // unused: not near
		Assignments: []llmproxy.Assignment{{ConnectionID: c.ID}}}
	for _, k := range []*llmproxy.VirtualKey{alpha, beta, gamma} {
		must(t, s.CreateKey(ctx, k))
	}
	f.alpha, f.beta, f.gamma = alpha.ID, beta.ID, gamma.ID
	betaAsg := beta.Assignments[0].ID

	rec := func(id, key, asg, model string, back time.Duration, status int, p, c, cost int64, known bool, lat time.Duration) llmproxy.UsageRecord {
		return llmproxy.UsageRecord{ID: id, Time: now.Add(-back), KeyID: key, AssignmentID: asg, Model: model, RemoteModel: model,
			ConnectionID: f.conn, PromptTokens: p, CompletionTokens: c, TotalTokens: p + c, CostMicros: cost, CostKnown: known,
			Status: status, Latency: lat, Endpoint: llmproxy.EndpointChat}
	}
	alphaAsg := alpha.Assignments[0].ID
	f.records = []llmproxy.UsageRecord{
		rec("r1", f.alpha, alphaAsg, "gpt-4o", 10*time.Minute, 200, 100, 50, 1500, true, 30*time.Millisecond),
		rec("r2", f.alpha, alphaAsg, "gpt-4o", 2*time.Hour, 500, 10, 0, 0, true, 300*time.Millisecond),
		rec("r3", f.beta, betaAsg, "mini", 5*time.Hour, 200, 1000, 200, 240, true, 80*time.Millisecond),
		rec("r4", "", "", "gpt-4o", 20*time.Hour, 200, 40, 10, 0, false, 1500*time.Millisecond),
		rec("r5", f.beta, betaAsg, "mini", 72*time.Hour, 200, 100, 100, 80000, true, 150*time.Millisecond),
		rec("r6", f.alpha, alphaAsg, "gpt-4o", 40*time.Hour, 429, 0, 0, 0, true, time.Millisecond),
		rec("r7", f.beta, betaAsg, "mini", 20*24*time.Hour, 200, 500, 500, 400000, true, 40*time.Millisecond),
		rec("r8", f.alpha, alphaAsg, "gpt-4o", 40*24*time.Hour, 200, 1, 1, 7, true, 5*time.Millisecond),
	}
	must(t, s.AppendUsage(ctx, f.records))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func query(s string) url.Values {
	q, err := url.ParseQuery(s)
	if err != nil {
		panic(err)
	}
	return q
}

func TestOverviewFigures(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *ledger) {
		for _, tc := range []struct {
			query, scope             string
			requests, errors, tokens int64
			cost, unknown            int64
			p50, p95                 time.Duration
			since                    time.Time
			topKeys, topModels       []string // names, by spend
		}{
			// r1 r2 r3 r4; latency buckets ≤50ms, ≤100ms, ≤500ms, ≤2s: the
			// median (rank 2) ends the ≤100ms bucket; p95 (rank 3.8) is 0.8
			// into (1s, 2s]. The top tables read the UTC days from Mar 9.
			{query: "", requests: 4, errors: 1, tokens: 1410, cost: 1740, unknown: 1,
				p50: 100 * time.Millisecond, p95: 1800 * time.Millisecond, since: time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC),
				topKeys: []string{"alpha", "beta", "(master key)"}, topModels: []string{"gpt-4o", "mini"}},
			// r1–r6: buckets ≤1ms, ≤50ms, ≤100ms, ≤200ms, ≤500ms, ≤2s; rank 3
			// ends ≤100ms, rank 5.7 is 0.7 into (1s, 2s].
			{query: "range=7d", requests: 6, errors: 2, tokens: 1610, cost: 81740, unknown: 1,
				p50: 100 * time.Millisecond, p95: 1700 * time.Millisecond, since: time.Date(2026, 3, 3, 16, 0, 0, 0, time.UTC),
				topKeys: []string{"beta", "alpha", "(master key)"}, topModels: []string{"mini", "gpt-4o"}},
			// r1–r7: rank 3.5 is half way into (50ms, 100ms].
			{query: "range=30d", requests: 7, errors: 2, tokens: 2610, cost: 481740, unknown: 1,
				p50: 75 * time.Millisecond, p95: 1650 * time.Millisecond, since: time.Date(2026, 2, 9, 0, 0, 0, 0, time.UTC),
				topKeys: []string{"beta", "alpha", "(master key)"}, topModels: []string{"mini", "gpt-4o"}},
			// Key beta's own view: r3 only.
			{query: "", scope: "beta", requests: 1, tokens: 1200, cost: 240,
				p50: 75 * time.Millisecond, p95: 97500 * time.Microsecond, since: time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC),
				topKeys: []string{"beta"}, topModels: []string{"mini"}},
		} {
			t.Run(tc.query+"/"+tc.scope, func(t *testing.T) {
				scope := map[string]string{"beta": f.beta}[tc.scope]
				p, err := loadOverview(f.ctx, f.env, scope, query(tc.query))
				must(t, err)
				want := overviewTotals{Requests: tc.requests, Errors: tc.errors, Tokens: tc.tokens, CostMicros: tc.cost,
					UnknownCost: tc.unknown, ErrorRate: float64(tc.errors) / float64(tc.requests), P50: tc.p50, P95: tc.p95}
				if p.Totals != want {
					t.Errorf("totals\n got %+v\nwant %+v", p.Totals, want)
				}
				if !p.Since.Equal(tc.since) || !p.Traffic {
					t.Errorf("since %v (traffic %v), want %v", p.Since, p.Traffic, tc.since)
				}
				var keys, models []string
				for _, r := range p.TopKeys {
					keys = append(keys, r.Key.Name)
				}
				for _, r := range p.TopModels {
					models = append(models, r.Model)
				}
				if !slices.Equal(keys, tc.topKeys) || !slices.Equal(models, tc.topModels) {
					t.Errorf("top keys %v, models %v; want %v, %v", keys, models, tc.topKeys, tc.topModels)
				}
				// Every chart has a point per hour (day) of the range, and
				// its points sum to the totals.
				n := map[string]int{"": 24, "range=7d": 168, "range=30d": 30}[tc.query]
				if len(p.Charts) != 3 {
					t.Fatalf("%d charts", len(p.Charts))
				}
				for _, c := range p.Charts {
					if len(c.Rows) != n {
						t.Errorf("chart %q has %d points, want %d", c.Title, len(c.Rows), n)
					}
				}
			})
		}
	})
}

func TestOverviewTopAndBudgets(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *ledger) {
		p, err := loadOverview(f.ctx, f.env, "", nil)
		must(t, err)
		// Top keys over the UTC days Mar 9–10: r1 r2 r3 r4 (r6 is Mar 8).
		wantKeys := []topRow{
			{Key: keyRef{ID: f.alpha, Name: "alpha", Href: "/ui/keys/" + f.alpha}, Requests: 2, Tokens: 160, CostMicros: 1500},
			{Key: keyRef{ID: f.beta, Name: "beta", Href: "/ui/keys/" + f.beta}, Requests: 1, Tokens: 1200, CostMicros: 240},
			{Key: keyRef{Name: "(master key)"}, Requests: 1, Tokens: 50, UnknownCost: 1},
		}
		if !slices.Equal(p.TopKeys, wantKeys) {
			t.Errorf("top keys\n got %+v\nwant %+v", p.TopKeys, wantKeys)
		}
		// alpha's daily budget: 1500 of 1000 µ$ today; beta's assignment:
		// 80240 of 100000 this month (r3 + r5); gamma's is unused and ends
		// on Apr 1.
		wantBudgets := []budgetRow{
			{Key: wantKeys[0].Key, Scope: "key", Period: "daily", LimitMicros: 1000, SpentMicros: 1500, Fraction: 1.5,
				Start: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)},
			{Key: wantKeys[1].Key, Scope: "model mini", Period: "monthly", LimitMicros: 100000, SpentMicros: 80240, Fraction: 0.8024,
				Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		}
		if len(p.Budgets) != len(wantBudgets) {
			t.Fatalf("budgets near: %+v", p.Budgets)
		}
		for i, b := range p.Budgets {
			w := wantBudgets[i]
			if b.Key != w.Key || b.Scope != w.Scope || b.Period != w.Period || b.LimitMicros != w.LimitMicros ||
				b.SpentMicros != w.SpentMicros || fmt.Sprintf("%.4f", b.Fraction) != fmt.Sprintf("%.4f", w.Fraction) ||
				!b.Start.Equal(w.Start) || !b.End.Equal(w.End) {
				t.Errorf("budget %d\n got %+v\nwant %+v", i, b, w)
			}
		}
		// Key gamma's own view: its budget is not near; no other key's shows.
		p, err = loadOverview(f.ctx, f.env, f.gamma, nil)
		must(t, err)
		if len(p.Budgets) != 0 || len(p.TopKeys) != 0 || p.Totals.Requests != 0 {
			t.Errorf("gamma sees budgets %+v, top keys %+v, totals %+v", p.Budgets, p.TopKeys, p.Totals)
		}
	})
}

func TestUsageMatchesReport(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *ledger) {
		for _, tc := range []struct {
			name, query, scope string
			filter             llmproxy.UsageFilter
			by                 []llmproxy.UsageGroup
			requests, tokens   int64
			cost               int64
		}{
			{name: "default 30d", query: "", filter: llmproxy.UsageFilter{Since: now.Add(-30 * 24 * time.Hour)},
				by: []llmproxy.UsageGroup{"key", "model"}, requests: 7, tokens: 2610, cost: 481740},
			{name: "all by day", query: "range=all&by=day", by: []llmproxy.UsageGroup{"day"}, requests: 8, tokens: 2612, cost: 481747},
			{name: "checkboxes", query: "by=model&by=connection&range=7d", filter: llmproxy.UsageFilter{Since: now.Add(-7 * 24 * time.Hour)},
				by: []llmproxy.UsageGroup{"model", "connection"}, requests: 6, tokens: 1610, cost: 81740},
			// Mar 7 to Mar 9 inclusive: r5, r6, r4. since/until win over range.
			{name: "dates", query: "by=key,day&since=2026-03-07&until=2026-03-09&range=24h",
				filter: llmproxy.UsageFilter{Since: time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)},
				by:     []llmproxy.UsageGroup{"key", "day"}, requests: 3, tokens: 250, cost: 80000},
			{name: "key by name", query: "range=all&key=alpha&model=gpt-4o", filter: llmproxy.UsageFilter{KeyID: "alpha", Model: "gpt-4o"},
				by: []llmproxy.UsageGroup{"key", "model"}, requests: 4, tokens: 162, cost: 1507},
			{name: "connection by name", query: "range=all&connection=openai-main&by=connection", filter: llmproxy.UsageFilter{ConnectionID: "conn"},
				by: []llmproxy.UsageGroup{"connection"}, requests: 8, tokens: 2612, cost: 481747},
			{name: "key view", query: "range=all", scope: "beta", filter: llmproxy.UsageFilter{KeyID: "beta"},
				by: []llmproxy.UsageGroup{"key", "model"}, requests: 3, tokens: 2400, cost: 480240},
			{name: "key view naming itself", query: "range=all&key=beta", scope: "beta", filter: llmproxy.UsageFilter{KeyID: "beta"},
				by: []llmproxy.UsageGroup{"key", "model"}, requests: 3, tokens: 2400, cost: 480240},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ids := map[string]string{"alpha": f.alpha, "beta": f.beta, "conn": f.conn}
				scope := ids[tc.scope]
				fl := tc.filter
				fl.KeyID, fl.ConnectionID = cmp.Or(ids[fl.KeyID], fl.KeyID), cmp.Or(ids[fl.ConnectionID], fl.ConnectionID)
				want, err := f.store.UsageReport(f.ctx, fl, tc.by)
				must(t, err)
				p, err := loadUsage(f.ctx, f.env, scope, query(tc.query))
				must(t, err)
				var got []llmproxy.UsageRow
				for _, l := range p.Rows {
					got = append(got, l.Sums)
				}
				if !slices.Equal(got, want) {
					t.Errorf("rows\n got %+v\nwant %+v", got, want)
				}
				if p.Total.Requests != tc.requests || p.Total.TotalTokens != tc.tokens || p.Total.CostMicros != tc.cost {
					t.Errorf("total %+v, want %d requests, %d tokens, %d µ$", p.Total, tc.requests, tc.tokens, tc.cost)
				}
				// The CSV is the CLI's: admin.WriteUsageCSV of the same report.
				names, err := keyNames(f.ctx, f.env)
				must(t, err)
				var gotCSV, wantCSV bytes.Buffer
				must(t, writeUsageCSV(f.ctx, &gotCSV, f.env, scope, query(tc.query)))
				must(t, admin.WriteUsageCSV(&wantCSV, want, tc.by, names))
				if gotCSV.String() != wantCSV.String() {
					t.Errorf("CSV\n got %q\nwant %q", gotCSV.String(), wantCSV.String())
				}
				if !strings.Contains(p.CSVHref, "/ui/usage.csv?") {
					t.Errorf("CSV link %q", p.CSVHref)
				}
			})
		}
	})
}

func TestRequestsFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *ledger) {
		for _, tc := range []struct {
			query, scope string
			want         []string
		}{
			{"", "", []string{"r1", "r2", "r3", "r4", "r6", "r5", "r7", "r8"}},
			{"status=errors", "", []string{"r2", "r6"}},
			{"status=429", "", []string{"r6"}},
			{"key=alpha", "", []string{"r1", "r2", "r6", "r8"}},
			{"model=mini", "", []string{"r3", "r5", "r7"}},
			{"key=alpha&model=mini", "", nil},
			{"before=" + now.Add(-5*time.Hour).Format(time.RFC3339), "", []string{"r4", "r6", "r5", "r7", "r8"}},
			{"", "beta", []string{"r3", "r5", "r7"}},
			{"key=beta&status=200", "beta", []string{"r3", "r5", "r7"}},
		} {
			scope := map[string]string{"beta": f.beta}[tc.scope]
			p, err := loadRequests(f.ctx, f.env, scope, query(tc.query))
			if err != nil {
				t.Errorf("%q: %v", tc.query, err)
				continue
			}
			var got []string
			for _, r := range p.Rows {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tc.want) || p.OlderHref != "" {
				t.Errorf("%q as %q: %v (older %q), want %v", tc.query, tc.scope, got, p.OlderHref, tc.want)
			}
		}
	})
}

func TestRequestsPages(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *ledger) {
		var more []llmproxy.UsageRecord
		for i := range 60 {
			more = append(more, llmproxy.UsageRecord{ID: fmt.Sprintf("m%02d", i), Time: now.Add(-time.Duration(i+1) * time.Second),
				KeyID: f.gamma, Model: "gpt-4o", Status: 200, Endpoint: llmproxy.EndpointChat})
		}
		must(t, f.store.AppendUsage(f.ctx, more))
		seen := map[string]bool{}
		q := query("key=gamma")
		for page := 0; ; page++ {
			p, err := loadRequests(f.ctx, f.env, "", q)
			must(t, err)
			for _, r := range p.Rows {
				if seen[r.ID] || r.KeyID != f.gamma {
					t.Fatalf("page %d repeats %s or is not gamma's", page, r.ID)
				}
				seen[r.ID] = true
			}
			if p.OlderHref == "" {
				break
			}
			u, err := url.Parse(p.OlderHref)
			must(t, err)
			q = u.Query()
			if q.Get("key") != "gamma" || page > 2 {
				t.Fatalf("older link %q", p.OlderHref)
			}
		}
		if len(seen) != 60 {
			t.Errorf("paged through %d of 60 records", len(seen))
		}
	})
}

func TestBadQueries(t *testing.T) {
	f := memoryLedger(t)
	type loader func(q url.Values, scope string) error
	overview := func(q url.Values, scope string) error { _, err := loadOverview(f.ctx, f.env, scope, q); return err }
	usage := func(q url.Values, scope string) error { _, err := loadUsage(f.ctx, f.env, scope, q); return err }
	csv := func(q url.Values, scope string) error {
		var b bytes.Buffer
		err := writeUsageCSV(f.ctx, &b, f.env, scope, q)
		if b.Len() > 0 {
			t.Errorf("CSV written for a refused query %v", q)
		}
		return err
	}
	requests := func(q url.Values, scope string) error { _, err := loadRequests(f.ctx, f.env, scope, q); return err }
	for _, tc := range []struct {
		load         loader
		query, scope string
		param        string // named in the message
	}{
		{overview, "range=1y", "", "range"},
		{overview, "range=all", "", "range"},
		{overview, "range=24h&range=7d", "", "range"},
		{usage, "by=week", "", "by"},
		{usage, "by=", "", "by"},
		{usage, "range=90d", "", "range"},
		{usage, "since=yesterday", "", "since"},
		{usage, "until=31/01/2026", "", "until"},
		{usage, "since=2026-03-09&until=2026-03-01", "", "until"},
		{usage, "key=alpha", "beta", "key"},
		{csv, "by=week", "", "by"},
		{csv, "key=alpha", "beta", "key"},
		{requests, "status=abc", "", "status"},
		{requests, "status=99", "", "status"},
		{requests, "before=yesterday", "", "before"},
		{requests, "key=" + "alpha", "beta", "key"},
		{requests, "model=a&model=b", "", "model"},
	} {
		scope := map[string]string{"beta": f.beta}[tc.scope]
		err := tc.load(query(tc.query), scope)
		if !errors.Is(err, llmproxy.ErrInvalid) || !strings.HasPrefix(err.Error(), tc.param+": ") {
			t.Errorf("%q as %q: %v, want ErrInvalid naming %s", tc.query, tc.scope, err, tc.param)
		}
	}
}

// plainStore is a third-party store: no rollups, no traffic.
type plainStore struct{ llmproxy.Storage }

// rollupStore keeps daily rollups but no hourly traffic.
type rollupStore struct {
	llmproxy.Storage
	llmproxy.UsageReporter
}

func TestPagesWithoutTraffic(t *testing.T) {
	f := memoryLedger(t)
	env := f.env
	env.Storage = rollupStore{f.store, f.store}
	p, err := loadOverview(f.ctx, env, "", nil)
	must(t, err)
	// The rollups of Mar 9 and 10: r1 r2 r3 r4.
	if p.Traffic || p.Note == "" || p.Charts != nil || p.Totals.Requests != 4 || p.Totals.CostMicros != 1740 || len(p.TopKeys) != 3 {
		t.Errorf("overview without traffic: %+v", p)
	}
	r, err := loadRequests(f.ctx, env, "", nil)
	must(t, err)
	if r.Note == "" || r.Rows != nil {
		t.Errorf("requests without traffic: %+v", r)
	}
	env.Storage = plainStore{f.store}
	p, err = loadOverview(f.ctx, env, "", nil)
	must(t, err)
	if p.Note == "" || p.Totals.Requests != 0 || len(p.Budgets) != 2 {
		t.Errorf("overview of a plain store: %+v", p)
	}
	u, err := loadUsage(f.ctx, env, "", nil)
	must(t, err)
	if u.Note == "" || u.Rows != nil {
		t.Errorf("usage of a plain store: %+v", u)
	}
}

// render executes page template name with a minimal layout, as the
// console's layout does, and checks what the CSP forbids is absent.
func render(t *testing.T, name string, admin bool, page any) string {
	t.Helper()
	tmpl := template.Must(template.New("layout").Funcs(pageFuncs()).Parse(`{{define "layout"}}{{template "content" .}}{{end}}`))
	template.Must(tmpl.ParseFiles("templates/" + name + ".html"))
	var b bytes.Buffer
	data := struct {
		Title, KeyName, KeyID, CSRF, Nav, Error string
		Admin                                   bool
		Page                                    any
	}{Admin: admin, Page: page}
	must(t, tmpl.ExecuteTemplate(&b, "layout", data))
	out := b.String()
	for _, bad := range []string{"style=", "<script", "<style", "javascript:", "sk-alpha-secret", "sk-beta-secret"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s page contains %q", name, bad)
		}
	}
	return out
}

// value returns the data-value of the element with data-testid id (the
// first), failing when there is none.
func dataValue(t *testing.T, html, id string) string {
	t.Helper()
	m := regexp.MustCompile(`data-testid="` + id + `" data-value="([^"]*)"`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no data-testid=%q with a data-value", id)
	}
	return m[1]
}

func TestRenderedPages(t *testing.T) {
	forEachStore(t, func(t *testing.T, f *ledger) {
		o, err := loadOverview(f.ctx, f.env, "", nil)
		must(t, err)
		html := render(t, "overview", true, o)
		for id, want := range map[string]string{"total-requests": "4", "total-tokens": "1410", "total-cost": "1740",
			"error-rate": "0.25", "latency-p50": "100", "latency-p95": "1800"} {
			if got := dataValue(t, html, id); got != want {
				t.Errorf("overview %s = %q, want %q", id, got, want)
			}
		}
		for _, want := range []string{`data-testid="top-keys"`, `data-testid="top-models"`, `data-testid="budgets-near"`,
			`aria-current="page">24 h</a>`, `href="/ui/?range=7d"`, ">$0.00174 "} {
			if !strings.Contains(html, want) {
				t.Errorf("overview lacks %s", want)
			}
		}
		if n := strings.Count(html, `data-testid="top-row"`); n != 5 { // 3 keys, 2 models
			t.Errorf("%d top rows, want 5", n)
		}
		if n := strings.Count(html, `data-testid="budget-row"`); n != 2 {
			t.Errorf("%d budget rows, want 2", n)
		}
		svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(html, -1)
		if len(svgs) != 3 {
			t.Fatalf("%d charts in the overview, want 3", len(svgs))
		}
		for _, s := range svgs {
			checkSVG(t, s)
		}

		u, err := loadUsage(f.ctx, f.env, "", query("range=all&by=key&by=model"))
		must(t, err)
		html = render(t, "usage", true, u)
		if n := strings.Count(html, `data-testid="usage-row"`); n != 3 { // alpha/gpt-4o, beta/mini, master/gpt-4o
			t.Errorf("%d usage rows, want 3", n)
		}
		total := html[strings.Index(html, `data-testid="usage-total"`):]
		for id, want := range map[string]string{"requests": "8", "prompt-tokens": "1751", "completion-tokens": "861",
			"total-tokens": "2612", "cost": "481747"} {
			if got := dataValue(t, total, id); got != want {
				t.Errorf("usage total %s = %q, want %q", id, got, want)
			}
		}
		for _, want := range []string{`id="by-key" name="by" value="key" checked`, `id="by-day" name="by" value="day">`,
			`<label for="key">Key</label>`, `href="/ui/usage.csv?by=key&amp;by=model&amp;range=all"`, ">Download CSV<"} {
			if !strings.Contains(html, want) {
				t.Errorf("usage page lacks %s", want)
			}
		}
		// A key's session has no key filter to fill.
		if html := render(t, "usage", false, u); strings.Contains(html, `for="key"`) {
			t.Error("usage page offers a key filter to a key's session")
		}

		r, err := loadRequests(f.ctx, f.env, "", query("status=errors"))
		must(t, err)
		html = render(t, "requests", true, r)
		if n := strings.Count(html, `data-testid="request-row"`); n != 2 {
			t.Errorf("%d request rows, want 2", n)
		}
		for _, want := range []string{`data-testid="requests"`, `data-testid="status" data-value="500"`, ">alpha</a>",
			`data-testid="latency" data-value="300"`, `value="errors"`} {
			if !strings.Contains(html, want) {
				t.Errorf("requests page lacks %s", want)
			}
		}
	})
}
