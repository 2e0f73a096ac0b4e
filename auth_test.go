package llmproxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

func TestRights(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	chat := func(key, model string) (int, string) {
		s, _, b := e.post("/v1/chat/completions", key, "", `{"model":"`+model+`","messages":[{"role":"user","content":"x"}]}`)
		return s, b
	}
	cases := []struct {
		key, model string
		status     int
		code       string
	}{
		{keyConn, "gpt-alias", 200, ""},
		{keyConn, "other", 404, "model_not_found"},
		{keyConn, "does-not-exist", 404, "model_not_found"},
		{keyModel, "other", 200, ""},
		{keyModel, "gpt-alias", 404, "model_not_found"},
		{masterKey, "gpt-alias", 200, ""},
		{masterKey, "other", 200, ""},
		{"sk-wrong", "gpt-alias", 401, "invalid_api_key"},
		{"", "gpt-alias", 401, "invalid_api_key"},
	}
	for _, c := range cases {
		status, body := chat(c.key, c.model)
		if status != c.status {
			t.Errorf("key %q model %q: status %d, want %d: %s", c.key, c.model, status, c.status, body)
			continue
		}
		if c.code != "" {
			var raw struct {
				Error struct{ Code, Message, Type string }
			}
			json.Unmarshal([]byte(body), &raw)
			if raw.Error.Code != c.code || raw.Error.Message == "" || raw.Error.Type == "" {
				t.Errorf("key %q model %q: error %s", c.key, c.model, body)
			}
		}
	}
	// A model added later to the connection is usable at once by the
	// connection-scoped key.
	must(t, e.store.CreateModel(context.Background(), &llmproxy.Model{Name: "later", Remote: "r-later", ConnectionID: e.conn.ID}))
	waitFor(t, func() bool { s, _ := chat(keyConn, "later"); return s == 200 })

	models := func(key string) []string {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var list struct {
			Object string
			Data   []struct{ ID, Object string }
		}
		json.NewDecoder(resp.Body).Decode(&list)
		var ids []string
		for _, d := range list.Data {
			ids = append(ids, d.ID)
		}
		return ids
	}
	if got := strings.Join(models(keyConn), ","); got != "gpt-alias,later" {
		t.Errorf("models for the connection key: %s", got)
	}
	if got := strings.Join(models(keyModel), ","); got != "other" {
		t.Errorf("models for the model key: %s", got)
	}
	if got := strings.Join(models(masterKey), ","); got != "gpt-alias,later,other" {
		t.Errorf("models for the master key: %s", got)
	}
	// A deleted key stops working within 2s, without a restart.
	must(t, e.store.DeleteKey(context.Background(), e.modelKey.ID))
	start := time.Now()
	waitFor(t, func() bool { s, _ := chat(keyModel, "other"); return s == 401 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("deleted key worked for %v", d)
	}
}

// FuzzKeyHeaders: whatever the Authorization and api-key headers hold,
// the gateway answers without panicking: 200 only for the real key
// (however it is padded), otherwise 401 in OpenAI's shape; it never echoes
// the header, and only an authenticated request reaches the upstream.
func FuzzKeyHeaders(f *testing.F) {
	for _, s := range [][2]string{
		{"Bearer " + keyConn, ""}, {"", keyConn}, {"bearer  " + keyConn + " ", ""}, {"Basic abc", keyConn},
		{"Bearer", ""}, {"Bearer ", ""}, {"Bearer sk proxy", ""}, {"Bearer sk-\xff", ""}, {"", " "},
		{"Bearer " + masterKey, ""}, {"BEARER " + keyConn, "x"}, {"Bearer \x00", ""}, {"Bearer é", "é"},
	} {
		f.Add(s[0], s[1])
	}
	ctx := context.Background()
	store := memory.New()
	fake := fakeopenai.New(f, upstreamKey)
	conn := &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(f, store.CreateConnection(ctx, conn))
	must(f, store.CreateModel(ctx, &llmproxy.Model{Name: "ok", Remote: "remote-ok", ConnectionID: conn.ID}))
	must(f, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Prefix: llmproxy.KeyPrefix(keyConn),
		Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, MasterKey: masterKey,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(f, err)
	f.Cleanup(func() { gw.Close() })
	const body = `{"model":"ok","messages":[{"role":"user","content":"x"}]}`
	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		if authorization != "" {
			req.Header["Authorization"] = []string{authorization}
		}
		if apiKey != "" {
			req.Header["Api-Key"] = []string{apiKey}
		}
		before := len(fake.Requests())
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, req)
		forwarded := len(fake.Requests()) - before
		var e openAIError
		switch w.Code {
		case 200:
			if forwarded != 1 {
				t.Fatalf("200 with %d upstream calls", forwarded)
			}
			used := apiKey
			if authorization != "" {
				used = strings.TrimSpace(authorization[len("bearer "):])
			}
			if used != keyConn && used != masterKey {
				t.Fatalf("authorization %q api-key %q let in", authorization, apiKey)
			}
		case 401:
			if forwarded != 0 {
				t.Fatalf("401 with %d upstream calls", forwarded)
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || deref(e.Error.Code) != "invalid_api_key" {
				t.Fatalf("401 body %q", w.Body)
			}
			for _, v := range []string{authorization, apiKey} {
				if len(v) > 8 && strings.Contains(w.Body.String(), v) {
					t.Fatalf("the answer echoes the header %q: %s", v, w.Body)
				}
			}
		default:
			t.Fatalf("status %d for authorization %q api-key %q: %s", w.Code, authorization, apiKey, w.Body)
		}
	})
}
