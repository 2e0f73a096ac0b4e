package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestVKeyBudget checks the budget flags of vkey add, assign and update,
// what show, list and --json print of budgets, and the errors of bad
// budgets, which name the flag's value and change nothing.
func TestVKeyBudget(t *testing.T) {
	c := newCLI(t)
	connID, modelID := c.guide("http://127.0.0.1:1/v1")
	keyJSON := func(args ...string) map[string]any {
		t.Helper()
		var k map[string]any
		if err := json.Unmarshal([]byte(c.ok(args...)), &k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	budgetOf := func(v any) string { js, _ := json.Marshal(v); return string(js) }

	k := keyJSON("vkey", "add", "--name", "team", "--conn-id", connID, "--budget", "50", "--budget-tz", "Asia/Bangkok", "--json")
	if got := budgetOf(k["budget"]); got != `{"period":"monthly","tz":"Asia/Bangkok","usd":50}` {
		t.Errorf("add --budget: budget %s", got)
	}
	id := k["id"].(string)
	out := c.ok("vkey", "show", "team")
	if !strings.Contains(out, "Budget:") || !strings.Contains(out, "$50/monthly(Asia/Bangkok)") {
		t.Errorf("show printed no budget:\n%s", out)
	}
	if out := c.ok("vkey", "list"); !strings.Contains(out, "BUDGET") || !strings.Contains(out, "$50/monthly(Asia/Bangkok)") {
		t.Errorf("list printed no budget:\n%s", out)
	}

	k = keyJSON("vkey", "assign", id, "--model-id", modelID, "--budget", "0.5", "--budget-period", "daily", "--json")
	as := k["assignments"].([]any)
	if len(as) != 2 || budgetOf(as[0].(map[string]any)["budget"]) != "null" ||
		budgetOf(as[1].(map[string]any)["budget"]) != `{"period":"daily","tz":"UTC","usd":0.5}` {
		t.Errorf("assign --budget: assignments %s", budgetOf(as))
	}
	if out := c.ok("vkey", "show", id); !strings.Contains(out, "budget=$0.5/daily(UTC)") {
		t.Errorf("show printed no assignment budget:\n%s", out)
	}

	k = keyJSON("vkey", "update", id, "--budget", "7.25", "--budget-period", "total", "--json")
	if got := budgetOf(k["budget"]); got != `{"period":"total","tz":"UTC","usd":7.25}` {
		t.Errorf("update --budget: budget %s", got)
	}
	k = keyJSON("vkey", "update", id, "--clear-budget", "--json")
	if _, ok := k["budget"]; ok {
		t.Errorf("update --clear-budget: budget %s", budgetOf(k["budget"]))
	}
	if out := c.ok("vkey", "show", id); strings.Contains(out, "Budget:") {
		t.Errorf("show printed a cleared budget:\n%s", out)
	}
	// With --model-id, the assignment's budget changes, not the key's.
	k = keyJSON("vkey", "update", id, "--model-id", modelID, "--budget", "9", "--budget-period", "weekly", "--json")
	as = k["assignments"].([]any)
	if _, ok := k["budget"]; ok || budgetOf(as[1].(map[string]any)["budget"]) != `{"period":"weekly","tz":"UTC","usd":9}` {
		t.Errorf("update --model-id --budget: key budget %s, assignments %s", budgetOf(k["budget"]), budgetOf(as))
	}
	k = keyJSON("vkey", "update", id, "--model-id", modelID, "--clear-budget", "--json")
	if as = k["assignments"].([]any); budgetOf(as[1].(map[string]any)["budget"]) != "null" {
		t.Errorf("update --model-id --clear-budget: assignments %s", budgetOf(as))
	}

	before := c.ok("vkey", "list", "--json")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"zero", []string{"vkey", "update", id, "--budget", "0"}, "budget must be a positive number of US dollars, not 0"},
		{"negative", []string{"vkey", "add", "--name", "x", "--conn-id", connID, "--budget", "-5"}, "budget must be a positive number of US dollars, not -5"},
		{"infinite", []string{"vkey", "update", id, "--budget", "Inf"}, "budget must be a positive number of US dollars, not +Inf"},
		{"period", []string{"vkey", "update", id, "--budget", "5", "--budget-period", "yearly"}, `budget period "yearly": want daily, weekly, monthly or total`},
		{"tz", []string{"vkey", "assign", id, "--conn-id", "nope", "--budget", "5", "--budget-tz", "Mars/Olympus"}, `budget time zone "Mars/Olympus" is not an IANA time zone name (e.g. UTC, Asia/Bangkok)`},
		{"local tz", []string{"vkey", "update", id, "--budget", "5", "--budget-tz", "Local"}, `budget time zone "Local" is not an IANA time zone name (e.g. UTC, Asia/Bangkok)`},
		{"period alone", []string{"vkey", "update", id, "--budget-period", "daily"}, "--budget-period needs --budget"},
		{"tz alone", []string{"vkey", "add", "--name", "x", "--conn-id", connID, "--budget-tz", "UTC"}, "--budget-tz needs --budget"},
		{"set and clear", []string{"vkey", "update", id, "--budget", "5", "--clear-budget"}, "if any flags in the group [budget clear-budget] are set none of the others can be; [budget clear-budget] were all set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			if got := c.fail(tt.args...); got != "llm-proxy: "+tt.want {
				t.Errorf("stderr:\n  %s\nwant:\n  llm-proxy: %s", got, tt.want)
			}
		})
	}
	c.t = t
	if after := c.ok("vkey", "list", "--json"); after != before {
		t.Errorf("a refused budget changed the keys:\n%s\nthen:\n%s", before, after)
	}
}
