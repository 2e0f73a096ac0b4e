package storagetest

import (
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

// testKeyBudgets checks that the budgets of a key and of its assignments
// round trip through every read (by ID and the listing, which is also
// what a snapshot loads), that no budget reads nil, that an update
// replaces and clears them, and that the stored budget is a copy.
func testKeyBudgets(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	m := createModel(t, s, "model", c.ID)

	withBudget := modelOnly(m.ID)
	withBudget.Budget = &llmproxy.Budget{USD: 0.000001, Period: llmproxy.BudgetDaily, TZ: "Asia/Bangkok", Alerts: []float64{0.25}}
	k := newKey("budgeted", withBudget, connectionWide(c.ID))
	k.Budget = &llmproxy.Budget{USD: 1234.5678901, Period: llmproxy.BudgetMonthly, TZ: "UTC", Alerts: []float64{0.1, 1.0 / 3, 0.9, 1}}
	must(t, "CreateKey with budgets", s.CreateKey(ctx, k))
	none := createKey(t, s, "no-budget", modelOnly(m.ID))
	total := newKey("total")
	total.Budget = &llmproxy.Budget{USD: 1e9, Period: llmproxy.BudgetTotal} // TZ "": UTC
	must(t, "CreateKey total budget", s.CreateKey(ctx, total))

	want := map[string]*llmproxy.VirtualKey{k.ID: k, none.ID: none, total.ID: total}
	for _, w := range want {
		got, err := s.Key(ctx, w.ID)
		must(t, "Key", err)
		equalKey(t, "Key("+w.Name+")", got, w)
	}
	list, err := s.Keys(ctx, llmproxy.ListOptions{})
	must(t, "Keys", err)
	equalList(t, "Keys", list, want, keyID, equalKey)

	// The stored budgets are copies: changing the caller's changes nothing.
	k.Budget.USD = 1
	k.Budget.Alerts[0] = 0.7
	k.Assignments[0].Budget.Period = llmproxy.BudgetTotal
	got, err := s.Key(ctx, k.ID)
	must(t, "Key", err)
	if got.Budget.USD != 1234.5678901 || got.Budget.Alerts[0] != 0.1 || got.Assignments[0].Budget.Period != llmproxy.BudgetDaily {
		t.Fatalf("changing a key's budgets after CreateKey changed the stored ones: %+v %+v", *got.Budget, *got.Assignments[0].Budget)
	}
	got.Budget.USD = 2
	again, err := s.Key(ctx, k.ID)
	must(t, "Key", err)
	if again.Budget.USD != 1234.5678901 {
		t.Fatal("changing the budget of a key read changed the stored one")
	}

	// An update replaces the key's budget, clears one assignment's and
	// sets the other's.
	upd := got
	upd.Budget = &llmproxy.Budget{USD: 5, Period: llmproxy.BudgetWeekly, TZ: "America/New_York", Alerts: []float64{0.8}}
	upd.Assignments[0].Budget = nil
	upd.Assignments[1].Budget = &llmproxy.Budget{USD: 0.5, Period: llmproxy.BudgetMonthly, TZ: "Europe/Berlin"}
	must(t, "UpdateKey replacing budgets", s.UpdateKey(ctx, upd))
	got, err = s.Key(ctx, k.ID)
	must(t, "Key", err)
	equalKey(t, "after replacing budgets", got, upd)

	// And clears the key's budget.
	upd.Budget = nil
	must(t, "UpdateKey clearing the budget", s.UpdateKey(ctx, upd))
	got, err = s.Key(ctx, k.ID)
	must(t, "Key", err)
	equalKey(t, "after clearing the budget", got, upd)
	if got.Budget != nil || got.Assignments[0].Budget != nil {
		t.Errorf("cleared budgets read %+v and %+v, want nil", got.Budget, got.Assignments[0].Budget)
	}
}
