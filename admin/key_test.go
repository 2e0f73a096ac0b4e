package admin_test

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// TestCheckBudget checks what a budget may be: errors name the field and
// the bad value; an empty period becomes monthly, an empty zone stays UTC.
func TestCheckBudget(t *testing.T) {
	for _, c := range []struct {
		name string
		in   llmproxy.Budget
		msg  string
	}{
		{"zero", llmproxy.Budget{USD: 0}, "budget must be a positive number of US dollars, not 0"},
		{"negative", llmproxy.Budget{USD: -2.5}, "not -2.5"},
		{"NaN", llmproxy.Budget{USD: math.NaN()}, "not NaN"},
		{"infinite", llmproxy.Budget{USD: math.Inf(1)}, "not +Inf"},
		{"period", llmproxy.Budget{USD: 1, Period: "Monthly"}, `budget period "Monthly": want daily, weekly, monthly or total`},
		{"zone", llmproxy.Budget{USD: 1, TZ: "Asia/Nowhere"}, `budget time zone "Asia/Nowhere" is not an IANA time zone name`},
		{"local", llmproxy.Budget{USD: 1, TZ: "Local"}, `budget time zone "Local"`},
		{"alert zero", llmproxy.Budget{USD: 1, Alerts: []float64{0}}, "budget alert threshold 0: want a fraction"},
		{"alert over", llmproxy.Budget{USD: 1, Alerts: []float64{0.5, 1.5}}, "budget alert threshold 1.5"},
		{"alert NaN", llmproxy.Budget{USD: 1, Alerts: []float64{math.NaN()}}, "budget alert threshold NaN"},
		{"alerts many", llmproxy.Budget{USD: 1, Alerts: make([]float64, 11)}, "at most 10 thresholds, not 11"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.in
			wantErr(t, admin.CheckBudget(&b), llmproxy.ErrInvalid, c.msg)
		})
	}
	wantErr(t, admin.CheckBudget(nil), nil, "")
	b := &llmproxy.Budget{USD: 0.01, Period: " weekly ", TZ: " Asia/Bangkok "}
	wantErr(t, admin.CheckBudget(b), nil, "")
	if !llmproxy.SameBudget(b, &llmproxy.Budget{USD: 0.01, Period: "weekly", TZ: "Asia/Bangkok"}) {
		t.Errorf("trimmed budget %+v", *b)
	}
	b = &llmproxy.Budget{USD: 3}
	wantErr(t, admin.CheckBudget(b), nil, "")
	if !llmproxy.SameBudget(b, &llmproxy.Budget{USD: 3, Period: llmproxy.BudgetMonthly}) {
		t.Errorf("defaulted budget %+v, want monthly in UTC", *b)
	}
	b = &llmproxy.Budget{USD: 3, Alerts: []float64{1, 0.5, 0.8, 0.5}}
	wantErr(t, admin.CheckBudget(b), nil, "")
	if !llmproxy.SameBudget(b, &llmproxy.Budget{USD: 3, Period: llmproxy.BudgetMonthly, Alerts: []float64{0.5, 0.8, 1}}) {
		t.Errorf("alerts not sorted and deduplicated: %+v", *b)
	}
}

// TestAdminKeyBudgets checks budgets through AddKey, AssignKey and
// UpdateKey on every backend: set, replaced, cleared, refused unchanged.
func TestAdminKeyBudgets(t *testing.T) {
	forEachStore(t, func(t *testing.T, a *admin.Service) {
		ctx := context.Background()
		c := mustConn(t, a, "c")
		m := mustModel(t, a, "gemini-flash", c.ID)
		read := func() *llmproxy.VirtualKey {
			t.Helper()
			k, err := a.KeyByIDOrName(ctx, "team")
			wantErr(t, err, nil, "")
			return k
		}

		k := &llmproxy.VirtualKey{Name: "team", Budget: &llmproxy.Budget{USD: 100, TZ: "Europe/Berlin"},
			Assignments: []llmproxy.Assignment{{ConnectionID: "c", Budget: &llmproxy.Budget{USD: 5, Period: "daily"}}}}
		_, err := a.AddKey(ctx, k, "")
		wantErr(t, err, nil, "")
		got := read()
		if !reflect.DeepEqual(got.Budget, &llmproxy.Budget{USD: 100, Period: "monthly", TZ: "Europe/Berlin"}) ||
			!reflect.DeepEqual(got.Assignments[0].Budget, &llmproxy.Budget{USD: 5, Period: "daily"}) {
			t.Fatalf("added budgets %+v and %+v", got.Budget, got.Assignments[0].Budget)
		}

		_, err = a.AssignKey(ctx, "team", llmproxy.Assignment{ModelID: m.ID, Budget: &llmproxy.Budget{USD: 1, Period: "total"}})
		wantErr(t, err, nil, "")
		if got = read(); !reflect.DeepEqual(got.Assignments[1].Budget, &llmproxy.Budget{USD: 1, Period: "total"}) {
			t.Errorf("assigned budget %+v", got.Assignments[1].Budget)
		}

		// The key's budget; the selected assignment's, like its limits.
		_, err = a.UpdateKey(ctx, "team", admin.KeyUpdate{Budget: &llmproxy.Budget{USD: 7, Period: "weekly"}})
		wantErr(t, err, nil, "")
		_, err = a.UpdateKey(ctx, "team", admin.KeyUpdate{ModelID: m.ID, Limits: admin.LimitChange{ClearBudget: true}})
		wantErr(t, err, nil, "")
		got = read()
		if !reflect.DeepEqual(got.Budget, &llmproxy.Budget{USD: 7, Period: "weekly"}) || got.Assignments[1].Budget != nil ||
			got.Assignments[0].Budget == nil {
			t.Errorf("updated budgets %+v, %+v, %+v", got.Budget, got.Assignments[0].Budget, got.Assignments[1].Budget)
		}
		_, err = a.UpdateKey(ctx, "team", admin.KeyUpdate{ClearBudget: true})
		wantErr(t, err, nil, "")
		if got = read(); got.Budget != nil {
			t.Errorf("cleared key budget reads %+v", got.Budget)
		}

		before := read()
		for _, u := range []admin.KeyUpdate{
			{Budget: &llmproxy.Budget{USD: -1}},
			{Budget: &llmproxy.Budget{USD: 1}, ClearBudget: true},
			{ConnectionID: "c", Limits: admin.LimitChange{Budget: &llmproxy.Budget{USD: 1, Period: "hourly"}}},
			{ConnectionID: "c", Limits: admin.LimitChange{Budget: &llmproxy.Budget{USD: 1}, ClearBudget: true}},
		} {
			_, err = a.UpdateKey(ctx, "team", u)
			wantErr(t, err, llmproxy.ErrInvalid, "budget")
		}
		_, err = a.AssignKey(ctx, "team", llmproxy.Assignment{ConnectionID: "nope", Budget: &llmproxy.Budget{USD: 1, TZ: "Mars/Base"}})
		wantErr(t, err, llmproxy.ErrInvalid, `budget time zone "Mars/Base"`)
		_, err = a.AddKey(ctx, &llmproxy.VirtualKey{Name: "other", Budget: &llmproxy.Budget{USD: 0}}, "")
		wantErr(t, err, llmproxy.ErrInvalid, "budget must be a positive number")
		if after := read(); !reflect.DeepEqual(after, before) {
			t.Errorf("a refused change changed the key:\n%+v\n%+v", before, after)
		}
	})
}
