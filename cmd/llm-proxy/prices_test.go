package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/pricing"
)

// TestPrices lists models priced from the table, unknown to it, and
// filtered by alias, through the real binary.
func TestPrices(t *testing.T) {
	c := newCLI(t)
	connID, _ := c.guide("http://127.0.0.1:1/v1")
	c.ok("model", "add", "--name", "gemini-pro", "--remote", "models/gemini-2.5-pro", "--conn-id", connID, "-q")
	c.ok("model", "add", "--name", "mystery", "--remote", "gemini-9-ultra", "--conn-id", connID, "-q")

	var ps []modelPrice
	if err := json.Unmarshal([]byte(c.ok("prices", "--json")), &ps); err != nil {
		t.Fatal(err)
	}
	got := map[string]modelPrice{}
	for _, p := range ps {
		got[p.Name] = p
	}
	pro := got["gemini-pro"]
	if pro.From != "table" || pro.Price == nil || pro.Price.Input != 1.25 || pro.Source == nil ||
		pro.Source.Entry != "gemini-2.5-pro" || pro.Source.Match != "models-prefix" || pro.Source.URL == "" {
		t.Errorf("gemini-pro: %+v (source %+v)", pro, pro.Source)
	}
	if m := got["mystery"]; m.From != "unknown" || m.Price != nil {
		t.Errorf("mystery: %+v", m)
	}

	out := c.ok("prices", "--model", "gemini-pro")
	for _, want := range []string{"gemini-pro", "$1.25", "$10", "table gemini-2.5-pro", "models-prefix"} {
		if !strings.Contains(out, want) {
			t.Errorf("prices --model printed no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "mystery") {
		t.Errorf("prices --model listed another alias:\n%s", out)
	}
	if out := c.ok("prices"); !strings.Contains(out, "unknown") {
		t.Errorf("prices shows no unknown price:\n%s", out)
	}
	if out := c.fail("prices", "--model", "nope"); !strings.Contains(out, `"nope"`) {
		t.Errorf("unknown alias: %s", out)
	}

	// An override set with model add/update wins over the table, and
	// --clear-price returns the model to the table.
	id := strings.TrimSpace(c.ok("model", "add", "--name", "own", "--remote", "gemini-9-ultra", "--conn-id", connID,
		"--input-price", "4", "--output-price", "20", "-q"))
	c.ok("model", "update", id, "--cached-input-price", "0.4")
	json.Unmarshal([]byte(c.ok("prices", "--model", "own", "--json")), &ps)
	if len(ps) != 1 || ps[0].From != "override" || ps[0].Price == nil || *ps[0].Price != (pricing.Price{Input: 4, Output: 20, CachedInput: 0.4}) {
		t.Errorf("override: %+v", ps)
	}
	if out := c.fail("model", "add", "--name", "half", "--remote", "x", "--conn-id", connID, "--input-price", "1"); !strings.Contains(out, "--output-price") {
		t.Errorf("an input price alone: %s", out)
	}
	if out := c.fail("model", "update", id, "--input-price", "-1"); !strings.Contains(out, "input price") {
		t.Errorf("a negative price: %s", out)
	}
	c.ok("model", "update", id, "--clear-price")
	json.Unmarshal([]byte(c.ok("prices", "--model", "own", "--json")), &ps)
	if len(ps) != 1 || ps[0].From != "unknown" {
		t.Errorf("after --clear-price: %+v", ps)
	}
}
