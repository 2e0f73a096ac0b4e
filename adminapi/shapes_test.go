package adminapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestKeyBudgets checks the budget object of keys and assignments: set on
// add and assign, answered by every read, replaced and cleared by PATCH,
// and refused with a message naming the bad value.
func TestKeyBudgets(t *testing.T) {
	s := newServer(t, masterKey)
	budgetOf := func(v any) string {
		js, _ := json.Marshal(v)
		return string(js)
	}
	k := s.master("POST", "/admin/v1/keys", map[string]any{
		"name":        "budgeted",
		"budget":      map[string]any{"usd": 12.5, "period": "weekly", "tz": "Asia/Bangkok"},
		"assignments": []any{map[string]any{"connection_id": "fixture", "budget": map[string]any{"usd": 0.25}}},
	}, 201)
	id := k.str("id")
	want := `{"period":"weekly","tz":"Asia/Bangkok","usd":12.5}`
	wantAsg := `{"period":"monthly","usd":0.25}` // period defaults to monthly; tz absent is UTC
	check := func(what string, a answer, key, asg string) {
		t.Helper()
		var got string
		if as, _ := a.js["assignments"].([]any); len(as) > 0 {
			got = budgetOf(as[0].(map[string]any)["budget"])
		}
		if b := budgetOf(a.js["budget"]); b != key || got != asg {
			t.Errorf("%s: budgets %s and %s, want %s and %s", what, b, got, key, asg)
		}
	}
	check("POST /keys", k, want, wantAsg)
	check("GET /keys/{id}", s.master("GET", "/admin/v1/keys/"+id, nil, 200), want, wantAsg)
	for _, v := range s.master("GET", "/admin/v1/keys", nil, 200).data() {
		if m := v.(map[string]any); m["id"] == id {
			check("GET /keys", answer{js: m}, want, wantAsg)
		}
	}

	k = s.master("PATCH", "/admin/v1/keys/"+id, map[string]any{"budget": map[string]any{"usd": 100, "period": "total"}}, 200)
	check("PATCH budget", k, `{"period":"total","usd":100}`, wantAsg)
	k = s.master("PATCH", "/admin/v1/keys/"+id, map[string]any{"clear_budget": true}, 200)
	check("PATCH clear_budget", k, "null", wantAsg)
	k = s.master("PATCH", "/admin/v1/keys/"+id, map[string]any{"connection_id": "fixture", "budget": map[string]any{"usd": 3, "period": "daily", "tz": "UTC"}}, 200)
	check("PATCH an assignment's budget", k, "null", `{"period":"daily","tz":"UTC","usd":3}`)
	k = s.master("PATCH", "/admin/v1/keys/"+id, map[string]any{"connection_id": "fixture", "clear_budget": true}, 200)
	check("PATCH clear an assignment's budget", k, "null", "null")
	if strings.Contains(k.raw, `"budget":null`) {
		t.Errorf("a key without a budget is answered with budget null, want it absent: %s", k.raw)
	}

	for _, c := range []struct {
		name, method, path string
		body               any
		msg                string
	}{
		{"zero", "POST", "/admin/v1/keys", map[string]any{"name": "z", "budget": map[string]any{"usd": 0}, "assignments": []any{map[string]any{"connection_id": "fixture"}}}, "budget must be a positive"},
		{"negative", "PATCH", "/admin/v1/keys/" + id, map[string]any{"budget": map[string]any{"usd": -1}}, "-1"},
		{"period", "PATCH", "/admin/v1/keys/" + id, map[string]any{"budget": map[string]any{"usd": 1, "period": "yearly"}}, `budget period \"yearly\"`},
		{"tz", "POST", "/admin/v1/keys/" + id + "/assignments", map[string]any{"connection_id": "fixture", "budget": map[string]any{"usd": 1, "tz": "Mars/Olympus"}}, `budget time zone \"Mars/Olympus\"`},
		{"both", "PATCH", "/admin/v1/keys/" + id, map[string]any{"budget": map[string]any{"usd": 1}, "clear_budget": true}, "not both"},
		{"unknown field", "PATCH", "/admin/v1/keys/" + id, map[string]any{"budget": map[string]any{"dollars": 1}}, "dollars"},
	} {
		a := s.master(c.method, c.path, c.body, 400)
		if !strings.Contains(a.raw, c.msg) {
			t.Errorf("%s: error %s, want it to mention %s", c.name, a.raw, c.msg)
		}
	}
}
