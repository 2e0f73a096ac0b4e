package console

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// chat sends one chat completion through the fixture's Gateway with key.
func (f *fixture) chat(key string) int {
	body := `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`
	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.gw.ServeHTTP(rec, req)
	return rec.Code
}

var newSecretRE = regexp.MustCompile(`<code[^>]*data-testid="new-secret"[^>]*>([^<]+)</code>`)

// TestCreateKeyShowsSecretOnce: the new key's secret is on the page that
// created it, works on the gateway at once, and is on no page after.
func TestCreateKeyShowsSecretOnce(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	if p := b.get("/ui/keys/new"); p.status != 200 || !strings.Contains(p.body, `<option value="fake">fake</option>`) {
		t.Fatalf("new key form: %d\n%s", p.status, p.body)
	}
	p := b.postWith("/ui/keys", url.Values{"name": {"team-x"}, "connection": {"fake"}, "models": {"gpt-test"},
		"budget": {"25"}, "budget_period": {"monthly"}, "budget_tz": {"UTC"}, "rpm": {"120"},
		"token_limit": {"100000"}, "token_window": {"1h"}, "expires": {f.clock().AddDate(1, 0, 0).Format("2006-01-02")}}, nil, false)
	if p.status != 200 {
		t.Fatalf("create key: %d %q", p.status, p.alert())
	}
	m := newSecretRE.FindStringSubmatch(p.body)
	if m == nil || !strings.HasPrefix(m[1], "sk-") && len(m[1]) < 20 {
		t.Fatalf("no secret on the created page:\n%s", p.body)
	}
	secret := html.UnescapeString(m[1])
	f.secret(secret)
	if !strings.Contains(p.body, `data-copy="new-secret"`) || !strings.Contains(p.body, ">Copy</button>") {
		t.Error("no Copy button")
	}
	if p.header.Get("Cache-Control") != "no-store" {
		t.Error("the secret's page may be cached")
	}
	keys, _ := f.store.Keys(context.Background(), llmproxy.ListOptions{})
	var k *llmproxy.VirtualKey
	for i := range keys {
		if keys[i].Name == "team-x" {
			k = &keys[i]
		}
	}
	if k == nil {
		t.Fatal("the key was not stored")
	}
	// What vkey add --model-id ID --tps 2 --token-limit 100000
	// --token-window 1h --budget 25 would store.
	if len(k.Assignments) != 1 || k.Assignments[0].ModelID != f.model.ID || k.Assignments[0].TPS != 2 ||
		k.Assignments[0].TokenLimit != 100000 || k.Assignments[0].TokenWindow != time.Hour {
		t.Errorf("assignments %+v", k.Assignments)
	}
	if k.Budget == nil || k.Budget.USD != 25 || k.Budget.Period != "monthly" || k.ExpiresAt.IsZero() {
		t.Errorf("budget %+v, expiry %v", k.Budget, k.ExpiresAt)
	}
	f.eventually("the new key on the gateway", func() bool { return f.chat(secret) == 200 })
	// The secret is never shown again (the final scan checks every page).
	for _, path := range []string{"/ui/keys", "/ui/keys/" + k.ID} {
		if p := b.get(path); p.status != 200 || strings.Contains(p.body, `data-testid="new-secret"`) {
			t.Errorf("%s: %d", path, p.status)
		}
	}
}

func TestCreateKeyValidation(t *testing.T) {
	f := newFixture(t)
	b := f.signedIn(testMaster)
	past := f.clock().AddDate(0, 0, -2).Format("2006-01-02")
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no name", url.Values{"connection": {"fake"}}, "name"},
		{"no connection", url.Values{"name": {"a"}}, "Connection"},
		{"bad rpm", url.Values{"name": {"a"}, "connection": {"fake"}, "rpm": {"fast"}}, "Requests per minute"},
		{"negative tokens", url.Values{"name": {"a"}, "connection": {"fake"}, "token_limit": {"-1"}}, "Tokens per window"},
		{"bad window", url.Values{"name": {"a"}, "connection": {"fake"}, "token_limit": {"5"}, "token_window": {"soon"}}, "Token window"},
		{"window without limit", url.Values{"name": {"a"}, "connection": {"fake"}, "token_window": {"1h"}}, "token window"},
		{"bad budget", url.Values{"name": {"a"}, "connection": {"fake"}, "budget": {"-5"}}, "Budget (USD)"},
		{"bad period", url.Values{"name": {"a"}, "connection": {"fake"}, "budget": {"5"}, "budget_period": {"yearly"}}, "budget period"},
		{"bad zone", url.Values{"name": {"a"}, "connection": {"fake"}, "budget": {"5"}, "budget_tz": {"Mars/Base"}}, "time zone"},
		{"unknown model", url.Values{"name": {"a"}, "connection": {"fake"}, "models": {"nope"}}, "Models"},
		{"unknown connection", url.Values{"name": {"a"}, "connection": {"gone"}}, "connection"},
		{"past expiry", url.Values{"name": {"a"}, "connection": {"fake"}, "expires": {past}}, "expire"},
		{"bad expiry", url.Values{"name": {"a"}, "connection": {"fake"}, "expires": {"tomorrow"}}, "Expires"},
	} {
		p := b.post("/ui/keys", tc.form)
		if p.status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400 (alert %q)", tc.name, p.status, p.alert())
		}
		if a := p.alert(); !strings.Contains(a, tc.field) {
			t.Errorf("%s: alert %q does not name %q", tc.name, a, tc.field)
		}
		// The form comes back as typed.
		if n := tc.form.Get("name"); n != "" && !strings.Contains(p.body, `id="name" name="name" value="`+n+`"`) {
			t.Errorf("%s: the form lost the name", tc.name)
		}
	}
	if keys, _ := f.store.Keys(context.Background(), llmproxy.ListOptions{}); len(keys) != 0 {
		t.Errorf("refused forms stored %d keys", len(keys))
	}
	f.addKey("dup")
	if p := b.post("/ui/keys", url.Values{"name": {"dup"}, "connection": {"fake"}}); p.status != http.StatusConflict || !strings.Contains(p.alert(), "already exists") {
		t.Errorf("a duplicate name: %d %q", p.status, p.alert())
	}
}

func TestKeysListSpendAndSearch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	monthly, _ := f.addKey("alpha-team")
	daily := &llmproxy.VirtualKey{Name: "beta-team", Budget: &llmproxy.Budget{USD: 10, Period: llmproxy.BudgetDaily},
		Assignments: []llmproxy.Assignment{{ModelID: f.model.ID, TPS: 1}}}
	s, err := f.admin.AddKey(ctx, daily, "")
	if err != nil {
		t.Fatal(err)
	}
	f.secret(s)
	now := f.clock()
	dayStart := now.Truncate(24 * time.Hour)
	var recs []llmproxy.UsageRecord
	add := func(k *llmproxy.VirtualKey, at time.Time, micros int64) {
		recs = append(recs, llmproxy.UsageRecord{ID: fmt.Sprint(len(recs)), Time: at, KeyID: k.ID, Model: "gpt-test",
			ConnectionID: f.conn.ID, PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, CostMicros: micros, CostKnown: true, Status: 200})
	}
	add(monthly, dayStart, 1500)
	add(daily, dayStart.Add(time.Minute), 700)
	prev := dayStart.Add(-time.Hour) // yesterday: this month unless today is the 1st
	add(daily, prev, 300)
	add(monthly, prev, 100)
	if err := f.store.AppendUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	b := f.signedIn(testMaster)
	p := b.get("/ui/keys")
	spend := func(id string) string {
		re := regexp.MustCompile(`(?s)<tr data-key-id="` + id + `">.*?data-testid="key-spend" data-value="(\d+)"`)
		m := re.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no spend for %s:\n%s", id, p.body)
		}
		return m[1]
	}
	wantMonthly := "1600"
	if prev.Month() != now.Month() {
		wantMonthly = "1500"
	}
	if got := spend(monthly.ID); got != wantMonthly {
		t.Errorf("monthly key spend %s, want %s (this month)", got, wantMonthly)
	}
	if got := spend(daily.ID); got != "700" {
		t.Errorf("daily-budget key spend %s, want 700 (today)", got)
	}
	if !strings.Contains(p.body, "model gpt-test on fake") || !strings.Contains(p.body, "60 rpm") || !strings.Contains(p.body, "$10.00 daily (UTC)") {
		t.Errorf("scope, limits or budget missing:\n%s", p.body)
	}
	p = b.get("/ui/keys?q=BETA")
	if strings.Contains(p.body, monthly.ID) || !strings.Contains(p.body, daily.ID) {
		t.Error("search by name does not filter")
	}
	p = b.get("/ui/keys?q=" + url.QueryEscape(monthly.Prefix))
	if !strings.Contains(p.body, monthly.ID) {
		t.Error("search by prefix does not find the key")
	}
	// The key page: the daily budget's spent, remaining and reset.
	p = b.get("/ui/keys/" + daily.ID)
	if v, _ := p.dataValue("budget-spent"); v != "700" {
		t.Errorf("budget spent %q, want 700", v)
	}
	if v, _ := p.dataValue("budget-remaining"); v != "9999300" {
		t.Errorf("budget remaining %q, want 9999300", v)
	}
	if !strings.Contains(p.body, dayStart.Add(24*time.Hour).Format("2006-01-02 15:04")) {
		t.Error("the reset time is not shown")
	}
}

func TestVirtualKeySeesOnlyItsOwnKey(t *testing.T) {
	f := newFixture(t)
	own, secret := f.addKey("mine")
	other, _ := f.addKey("theirs")
	b := f.signedIn(secret)
	p := b.get("/ui/")
	for _, hidden := range []string{`href="/ui/keys"`, `href="/ui/connections"`, `href="/ui/models"`} {
		if strings.Contains(p.body, hidden) {
			t.Errorf("a key's nav links %s", hidden)
		}
	}
	for _, shown := range []string{`href="/ui/usage"`, `href="/ui/requests"`, `href="/ui/keys/` + own.ID + `"`, "Sign out"} {
		if !strings.Contains(p.body, shown) {
			t.Errorf("a key's nav lacks %s", shown)
		}
	}
	for _, path := range []string{"/ui/keys", "/ui/keys/new", "/ui/connections", "/ui/connections/" + f.conn.ID, "/ui/models", "/ui/models/" + f.model.ID} {
		if p := b.get(path); p.status != http.StatusForbidden {
			t.Errorf("key session GET %s: %d, want 403", path, p.status)
		}
	}
	for _, path := range []string{"/ui/keys/" + other.ID, "/ui/keys/nonexistent"} {
		if p := b.get(path); p.status != http.StatusNotFound || strings.Contains(p.body, "theirs") {
			t.Errorf("key session GET %s: %d, want 404", path, p.status)
		}
	}
	p = b.get("/ui/keys/" + own.ID)
	if p.status != 200 || strings.Contains(p.body, "Save limits") || strings.Contains(p.body, "Revoke key") {
		t.Errorf("own key page: %d, with edit forms: %v", p.status, strings.Contains(p.body, "Save limits"))
	}
	for _, path := range []string{"/ui/keys/" + own.ID + "/limits", "/ui/keys/" + own.ID + "/revoke", "/ui/keys/" + other.ID + "/revoke", "/ui/keys"} {
		if p := b.post(path, url.Values{"rpm": {"1000"}, "name": {"x"}}); p.status != http.StatusForbidden {
			t.Errorf("key session POST %s: %d, want 403", path, p.status)
		}
	}
	if _, err := f.store.Key(context.Background(), other.ID); err != nil {
		t.Error("a key session revoked another key")
	}
}

func TestEditLimitsAndRevoke(t *testing.T) {
	f := newFixture(t)
	k, secret := f.addKey("team", llmproxy.Assignment{ConnectionID: f.conn.ID, TPS: 1, Burst: 3})
	b := f.signedIn(testMaster)
	p := b.get("/ui/keys/" + k.ID)
	if !strings.Contains(p.body, `id="rpm" name="rpm" inputmode="decimal" value="60"`) {
		t.Errorf("the form is not filled with the key's limits")
	}
	p = b.post("/ui/keys/"+k.ID+"/limits", url.Values{"rpm": {"30"}, "token_limit": {"5000"}, "token_window": {"24h"},
		"budget": {"12.5"}, "budget_period": {"weekly"}, "budget_tz": {"Asia/Bangkok"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("save limits: %d %q", p.status, p.alert())
	}
	got, _ := f.store.Key(context.Background(), k.ID)
	a := got.Assignments[0]
	if a.TPS != 0.5 || a.Burst != 3 || a.TokenLimit != 5000 || a.TokenWindow != 24*time.Hour {
		t.Errorf("limits %+v", a)
	}
	if got.Budget == nil || got.Budget.USD != 12.5 || got.Budget.Period != "weekly" || got.Budget.TZ != "Asia/Bangkok" {
		t.Errorf("budget %+v", got.Budget)
	}
	// Empty fields remove the limits and the budget.
	if p := b.post("/ui/keys/"+k.ID+"/limits", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("clear limits: %d %q", p.status, p.alert())
	}
	got, _ = f.store.Key(context.Background(), k.ID)
	if a := got.Assignments[0]; a.TPS != 0 || a.Burst != 0 || a.TokenLimit != 0 || got.Budget != nil {
		t.Errorf("after clearing: %+v, budget %+v", a, got.Budget)
	}
	p = b.post("/ui/keys/"+k.ID+"/limits", url.Values{"budget": {"lots"}, "rpm": {"7"}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.alert(), "Budget (USD)") || !strings.Contains(p.body, `value="7"`) {
		t.Errorf("a bad budget: %d %q", p.status, p.alert())
	}

	f.eventually("the key on the gateway", func() bool { return f.chat(secret) == 200 })
	p = b.post("/ui/keys/"+k.ID+"/revoke", nil)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/keys" {
		t.Fatalf("revoke: %d %s", p.status, p.header.Get("Location"))
	}
	revoked := time.Now()
	for f.chat(secret) == 200 {
		if time.Since(revoked) > 2*time.Second {
			t.Fatal("the gateway still takes the revoked key after 2 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p := b.get("/ui/keys/" + k.ID); p.status != http.StatusNotFound {
		t.Errorf("the revoked key's page: %d", p.status)
	}
	if p := b.post("/ui/keys/"+k.ID+"/revoke", nil); p.status != http.StatusNotFound {
		t.Errorf("revoking twice: %d, want 404", p.status)
	}
}

// TestKeySessionDataPagesScoped: a key's session reads its own usage on
// the data pages, never another key's.
func TestKeySessionDataPagesScoped(t *testing.T) {
	f := newFixture(t)
	mine, secret := f.addKey("mine-team")
	theirs, _ := f.addKey("their-team")
	now := f.clock()
	var recs []llmproxy.UsageRecord
	for i, k := range []*llmproxy.VirtualKey{mine, theirs, theirs} {
		recs = append(recs, llmproxy.UsageRecord{ID: fmt.Sprint("r", i), Time: now.Add(-time.Minute), KeyID: k.ID, Model: "gpt-test",
			ConnectionID: f.conn.ID, PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, CostMicros: 42, CostKnown: true, Status: 200,
			Latency: 30 * time.Millisecond, Endpoint: llmproxy.EndpointChat})
	}
	if err := f.store.AppendUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	b := f.signedIn(secret)
	for _, path := range []string{"/ui/", "/ui/usage?by=key&range=30d", "/ui/requests", "/ui/usage.csv?by=key&range=30d"} {
		p := b.get(path)
		if p.status != 200 {
			t.Errorf("%s: %d %q", path, p.status, p.alert())
		}
		if strings.Contains(p.body, "their-team") || strings.Contains(p.body, theirs.ID) {
			t.Errorf("%s shows another key's data", path)
		}
	}
	if p := b.get("/ui/usage?by=key&range=30d"); !strings.Contains(p.body, "mine-team") {
		t.Error("the key's usage page does not show its own usage")
	}
}
