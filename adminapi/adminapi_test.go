package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/adminapi"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const (
	masterKey   = "master-secret-key"
	virtualKey  = "sk-virtual-key-1"
	upstreamKey = "sk-real-upstream-secret"
	googleKey   = "AIza-google-secret"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// server is the admin API and a Gateway on one listener, over one store,
// as llm-proxy serve mounts them.
type server struct {
	t     *testing.T
	url   string
	store llmproxy.Storage
	fake  *fakeopenai.Server
	// secrets must never appear in an answer.
	secrets []string
}

func newServer(t *testing.T, master string) *server {
	s := &server{t: t, store: memory.New(), fake: fakeopenai.New(t, upstreamKey), secrets: []string{upstreamKey, googleKey, virtualKey}}
	ctx := context.Background()
	// A virtual key that exists, for the 403 checks.
	conn := &llmproxy.Connection{Name: "fixture", Provider: llmproxy.KindCompatible, Endpoint: s.fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, s.store.CreateConnection(ctx, conn))
	must(t, s.store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "fixture-key", Hash: llmproxy.HashKey(virtualKey), Prefix: llmproxy.KeyPrefix(virtualKey),
		Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}))
	gw, err := llmproxy.New(llmproxy.Config{
		Storage:      s.store,
		Providers:    map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
		MasterKey:    master,
		PollInterval: 20 * time.Millisecond,
	})
	must(t, err)
	mux := http.NewServeMux()
	mux.Handle("/admin/v1/", adminapi.New(adminapi.Config{
		Admin:     &admin.Service{Storage: s.store, Kinds: []string{llmproxy.KindOpenAI, llmproxy.KindGoogle, llmproxy.KindCompatible}},
		MasterKey: master,
	}))
	mux.Handle("/", gw)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	s.url = srv.URL
	return s
}

// answer is a decoded JSON answer.
type answer struct {
	status int
	header http.Header
	raw    string
	js     map[string]any
}

// do sends body (a string as it is, anything else as JSON) with key.
func (s *server) do(method, path, key string, body any) answer {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		must(s.t, err)
		r = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	must(s.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	must(s.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if err := json.Unmarshal(raw, &a.js); err != nil {
		s.t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
	}
	for _, secret := range s.secrets {
		if strings.Contains(a.raw, secret) {
			s.t.Errorf("%s %s: the answer contains the secret %q", method, path, secret)
		}
	}
	if a.status >= 400 {
		e, _ := a.js["error"].(map[string]any)
		for _, f := range []string{"message", "type", "param", "code"} {
			if _, ok := e[f]; !ok {
				s.t.Errorf("%s %s: error answer lacks error.%s: %s", method, path, f, raw)
			}
		}
	}
	return a
}

// master sends with the master key and checks the status.
func (s *server) master(method, path string, body any, want int) answer {
	s.t.Helper()
	a := s.do(method, path, masterKey, body)
	if a.status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, a.status, want, a.raw)
	}
	return a
}

func (a answer) str(k string) string { v, _ := a.js[k].(string); return v }

func (a answer) errCode() string {
	e, _ := a.js["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a answer) errType() string {
	e, _ := a.js["error"].(map[string]any)
	c, _ := e["type"].(string)
	return c
}

func (a answer) data() []any { d, _ := a.js["data"].([]any); return d }

// routes are every operation of the API, as the OpenAPI document lists
// them.
var routes = []struct{ method, path string }{
	{"GET", "/admin/v1/connections"},
	{"POST", "/admin/v1/connections"},
	{"GET", "/admin/v1/connections/{id}"},
	{"PATCH", "/admin/v1/connections/{id}"},
	{"DELETE", "/admin/v1/connections/{id}"},
	{"GET", "/admin/v1/models"},
	{"POST", "/admin/v1/models"},
	{"GET", "/admin/v1/models/{id}"},
	{"PATCH", "/admin/v1/models/{id}"},
	{"DELETE", "/admin/v1/models/{id}"},
	{"GET", "/admin/v1/keys"},
	{"POST", "/admin/v1/keys"},
	{"GET", "/admin/v1/keys/{id}"},
	{"PATCH", "/admin/v1/keys/{id}"},
	{"DELETE", "/admin/v1/keys/{id}"},
	{"POST", "/admin/v1/keys/{id}/assignments"},
	{"DELETE", "/admin/v1/keys/{id}/assignments"},
	{"GET", "/admin/v1/usage"},
	{"GET", "/admin/v1/openapi.json"},
}

func TestAuthorization(t *testing.T) {
	s := newServer(t, masterKey)
	for _, r := range routes {
		path := strings.ReplaceAll(r.path, "{id}", "fixture")
		for _, c := range []struct {
			name, key string
			status    int
			code      string
		}{
			{"no key", "", 401, "invalid_api_key"},
			{"unknown key", "sk-not-a-key-at-all", 401, "invalid_api_key"},
			{"virtual key", virtualKey, 403, "master_key_required"},
		} {
			a := s.do(r.method, path, c.key, `{}`)
			if a.status != c.status || a.errCode() != c.code {
				t.Errorf("%s %s with %s: %d %s, want %d %s", r.method, path, c.name, a.status, a.errCode(), c.status, c.code)
			}
		}
		// The master key gets past authorization (the answer may still
		// be a 400 or 404 for this made-up input, never 401/403).
		if a := s.do(r.method, path, masterKey, `{}`); a.status == 401 || a.status == 403 {
			t.Errorf("%s %s with the master key: %d", r.method, path, a.status)
		}
	}
	// A Basic or malformed Authorization header is no key.
	req, _ := http.NewRequest("GET", s.url+"/admin/v1/keys", nil)
	req.SetBasicAuth("admin", masterKey)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Basic auth: %d, want 401", resp.StatusCode)
	}
}

func TestDisabledWithoutMasterKey(t *testing.T) {
	s := newServer(t, "")
	for _, key := range []string{"", virtualKey, "anything"} {
		if a := s.do("GET", "/admin/v1/keys", key, nil); a.status != 403 || a.errCode() != "admin_api_disabled" {
			t.Errorf("key %q: %d %s", key, a.status, a.raw)
		}
	}
}

func TestOperations(t *testing.T) {
	s := newServer(t, masterKey)

	// ---- connections ----
	c := s.master("POST", "/admin/v1/connections", map[string]any{"name": "google-ai", "provider": "google", "api_key": googleKey}, 201)
	connID := c.str("id")
	if c.str("endpoint") != admin.DefaultGoogleEndpoint || c.str("name") != "google-ai" || !strings.HasPrefix(connID, "conn") {
		t.Errorf("added connection: %s", c.raw)
	}
	if creds, _ := c.js["credentials"].([]any); len(creds) != 1 || creds[0] != "api_key" {
		t.Errorf("credentials: %v", c.js["credentials"])
	}
	stored, err := s.store.Connection(context.Background(), connID)
	must(t, err)
	if stored.Credentials.APIKey != googleKey {
		t.Errorf("stored API key %q", stored.Credentials.APIKey)
	}
	up := s.master("POST", "/admin/v1/connections", map[string]any{"name": "upstream", "provider": "compatible", "endpoint": s.fake.BaseURL(), "api_key": upstreamKey}, 201)

	for _, c := range []struct {
		name   string
		body   any
		status int
		param  string
		code   string
	}{
		{"duplicate", map[string]any{"name": "google-ai", "provider": "google", "api_key": "x"}, 409, "", "already_exists"},
		{"no api key", map[string]any{"name": "o", "provider": "openai"}, 400, "", ""},
		{"unknown kind", map[string]any{"name": "o", "provider": "nope", "api_key": "x"}, 400, "", ""},
		{"bad endpoint", map[string]any{"name": "o", "provider": "compatible", "endpoint": "ftp://x"}, 400, "", ""},
		{"no name", map[string]any{"provider": "openai", "api_key": "x"}, 400, "", ""},
		{"unknown field", map[string]any{"name": "o", "provider": "openai", "apikey": "x"}, 400, "apikey", ""},
		{"wrong type", map[string]any{"name": 5, "provider": "openai"}, 400, "name", ""},
		{"not JSON", `{"name":`, 400, "", ""},
		{"empty body", ``, 400, "", ""},
		{"two values", `{} {}`, 400, "", ""},
	} {
		a := s.do("POST", "/admin/v1/connections", masterKey, c.body)
		e, _ := a.js["error"].(map[string]any)
		if a.status != c.status || (c.param != "" && e["param"] != c.param) || (c.code != "" && a.errCode() != c.code) {
			t.Errorf("add connection, %s: %d %s", c.name, a.status, a.raw)
		}
		if a.status == 400 && a.errType() != llmproxy.TypeInvalidRequest {
			t.Errorf("add connection, %s: type %s", c.name, a.errType())
		}
	}
	if got := len(s.master("GET", "/admin/v1/connections", nil, 200).data()); got != 3 {
		t.Errorf("%d connections, want 3", got)
	}
	if got := s.master("GET", "/admin/v1/connections?limit=1", nil, 200).data(); len(got) != 1 {
		t.Errorf("limit=1: %d", len(got))
	}
	s.master("GET", "/admin/v1/connections?limit=x", nil, 400)
	if a := s.master("GET", "/admin/v1/connections/google-ai", nil, 200); a.str("id") != connID {
		t.Errorf("by name: %s", a.raw)
	}
	s.master("GET", "/admin/v1/connections/"+connID, nil, 200)
	s.master("GET", "/admin/v1/connections/nope", nil, 404)

	// ---- models ----
	m := s.master("POST", "/admin/v1/models", map[string]any{"name": "gemini-flash", "remote": "gemini-1.5-flash", "connection_id": "google-ai"}, 201)
	modelID := m.str("id")
	if m.str("connection_id") != connID {
		t.Errorf("model's connection: %s", m.raw)
	}
	upModel := s.master("POST", "/admin/v1/models", map[string]any{"name": "gpt-alias", "remote": "remote-1", "connection_id": up.str("id")}, 201)
	s.master("POST", "/admin/v1/models", map[string]any{"name": "gemini-flash", "remote": "x", "connection_id": connID}, 409)
	s.master("POST", "/admin/v1/models", map[string]any{"name": "m", "connection_id": connID}, 400)
	s.master("POST", "/admin/v1/models", map[string]any{"name": "m", "remote": "r", "connection_id": "nope"}, 404)
	s.master("POST", "/admin/v1/models", map[string]any{"name": "m", "remote": "r", "connection_id": connID, "weight": -1}, 400)
	if got := len(s.master("GET", "/admin/v1/models", nil, 200).data()); got != 2 {
		t.Errorf("%d models", got)
	}
	s.master("GET", "/admin/v1/models/"+modelID, nil, 200)
	s.master("GET", "/admin/v1/models/nope", nil, 404)

	// ---- keys ----
	k := s.master("POST", "/admin/v1/keys", map[string]any{"name": "Mobile-App", "key": "sk-proxy-123",
		"assignments": []any{map[string]any{"connection_id": "upstream"}}}, 201)
	s.secrets = append(s.secrets, "sk-proxy-123")
	keyID := k.str("id")
	if k.str("key") != "" || k.str("prefix") != llmproxy.KeyPrefix("sk-proxy-123") {
		t.Errorf("a given secret is not answered back: %s", k.raw)
	}
	gen := s.master("POST", "/admin/v1/keys", map[string]any{"name": "Tester", "assignments": []any{map[string]any{"model_id": modelID, "tps": 2, "token_limit": 1000, "token_window": "30d"}}}, 201)
	if !strings.HasPrefix(gen.str("key"), "sk-") {
		t.Errorf("a generated secret is answered once: %s", gen.raw)
	}
	if as := gen.js["assignments"].([]any)[0].(map[string]any); as["token_window"] != "30d" || as["tps"] != 2.0 {
		t.Errorf("assignment: %v", as)
	}
	if a := s.master("GET", "/admin/v1/keys/Tester", nil, 200); a.str("key") != "" {
		t.Errorf("a listing shows the secret: %s", a.raw)
	}
	for _, c := range []struct {
		name   string
		body   any
		status int
	}{
		{"duplicate name", map[string]any{"name": "Mobile-App", "assignments": []any{map[string]any{"connection_id": connID}}}, 409},
		{"duplicate secret", map[string]any{"name": "Other", "key": "sk-proxy-123", "assignments": []any{map[string]any{"connection_id": connID}}}, 409},
		{"short secret", map[string]any{"name": "Other", "key": "short", "assignments": []any{map[string]any{"connection_id": connID}}}, 400},
		{"missing model", map[string]any{"name": "Other", "assignments": []any{map[string]any{"model_id": "model_nope"}}}, 404},
		{"both targets", map[string]any{"name": "Other", "assignments": []any{map[string]any{"model_id": modelID, "connection_id": connID}}}, 400},
		{"bad window", map[string]any{"name": "Other", "assignments": []any{map[string]any{"connection_id": connID, "token_limit": 5, "token_window": "soon"}}}, 400},
		{"negative tps", map[string]any{"name": "Other", "assignments": []any{map[string]any{"connection_id": connID, "tps": -1}}}, 400},
		{"expired", map[string]any{"name": "Other", "expires_at": "2001-01-01T00:00:00Z", "assignments": []any{map[string]any{"connection_id": connID}}}, 400},
	} {
		if a := s.do("POST", "/admin/v1/keys", masterKey, c.body); a.status != c.status {
			t.Errorf("add key, %s: %d %s", c.name, a.status, a.raw)
		}
	}
	if got := len(s.master("GET", "/admin/v1/keys", nil, 200).data()); got != 3 {
		t.Errorf("%d keys", got)
	}
	s.master("GET", "/admin/v1/keys/"+keyID, nil, 200)
	s.master("GET", "/admin/v1/keys/nope", nil, 404)

	// The new key works through the running gateway, without a restart.
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequest("POST", s.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-alias","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer sk-proxy-123")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key added by the API does not work: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// update
	u := s.master("PATCH", "/admin/v1/keys/Mobile-App", map[string]any{"tps": 5, "token_limit": 1000, "token_window": "24h", "expires_at": "2999-01-01T00:00:00Z"}, 200)
	as := u.js["assignments"].([]any)[0].(map[string]any)
	if as["tps"] != 5.0 || as["token_limit"] != 1000.0 || as["token_window"] != "24h" || u.str("expires_at") != "2999-01-01T00:00:00Z" {
		t.Errorf("updated: %s", u.raw)
	}
	if u = s.master("PATCH", "/admin/v1/keys/"+keyID, map[string]any{"expires_at": "", "tps": 0}, 200); u.js["expires_at"] != nil {
		t.Errorf("expiry not removed: %s", u.raw)
	} else if as := u.js["assignments"].([]any)[0].(map[string]any); as["tps"] != nil || as["token_limit"] != 1000.0 {
		t.Errorf("tps 0 removes only that limit: %v", as)
	}
	s.master("PATCH", "/admin/v1/keys/Mobile-App", map[string]any{}, 400)
	s.master("PATCH", "/admin/v1/keys/Mobile-App", map[string]any{"expires_at": "yesterday"}, 400)
	s.master("PATCH", "/admin/v1/keys/Mobile-App", map[string]any{"burst": 3, "tps": 0}, 400)
	s.master("PATCH", "/admin/v1/keys/Mobile-App", map[string]any{"tps": 1, "model_id": modelID}, 404)
	s.master("PATCH", "/admin/v1/keys/nope", map[string]any{"tps": 1}, 404)

	// assign, unassign
	a := s.master("POST", "/admin/v1/keys/Mobile-App/assignments", map[string]any{"model_id": modelID, "tps": 1}, 200)
	if n := len(a.js["assignments"].([]any)); n != 2 {
		t.Errorf("%d assignments after assign", n)
	}
	s.master("POST", "/admin/v1/keys/Mobile-App/assignments", map[string]any{"model_id": modelID}, 409)
	s.master("POST", "/admin/v1/keys/Mobile-App/assignments", map[string]any{"model_id": "nope"}, 404)
	s.master("POST", "/admin/v1/keys/Mobile-App/assignments", map[string]any{}, 400)
	s.master("POST", "/admin/v1/keys/Mobile-App/assignments", map[string]any{"id": "x", "model_id": modelID}, 400)
	s.master("POST", "/admin/v1/keys/nope/assignments", map[string]any{"model_id": modelID}, 404)

	// in use
	if a := s.master("DELETE", "/admin/v1/connections/google-ai", nil, 409); a.errCode() != "in_use" {
		t.Errorf("delete connection in use: %s", a.raw)
	}
	if a := s.master("DELETE", "/admin/v1/models/"+modelID, nil, 409); !strings.Contains(a.raw, "Mobile-App") {
		t.Errorf("delete model in use names the keys: %s", a.raw)
	}

	a = s.master("DELETE", "/admin/v1/keys/Mobile-App/assignments?model_id="+modelID, nil, 200)
	if n := len(a.js["assignments"].([]any)); n != 1 {
		t.Errorf("%d assignments after unassign", n)
	}
	s.master("DELETE", "/admin/v1/keys/Mobile-App/assignments?model_id="+modelID, nil, 404)
	s.master("DELETE", "/admin/v1/keys/Mobile-App/assignments", nil, 400)
	s.master("DELETE", "/admin/v1/keys/Mobile-App/assignments?model_id=a&connection_id=b", nil, 400)

	// ---- usage ----
	s.store.AppendUsage(context.Background(), []llmproxy.UsageRecord{
		{ID: "use_1", Time: time.Now(), KeyID: keyID, Model: "gpt-alias", PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, CacheReadTokens: 2, CacheWriteTokens: 1, Status: 200, Endpoint: "chat",
			CostMicros: 2_500_375, CostKnown: true},
		{ID: "use_2", Time: time.Now(), KeyID: gen.str("id"), Model: "gemini-flash", PromptTokens: 1, TotalTokens: 1, Status: 200, Endpoint: "chat"},
	})
	us := s.master("GET", "/admin/v1/usage?key_id=Mobile-App&since=2020-01-01", nil, 200).data()
	if len(us) != 1 {
		t.Fatalf("usage: %v", us)
	}
	// The request through the gateway above was recorded too (after its
	// flush), so count at least the appended record.
	if row := us[0].(map[string]any); row["key_name"] != "Mobile-App" || row["model"] != "gpt-alias" || row["prompt_tokens"].(float64) < 3 ||
		row["cache_read_tokens"] != 2.0 || row["cache_write_tokens"] != 1.0 {
		t.Errorf("usage row: %v", row)
	}
	// The cost in micro-dollars and in dollars agree (the gateway's own
	// request may add a cost of its own, or an unknown one).
	if row := us[0].(map[string]any); row["cost_micros"].(float64) < 2_500_375 || row["cost_usd"] != row["cost_micros"].(float64)/1e6 {
		t.Errorf("usage row cost: %v", row)
	}
	// The cache counts and the cost are there when zero too, as the
	// OpenAPI document says they always are; a record without a known
	// cost counts as unknown.
	if us := s.master("GET", "/admin/v1/usage?model=gemini-flash", nil, 200).data(); len(us) != 1 {
		t.Errorf("usage by model: %d rows", len(us))
	} else if row := us[0].(map[string]any); row["cache_read_tokens"] != 0.0 || row["cache_write_tokens"] != 0.0 ||
		row["cost_usd"] != 0.0 || row["cost_micros"] != 0.0 || row["unknown_cost"] != 1.0 {
		t.Errorf("usage row without cache or cost: %v", row)
	}
	// Grouped by day (UTC) and connection: the dimensions not grouped by
	// are left out; an unknown dimension is refused naming by.
	today := time.Now().UTC().Format(time.DateOnly)
	if us := s.master("GET", "/admin/v1/usage?by=day&by=connection&since="+today, nil, 200).data(); len(us) == 0 {
		t.Errorf("usage by day and connection: no rows")
	} else if row := us[0].(map[string]any); row["day"] != today || row["connection_id"] == nil || row["key_id"] != nil || row["model"] != nil {
		t.Errorf("usage row by day and connection: %v", row)
	}
	if us := s.master("GET", "/admin/v1/usage?by=key,model,day&key_id=Mobile-App", nil, 200).data(); len(us) != 1 ||
		us[0].(map[string]any)["day"] != today || us[0].(map[string]any)["model"] != "gpt-alias" {
		t.Errorf("usage by key, model and day: %v", us)
	}
	s.master("GET", "/admin/v1/usage?by=region", nil, 400)
	s.master("GET", "/admin/v1/usage?since=tomorrow", nil, 400)
	s.master("GET", "/admin/v1/usage?since=2026-02-01&until=2026-01-01", nil, 400)

	// ---- deletes ----
	d := s.master("DELETE", "/admin/v1/keys/Tester", nil, 200)
	if d.str("name") != "Tester" {
		t.Errorf("deleted: %s", d.raw)
	}
	s.master("DELETE", "/admin/v1/keys/Tester", nil, 404)
	s.master("DELETE", "/admin/v1/models/"+modelID, nil, 200)
	s.master("DELETE", "/admin/v1/models/"+modelID, nil, 404)
	s.master("DELETE", "/admin/v1/connections/google-ai", nil, 200)
	s.master("GET", "/admin/v1/connections/google-ai", nil, 404)
	_ = upModel

	// ---- routing errors, in JSON ----
	if a := s.master("PUT", "/admin/v1/keys", `{}`, 405); a.header.Get("Allow") != "GET, POST" {
		t.Errorf("405 Allow: %q", a.header.Get("Allow"))
	}
	if a := s.master("GET", "/admin/v1/nothing-here", nil, 404); a.errCode() != "unknown_url" {
		t.Errorf("unknown path: %s", a.raw)
	}
}

// TestUpdates changes connections and models with PATCH, checks the
// refusals, and that the running gateway uses the changes.
func TestUpdates(t *testing.T) {
	s := newServer(t, masterKey)
	const wrongKey = "sk-wrong-upstream-secret"
	s.secrets = append(s.secrets, wrongKey)
	s.master("POST", "/admin/v1/connections", map[string]any{"name": "google-ai", "provider": "google", "api_key": googleKey}, 201)
	m := s.master("POST", "/admin/v1/models", map[string]any{"name": "gpt-alias", "remote": "remote-1", "connection_id": "fixture"}, 201)
	modelID := m.str("id")
	s.master("POST", "/admin/v1/models", map[string]any{"name": "other-alias", "remote": "remote-1", "connection_id": "fixture"}, 201)

	// chat answers the status of a call through the gateway, with the
	// virtual key assigned the fixture connection.
	chat := func() int {
		req, _ := http.NewRequest("POST", s.url+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-alias","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+virtualKey)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); !f(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the gateway did not use the change within 2s: %s", what)
			}
		}
	}
	eventually("the new model", func() bool { return chat() == 200 })

	// A key the upstream refuses, then the right one again.
	c := s.master("PATCH", "/admin/v1/connections/fixture", map[string]any{"api_key": wrongKey}, 200)
	if creds, _ := c.js["credentials"].([]any); len(creds) != 1 || creds[0] != "api_key" || c.str("name") != "fixture" {
		t.Errorf("updated connection: %s", c.raw)
	}
	eventually("a refused upstream key", func() bool { return chat() == 502 })
	s.master("PATCH", "/admin/v1/connections/fixture", map[string]any{"api_key": upstreamKey}, 200)
	eventually("the upstream key again", func() bool { return chat() == 200 })

	c = s.master("PATCH", "/admin/v1/connections/fixture", map[string]any{"settings": map[string]any{"first_byte_timeout": "30s", "idle_timeout": "2m"}}, 200)
	if fmt.Sprint(c.js["settings"]) != "map[first_byte_timeout:30s idle_timeout:2m]" {
		t.Errorf("settings: %s", c.raw)
	}
	c = s.master("PATCH", "/admin/v1/connections/fixture", map[string]any{"settings": map[string]any{"idle_timeout": ""}, "name": "renamed"}, 200)
	if fmt.Sprint(c.js["settings"]) != "map[first_byte_timeout:30s]" || c.str("name") != "renamed" {
		t.Errorf("after removing a setting and renaming: %s", c.raw)
	}
	for _, c := range []struct {
		name   string
		id     string
		body   any
		status int
		param  string
		code   string
	}{
		{"another kind", "renamed", map[string]any{"provider": "openai"}, 400, "", ""},
		{"taken name", "renamed", map[string]any{"name": "google-ai"}, 409, "", "already_exists"},
		{"nothing", "renamed", map[string]any{}, 400, "", ""},
		{"only nulls", "renamed", map[string]any{"name": nil, "api_key": nil}, 400, "", ""},
		{"unknown field", "renamed", map[string]any{"apikey": wrongKey}, 400, "apikey", ""},
		{"wrong type", "renamed", map[string]any{"api_key": 5}, 400, "api_key", ""},
		{"bad timeout", "renamed", map[string]any{"settings": map[string]any{"idle_timeout": "soon"}}, 400, "", ""},
		{"region on google", "google-ai", map[string]any{"settings": map[string]any{"region": "us-east-1"}}, 400, "", ""},
		{"required key removed", "google-ai", map[string]any{"api_key": ""}, 400, "", ""},
		{"unknown connection", "nope", map[string]any{"api_key": wrongKey}, 404, "", ""},
	} {
		a := s.do("PATCH", "/admin/v1/connections/"+c.id, masterKey, c.body)
		e, _ := a.js["error"].(map[string]any)
		if a.status != c.status || (c.param != "" && e["param"] != c.param) || (c.code != "" && a.errCode() != c.code) {
			t.Errorf("update connection, %s: %d %s", c.name, a.status, a.raw)
		}
	}
	if a := s.master("GET", "/admin/v1/connections/renamed", nil, 200); fmt.Sprint(a.js["settings"]) != "map[first_byte_timeout:30s]" {
		t.Errorf("refused updates changed the connection: %s", a.raw)
	}

	// Models: a new remote name reaches the upstream.
	u := s.master("PATCH", "/admin/v1/models/"+modelID, map[string]any{"remote": "remote-2", "weight": 3}, 200)
	if u.str("remote") != "remote-2" || u.js["weight"] != 3.0 || u.str("name") != "gpt-alias" {
		t.Errorf("updated model: %s", u.raw)
	}
	eventually("the new remote name", func() bool { return chat() == 200 && s.fake.Last().JSON["model"] == "remote-2" })
	for _, c := range []struct {
		name   string
		id     string
		body   any
		status int
	}{
		{"move", modelID, map[string]any{"connection_id": "google-ai"}, 400},
		{"negative weight", modelID, map[string]any{"weight": -1}, 400},
		{"weight too large", modelID, map[string]any{"weight": admin.MaxModelWeight + 1}, 400},
		{"alias taken", modelID, map[string]any{"name": "other-alias"}, 409},
		{"empty remote", modelID, map[string]any{"remote": ""}, 400},
		{"nothing", modelID, map[string]any{}, 400},
		{"unknown field", modelID, map[string]any{"alias": "x"}, 400},
		{"unknown model", "model_nope", map[string]any{"weight": 2}, 404},
	} {
		if a := s.do("PATCH", "/admin/v1/models/"+c.id, masterKey, c.body); a.status != c.status {
			t.Errorf("update model, %s: %d %s", c.name, a.status, a.raw)
		}
	}
	if a := s.master("GET", "/admin/v1/models/"+modelID, nil, 200); a.str("remote") != "remote-2" || a.js["weight"] != 3.0 {
		t.Errorf("refused updates changed the model: %s", a.raw)
	}
}

// TestOpenAPI checks the document is JSON, OpenAPI 3.1, lists exactly the
// routes served, and that its references resolve.
func TestOpenAPI(t *testing.T) {
	s := newServer(t, masterKey)
	a := s.master("GET", "/admin/v1/openapi.json", nil, 200)
	if v := a.str("openapi"); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q", v)
	}
	paths, _ := a.js["paths"].(map[string]any)
	var listed []string
	for p, item := range paths {
		for m, op := range item.(map[string]any) {
			listed = append(listed, strings.ToUpper(m)+" "+p)
			if _, ok := op.(map[string]any)["responses"]; !ok {
				t.Errorf("%s %s has no responses", m, p)
			}
		}
	}
	var want []string
	for _, r := range routes {
		want = append(want, r.method+" "+r.path)
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("the document lists\n%v\nthe API serves\n%v", listed, want)
	}
	// Every listed route exists: not an unknown_url or a 405.
	for _, r := range routes {
		got := s.do(r.method, strings.ReplaceAll(r.path, "{id}", "x"), masterKey, `{}`)
		if got.status == 405 || got.errCode() == "unknown_url" {
			t.Errorf("%s %s is listed but not served: %s", r.method, r.path, got.raw)
		}
	}
	// References resolve.
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/([^"]+)"`).FindAllStringSubmatch(a.raw, -1) {
		var node any = a.js
		for _, part := range strings.Split(ref[1], "/") {
			m, _ := node.(map[string]any)
			node = m[part]
		}
		if node == nil {
			t.Errorf("unresolved $ref #/%s", ref[1])
		}
	}
	if !bytes.Equal(adminapi.OpenAPI(), []byte(a.raw)) {
		t.Error("OpenAPI() differs from the document served")
	}
}
