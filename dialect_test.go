package llmproxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// anthropicError is Anthropic's error envelope.
type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// sendAnthropic posts body to path as Anthropic's clients do: the key in
// x-api-key and an anthropic-version.
func sendAnthropic(t *testing.T, url, path, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// checkAnthropicError checks an answer is an Anthropic error of status
// and type whose message contains want.
func checkAnthropicError(t *testing.T, resp *http.Response, body string, status int, typ, want string) {
	t.Helper()
	var e anthropicError
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Type != "error" || e.Error.Message == "" {
		t.Errorf("not an Anthropic error envelope: %q", body)
	}
	if resp.StatusCode != status || e.Error.Type != typ {
		t.Errorf("status %d type %q, want %d %q: %s", resp.StatusCode, e.Error.Type, status, typ, body)
	}
	if !strings.Contains(e.Error.Message, want) {
		t.Errorf("message %q does not name the problem (want %q)", e.Error.Message, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// TestMessagesBadInput: what Anthropic's API refuses is refused with its
// status and error shape, and nothing reaches the upstream.
func TestMessagesBadInput(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name, path, key, body string
		status                int
		typ, want             string
	}{
		{"no key", "/v1/messages", "", `{"model":"gpt-alias","max_tokens":5,` + msgs + `}`, 401, "authentication_error", "API key"},
		{"bad key", "/v1/messages", "sk-wrong", `{"model":"gpt-alias","max_tokens":5,` + msgs + `}`, 401, "authentication_error", "Incorrect API key"},
		{"malformed", "/v1/messages", keyConn, `{"model":`, 400, "invalid_request_error", "not valid JSON"},
		{"no model", "/v1/messages", keyConn, `{"max_tokens":5,` + msgs + `}`, 400, "invalid_request_error", "model"},
		{"no max_tokens", "/v1/messages", keyConn, `{"model":"gpt-alias",` + msgs + `}`, 400, "invalid_request_error", "max_tokens"},
		{"max_tokens zero", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":0,` + msgs + `}`, 400, "invalid_request_error", "max_tokens"},
		{"max_tokens string", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":"5",` + msgs + `}`, 400, "invalid_request_error", "max_tokens"},
		{"no messages", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":5}`, 400, "invalid_request_error", "messages"},
		{"messages object", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":5,"messages":{}}`, 400, "invalid_request_error", "messages must be an array"},
		{"message no role", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":5,"messages":[{"content":"hi"}]}`, 400, "invalid_request_error", "messages[0]"},
		{"system number", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":5,"system":3,` + msgs + `}`, 400, "invalid_request_error", "system"},
		{"tools object", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":5,"tools":{},` + msgs + `}`, 400, "invalid_request_error", "tools"},
		{"stream string", "/v1/messages", keyConn, `{"model":"gpt-alias","max_tokens":5,"stream":"yes",` + msgs + `}`, 400, "invalid_request_error", "stream"},
		{"model of another key", "/v1/messages", keyModel, `{"model":"gpt-alias","max_tokens":5,` + msgs + `}`, 404, "not_found_error", "gpt-alias"},
		{"count no messages", "/v1/messages/count_tokens", keyConn, `{"model":"gpt-alias"}`, 400, "invalid_request_error", "messages"},
		{"count other model", "/v1/messages/count_tokens", keyModel, `{"model":"gpt-alias",` + msgs + `}`, 404, "not_found_error", "gpt-alias"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := sendAnthropic(t, e.srv.URL, c.path, c.key, c.body)
			checkAnthropicError(t, resp, body, c.status, c.typ, c.want)
		})
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

// TestMessagesKeyHeaders: a key is read from x-api-key, Authorization:
// Bearer (Anthropic's TypeScript SDK, ANTHROPIC_AUTH_TOKEN) and api-key,
// and the query string Claude Code adds (?beta=true) does not matter.
func TestMessagesKeyHeaders(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	body := `{"model":"gpt-alias","max_tokens":5,"messages":{}}` // refused after authentication
	for _, h := range []string{"x-api-key", "Authorization", "api-key"} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/messages?beta=true", strings.NewReader(body))
		v := keyConn
		if h == "Authorization" {
			v = "Bearer " + keyConn
		}
		req.Header.Set(h, v)
		resp, b := do(t, req)
		checkAnthropicError(t, resp, b, 400, "invalid_request_error", "messages must be an array")
	}
}

// TestModelsAnthropicShape: with anthropic-version the model list is in
// Anthropic's shape, without it in OpenAI's.
func TestModelsAnthropicShape(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	get := func(path string, anthropic bool) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		req.Header.Set("x-api-key", keyConn)
		if anthropic {
			req.Header.Set("anthropic-version", "2023-06-01")
		}
		return do(t, req)
	}
	resp, body := get("/v1/models", true)
	var list struct {
		Data []struct {
			Type        string `json:"type"`
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
			CreatedAt   string `json:"created_at"`
		} `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if len(list.Data) != 1 || list.Data[0].Type != "model" || list.Data[0].ID != "gpt-alias" || list.HasMore ||
		deref(list.FirstID) != "gpt-alias" || deref(list.LastID) != "gpt-alias" || list.Data[0].DisplayName != "gpt-alias" {
		t.Errorf("list %s", body)
	}
	if _, err := time.Parse(time.RFC3339, list.Data[0].CreatedAt); err != nil {
		t.Errorf("created_at: %s", body)
	}
	resp, body = get("/v1/models/gpt-alias", true)
	if resp.StatusCode != 200 || !strings.Contains(body, `"type":"model"`) || !strings.Contains(body, `"id":"gpt-alias"`) {
		t.Errorf("one model: %d %s", resp.StatusCode, body)
	}
	resp, body = get("/v1/models/other", true)
	checkAnthropicError(t, resp, body, 404, "not_found_error", "other")
	resp, body = get("/v1/models", false)
	if resp.StatusCode != 200 || !strings.Contains(body, `"object":"list"`) {
		t.Errorf("OpenAI shape: %d %s", resp.StatusCode, body)
	}
}
