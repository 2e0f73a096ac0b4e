package llmproxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

// TestResponsesBadInput: what the Responses API refuses is refused with a
// 400 (or 404) in OpenAI's shape, and nothing reaches the upstream.
func TestResponsesBadInput(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed", `{"model":`, 400, "not valid JSON"},
		{"no model", `{"input":"hi"}`, 400, "model"},
		{"no input", `{"model":"gpt-alias"}`, 400, "input"},
		{"input number", `{"model":"gpt-alias","input":3}`, 400, "input must be a string or an array"},
		{"max_output_tokens zero", `{"model":"gpt-alias","input":"hi","max_output_tokens":0}`, 400, "max_output_tokens"},
		{"store string", `{"model":"gpt-alias","input":"hi","store":"yes"}`, 400, "store"},
		{"instructions object", `{"model":"gpt-alias","input":"hi","instructions":{}}`, 400, "instructions"},
		{"previous id number", `{"model":"gpt-alias","input":"hi","previous_response_id":7}`, 400, "previous_response_id"},
		{"tools object", `{"model":"gpt-alias","input":"hi","tools":{}}`, 400, "tools"},
		{"stream string", `{"model":"gpt-alias","input":"hi","stream":"yes"}`, 400, "stream"},
		{"other key's model", `{"model":"other","input":"hi"}`, 404, "other"},
		{"unknown previous", `{"model":"gpt-alias","input":"hi","previous_response_id":"resp_nope"}`, 404, "resp_nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/responses", strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+keyConn)
			resp, body := do(t, req)
			checkError(t, resp, body, c.status, c.want)
		})
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

// TestResponseResourceNotFound: GET and DELETE of an unknown response,
// and paths that are not resources, answer 404.
func TestResponseResourceNotFound(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/v1/responses/resp_unknown", "resp_unknown"},
		{http.MethodDelete, "/v1/responses/resp_unknown", "resp_unknown"},
		{http.MethodGet, "/v1/responses/resp_unknown/input_items", "resp_unknown"},
		{http.MethodGet, "/v1/responses/resp_unknown/other", "Unknown request URL"},
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+keyConn)
		resp, body := do(t, req)
		checkError(t, resp, body, 404, c.want)
	}
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/v1/responses/resp_x", nil)
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, body := do(t, req)
	checkError(t, resp, body, 405, "PUT")
}
