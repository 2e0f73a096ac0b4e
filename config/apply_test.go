package config_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/config"
	"github.com/go-llm-proxy/llmproxy/pricing"
)

// budgetBase is a connection and a model for the budget files.
const budgetBase = `
connections:
  - name: local
    provider: compatible
    endpoint: http://localhost:8000/v1
models:
  - name: m
    remote: r
    connection: local
keys:
  - name: team
    key: sk-team-secret
`

// TestApplyBudgets checks the budget blocks of keys and assignments: they
// are created, left alone when the file says what is stored, changed and
// removed, and a bad one is refused with its place and value named.
func TestApplyBudgets(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a := &admin.Service{Storage: store}
			apply := func(yaml string) []string {
				t.Helper()
				f, err := config.Parse([]byte(yaml), getenv)
				must(t, err)
				cs, err := config.Apply(ctx, a, f, config.Options{})
				must(t, err)
				var out []string
				for _, c := range cs {
					if c.Kind == "key" {
						out = append(out, c.String())
					}
				}
				return out
			}
			stored := func() *llmproxy.VirtualKey {
				t.Helper()
				k, err := a.KeyByIDOrName(ctx, "team")
				must(t, err)
				return k
			}
			budgets := budgetBase + `    budget:
      usd: 50
      tz: Asia/Bangkok
    assignments:
      - connection: local
        budget: {usd: 0.5, period: daily}
      - model: m
`
			got := apply(budgets)
			if want := "+ key team: budget $50/monthly(Asia/Bangkok); + connection local budget=$0.5/daily(UTC); + model m on local"; len(got) != 1 || got[0] != want {
				t.Errorf("create: %q, want %q", got, want)
			}
			k := stored()
			if !reflect.DeepEqual(k.Budget, &llmproxy.Budget{USD: 50, Period: "monthly", TZ: "Asia/Bangkok"}) ||
				!reflect.DeepEqual(k.Assignments[0].Budget, &llmproxy.Budget{USD: 0.5, Period: "daily"}) || k.Assignments[1].Budget != nil {
				t.Errorf("stored budgets %+v, %+v, %+v", k.Budget, k.Assignments[0].Budget, k.Assignments[1].Budget)
			}
			if got := apply(budgets); len(got) != 0 {
				t.Errorf("applying the same file again changed %q", got)
			}

			changed := budgetBase + `    budget: {usd: 75, period: weekly, tz: Asia/Bangkok}
    assignments:
      - connection: local
      - model: m
        budget: {usd: 2, period: total}
`
			got = apply(changed)
			if want := `~ key team: ~ connection local limits "budget=$0.5/daily(UTC)" -> "none"; ~ model m on local limits "none" -> "budget=$2/total(UTC)"; ` +
				`budget $50/monthly(Asia/Bangkok) -> $75/weekly(Asia/Bangkok)`; len(got) != 1 || got[0] != want {
				t.Errorf("change:\n %q\nwant\n %q", got, want)
			}
			k = stored()
			if k.Budget.USD != 75 || k.Assignments[0].Budget != nil || k.Assignments[1].Budget.Period != "total" {
				t.Errorf("changed budgets %+v, %+v, %+v", k.Budget, k.Assignments[0].Budget, k.Assignments[1].Budget)
			}

			got = apply(budgetBase + "    assignments:\n      - connection: local\n      - model: m\n")
			if want := `~ key team: ~ model m on local limits "budget=$2/total(UTC)" -> "none"; budget $75/weekly(Asia/Bangkok) -> none`; len(got) != 1 || got[0] != want {
				t.Errorf("remove:\n %q\nwant\n %q", got, want)
			}
			if k = stored(); k.Budget != nil || k.Assignments[1].Budget != nil {
				t.Errorf("removed budgets read %+v and %+v", k.Budget, k.Assignments[1].Budget)
			}

			before := snapshot(t, store)
			for _, c := range []struct{ name, yaml, msg string }{
				{"zero", budgetBase + "    budget: {usd: 0}\n    assignments:\n      - connection: local\n",
					`key "team" budget: budget must be a positive number of US dollars, not 0`},
				{"period", budgetBase + "    assignments:\n      - connection: local\n        budget: {usd: 1, period: yearly}\n",
					`key "team" assignments[0].budget: budget period "yearly": want daily, weekly, monthly or total`},
				{"tz", budgetBase + "    budget: {usd: 1, tz: Nowhere/Land}\n    assignments:\n      - connection: local\n",
					`key "team" budget: budget time zone "Nowhere/Land" is not an IANA time zone name (e.g. UTC, Asia/Bangkok)`},
			} {
				f, err := config.Parse([]byte(c.yaml), getenv)
				must(t, err)
				_, err = config.Apply(ctx, a, f, config.Options{})
				if !errors.Is(err, llmproxy.ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
					t.Errorf("%s: error %v, want ErrInvalid with %q", c.name, err, c.msg)
				}
			}
			if after := snapshot(t, store); after != before {
				t.Errorf("a refused budget changed the configuration")
			}
		})
	}
}

// TestApplyModelPrice: a model's price: block is stored as its override,
// changed, and cleared when the file no longer has it; a bad price is
// refused naming it.
func TestApplyModelPrice(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a := &admin.Service{Storage: store}
			apply := func(yaml string) ([]config.Change, error) {
				t.Helper()
				f, err := config.Parse([]byte(yaml), getenv)
				must(t, err)
				return config.Apply(ctx, a, f, config.Options{})
			}
			price := func() *pricing.Price {
				t.Helper()
				ms, err := a.ListModels(ctx, llmproxy.ListOptions{})
				must(t, err)
				return ms[0].Price
			}
			const base = "connections:\n  - {name: local, provider: compatible, endpoint: http://localhost:8000/v1}\nmodels:\n  - name: m\n    remote: r\n    connection: local\n"
			_, err := apply(base + "    price: {input: 3, output: 15, cached_input: 0.3}\n")
			must(t, err)
			if p := price(); p == nil || *p != (pricing.Price{Input: 3, Output: 15, CachedInput: 0.3}) {
				t.Fatalf("created with price %+v", p)
			}
			cs, err := apply(base + "    price: {input: 4, output: 15, cached_input: 0.3}\n")
			must(t, err)
			if len(cs) != 1 || !strings.Contains(cs[0].String(), "price") || price().Input != 4 {
				t.Errorf("changed: %v, price %+v", cs, price())
			}
			_, err = apply(base)
			must(t, err)
			if p := price(); p != nil {
				t.Errorf("a price the file no longer has: %+v", p)
			}
			if _, err := apply(base + "    price: {input: -1, output: 2}\n"); err == nil || !strings.Contains(err.Error(), "input price") {
				t.Errorf("a negative price: %v", err)
			}
		})
	}
}
