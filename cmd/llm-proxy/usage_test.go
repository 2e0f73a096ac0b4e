package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

func TestUsage(t *testing.T) {
	c := newCLI(t)
	c.guide("http://127.0.0.1:1/v1")
	var keys []struct{ ID, Name string }
	json.Unmarshal([]byte(c.ok("vkey", "list", "--json")), &keys)
	ids := map[string]string{}
	for _, k := range keys {
		ids[k.Name] = k.ID
	}

	// Write ledger records as a gateway would.
	key, err := secret.LoadOrCreateKeyFile(c.env["DB_DSN"] + ".key")
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := secret.NewAESGCM(key)
	s, err := sqlite.Open(context.Background(), c.env["DB_DSN"], sqlite.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	recs := []llmproxy.UsageRecord{
		{ID: "r1", Time: now.Add(-time.Hour), KeyID: ids["Mobile-App"], Model: "gemini-flash", PromptTokens: 10, CompletionTokens: 20, TotalTokens: 30, CacheReadTokens: 6, CacheWriteTokens: 2, Status: 200,
			CostMicros: 12_500_000, CostKnown: true},
		{ID: "r2", Time: now.Add(-time.Minute), KeyID: ids["Mobile-App"], Model: "gemini-flash", PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, CacheReadTokens: 1, Estimated: true, Status: 200,
			CostMicros: 375, CostKnown: true},
		{ID: "r3", Time: now.Add(-72 * time.Hour), KeyID: ids["Tester"], Model: "gemini-flash", PromptTokens: 5, CompletionTokens: 5, TotalTokens: 10, Status: 200},
		{ID: "r4", Time: now.Add(-time.Minute), Model: "gemini-flash", PromptTokens: 7, CompletionTokens: 0, TotalTokens: 7, CacheWriteTokens: 7, Status: 200},
	}
	if err := s.AppendUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	s.Close()

	type sum struct {
		KeyID      string  `json:"key_id"`
		KeyName    string  `json:"key_name"`
		Model      string  `json:"model"`
		Requests   int64   `json:"requests"`
		Prompt     int64   `json:"prompt_tokens"`
		Total      int64   `json:"total_tokens"`
		Estimated  int64   `json:"estimated_tokens"`
		CacheRead  int64   `json:"cache_read_tokens"`
		CacheWrite int64   `json:"cache_write_tokens"`
		CostUSD    float64 `json:"cost_usd"`
		CostMicros int64   `json:"cost_micros"`
		Unknown    int64   `json:"unknown_cost"`
	}
	parse := func(out string) []sum {
		var s []sum
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%v in %s", err, out)
		}
		return s
	}
	if got := parse(c.ok("usage", "--json")); len(got) != 3 {
		t.Fatalf("usage --json: %+v", got)
	}
	got := parse(c.ok("usage", "--key", "Mobile-App", "--since", "24h", "--json"))
	if len(got) != 1 || (got[0] != sum{ids["Mobile-App"], "Mobile-App", "gemini-flash", 2, 11, 33, 3, 7, 2, 12.500375, 12_500_375, 0}) {
		t.Fatalf("usage --key Mobile-App --since 24h: %+v", got)
	}
	if got := parse(c.ok("usage", "--key", ids["Tester"], "--since", "24h", "--json")); len(got) != 0 {
		t.Fatalf("Tester in 24h: %+v", got)
	}
	if got := parse(c.ok("usage", "--model", "other", "--json")); len(got) != 0 {
		t.Fatalf("--model other: %+v", got)
	}
	// The cache counts and the cost are written when zero too, as every
	// count is; a record without a known cost counts as unknown.
	var raw []map[string]any
	json.Unmarshal([]byte(c.ok("usage", "--key", "Tester", "--json")), &raw)
	if len(raw) != 1 || raw[0]["cache_read_tokens"] != 0.0 || raw[0]["cache_write_tokens"] != 0.0 ||
		raw[0]["cost_usd"] != 0.0 || raw[0]["cost_micros"] != 0.0 || raw[0]["unknown_cost"] != 1.0 {
		t.Errorf("usage --key Tester --json: %v, want the cache counts and cost at 0, one unknown cost", raw)
	}

	out := c.ok("usage", "--since", "24h")
	for _, w := range []string{"Mobile-App (" + ids["Mobile-App"] + ")", "(master key)"} {
		if !strings.Contains(out, w) {
			t.Errorf("usage table lacks %q:\n%s", w, out)
		}
	}
	// Every row has its counts under the right heading, the rows in order
	// (master key first, as SumUsage orders them).
	want := []string{
		"KEY MODEL REQUESTS PROMPT CACHE-READ CACHE-WRITE COMPLETION TOTAL ESTIMATED COST UNKNOWN-COST",
		"(master key) gemini-flash 1 7 0 7 0 7 0 $0.00 1",
		"Mobile-App (" + ids["Mobile-App"] + ") gemini-flash 2 11 7 2 22 33 3 $12.500375 0",
		"TOTAL 3 18 7 9 22 40 3 $12.500375 1",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := range max(len(lines), len(want)) {
		var got, w string
		if i < len(lines) {
			got = strings.Join(strings.Fields(lines[i]), " ")
		}
		if i < len(want) {
			w = want[i]
		}
		if got != w {
			t.Errorf("usage table line %d\n got %q\nwant %q\nin:\n%s", i+1, got, w, out)
		}
	}
}

func TestFormatUSD(t *testing.T) {
	for micros, want := range map[int64]string{
		0:              "$0.00",
		1:              "$0.000001",
		375:            "$0.000375",
		10_000:         "$0.01",
		12_500_000:     "$12.50",
		12_500_375:     "$12.500375",
		1_234_000_000:  "$1234.00",
		-1_500_000:     "-$1.50",
		27_000_000_071: "$27000.000071",
	} {
		if got := formatUSD(micros); got != want {
			t.Errorf("formatUSD(%d) = %q, want %q", micros, got, want)
		}
	}
}

// openSQLite opens the CLI's database as a gateway would.
func openSQLite(t *testing.T, c *cli) *sqlite.Store {
	t.Helper()
	key, err := secret.LoadOrCreateKeyFile(c.env["DB_DSN"] + ".key")
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := secret.NewAESGCM(key)
	s, err := sqlite.Open(context.Background(), c.env["DB_DSN"], sqlite.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsageBy(t *testing.T) {
	c := newCLI(t)
	c.ok("migrate")
	s := openSQLite(t, c)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	recs := []llmproxy.UsageRecord{
		{ID: "b1", Time: day.Add(-20 * time.Hour), KeyID: "key_x", Model: "m1", ConnectionID: "conn_a", PromptTokens: 1, TotalTokens: 1, CostMicros: 10, CostKnown: true},
		{ID: "b2", Time: day.Add(-2 * time.Hour), KeyID: "key_x", Model: "m2", ConnectionID: "conn_b", PromptTokens: 2, TotalTokens: 2, CostMicros: 20, CostKnown: true},
		{ID: "b3", Time: day.Add(time.Minute), KeyID: "key_y", Model: "m1", ConnectionID: "conn_a", PromptTokens: 4, TotalTokens: 4},
		{ID: "b4", Time: day.Add(-50 * 24 * time.Hour), KeyID: "key_y", Model: "m1", ConnectionID: "conn_a", PromptTokens: 8, TotalTokens: 8},
	}
	if err := s.AppendUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	type row struct {
		KeyID      *string `json:"key_id"`
		Model      *string `json:"model"`
		Connection *string `json:"connection_id"`
		Day        string  `json:"day"`
		Requests   int64   `json:"requests"`
		Total      int64   `json:"total_tokens"`
		CostMicros int64   `json:"cost_micros"`
		Unknown    int64   `json:"unknown_cost"`
	}
	report := func(args ...string) []row {
		var out []row
		if err := json.Unmarshal([]byte(c.ok(append([]string{"usage", "--json"}, args...)...)), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := report("--by", "day", "--since", "30d")
	d0, d1 := day.AddDate(0, 0, -1).Format(time.DateOnly), day.Format(time.DateOnly)
	if len(got) != 2 || got[0].Day != d0 || got[0].Requests != 2 || got[0].CostMicros != 30 || got[0].KeyID != nil ||
		got[1].Day != d1 || got[1].Requests != 1 || got[1].Unknown != 1 {
		t.Errorf("usage --by day --since 30d: %+v", got)
	}
	got = report("--by", "model", "--by", "connection")
	if len(got) != 2 || *got[0].Model != "m1" || *got[0].Connection != "conn_a" || got[0].Total != 13 || got[0].Day != "" {
		t.Errorf("usage --by model --by connection: %+v", got)
	}
	csvOut := c.ok("usage", "--by", "key,day", "--key", "key_x", "--csv")
	wantCSV := "key_id,key_name,day,requests,prompt_tokens,cache_read_tokens,cache_write_tokens,completion_tokens,total_tokens,estimated_tokens,cost_usd,cost_micros,unknown_cost\n" +
		"key_x,," + d0 + ",2,3,0,0,0,3,0,0.00003,30,0\n"
	if csvOut != wantCSV {
		t.Errorf("usage --csv:\n got %q\nwant %q", csvOut, wantCSV)
	}
	table := c.ok("usage", "--by", "connection")
	if !strings.Contains(table, "CONNECTION") || !strings.Contains(table, "TOTAL") {
		t.Errorf("usage --by connection:\n%s", table)
	}
	if e := c.fail("usage", "--by", "region"); !strings.Contains(e, `--by: unknown dimension "region"`) {
		t.Errorf("usage --by region: %s", e)
	}
	c.fail("usage", "--json", "--csv")

	// Rollups lost (as after an older replica wrote the ledger) come back
	// from the ledger, and the command checks they agree with it.
	if _, err := s.DB().Exec(`DELETE FROM usage_daily`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := report(); len(got) != 0 {
		t.Errorf("usage without rollups: %+v", got)
	}
	out := c.ok("usage", "rebuild-rollups")
	if !strings.Contains(out, "agree with the ledger: 4 requests, 15 tokens, $0.00003 known, 2 of unknown cost") {
		t.Errorf("usage rebuild-rollups: %q", out)
	}
	if got := report("--by", "key"); len(got) != 2 || got[1].Requests != 2 {
		t.Errorf("usage --by key after the rebuild: %+v", got)
	}
}

func TestUsageGenerate(t *testing.T) {
	c := newCLI(t)
	out := c.ok("usage", "generate", "--rows", "5000", "--days", "3", "--batch", "700")
	if !strings.Contains(out, "appended 5000 ledger rows") {
		t.Errorf("usage generate: %q", out)
	}
	var rows []struct {
		Requests    int64 `json:"requests"`
		UnknownCost int64 `json:"unknown_cost"`
	}
	json.Unmarshal([]byte(c.ok("usage", "--by", "day", "--json")), &rows)
	var n, unknown int64
	for _, r := range rows {
		n += r.Requests
		unknown += r.UnknownCost
	}
	if len(rows) < 3 || len(rows) > 4 || n != 5000 || unknown != 500 {
		t.Errorf("usage --by day after generating 5000 rows over 3 days: %+v", rows)
	}
	if out := c.ok("usage", "rebuild-rollups"); !strings.Contains(out, "agree with the ledger: 5000 requests") {
		t.Errorf("usage rebuild-rollups: %q", out)
	}
	c.fail("usage", "generate", "--rows", "0")
}
