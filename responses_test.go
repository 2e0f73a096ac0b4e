package llmproxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
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

// sendResponses posts a Responses API body with key and returns the
// answer, read.
func sendResponses(t *testing.T, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/responses", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// getAs sends method path with key.
func getAs(t *testing.T, method, url, key string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	return do(t, req)
}

// TestResponsesTranslatedConversation: on a chat-only connection a stored
// response can be read back, listed, continued with previous_response_id
// (the upstream sees the whole conversation) and deleted, by the key that
// created it only.
func TestResponsesTranslatedConversation(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	resp, body := sendResponses(t, e.srv.URL, keyConn, `{"model":"gpt-alias","instructions":"be brief","input":"My name is Ada."}`)
	var r1 struct {
		ID     string `json:"id"`
		Object string `json:"object"`
		Status string `json:"status"`
		Model  string `json:"model"`
		Output []struct {
			Type    string `json:"type"`
			Content []struct {
				Type, Text string
			} `json:"content"`
		} `json:"output"`
		Usage struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(body), &r1); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(r1.ID, "resp_") || r1.Object != "response" || r1.Status != "completed" || r1.Model != "gpt-alias" ||
		len(r1.Output) != 1 || r1.Output[0].Type != "message" || r1.Output[0].Content[0].Type != "output_text" || r1.Usage.InputTokens == 0 {
		t.Fatalf("response %s", body)
	}
	first := e.fake.Last()
	if !strings.Contains(string(first.Body), `"role":"system"`) || !strings.Contains(string(first.Body), `My name is Ada.`) {
		t.Errorf("upstream chat body %s", first.Body)
	}

	// Read back, by its key only.
	got, b := getAs(t, http.MethodGet, e.srv.URL+"/v1/responses/"+r1.ID, keyConn)
	if got.StatusCode != 200 || strings.TrimSpace(b) != strings.TrimSpace(body) {
		t.Errorf("GET: %d %s\nwant %s", got.StatusCode, b, body)
	}
	for _, k := range []string{keyModel, masterKey} {
		got, b = getAs(t, http.MethodGet, e.srv.URL+"/v1/responses/"+r1.ID, k)
		checkError(t, got, b, 404, r1.ID)
	}
	got, b = getAs(t, http.MethodGet, e.srv.URL+"/v1/responses/"+r1.ID+"/input_items?order=asc", keyConn)
	if got.StatusCode != 200 || !strings.Contains(b, `"object":"list"`) || !strings.Contains(b, "My name is Ada.") || !strings.Contains(b, `"has_more":false`) {
		t.Errorf("input_items: %d %s", got.StatusCode, b)
	}

	// Continue it: the upstream gets the first turn and its answer.
	resp, body = sendResponses(t, e.srv.URL, keyConn, `{"model":"gpt-alias","input":"What is my name?","previous_response_id":"`+r1.ID+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("continue: %d %s", resp.StatusCode, body)
	}
	second := e.fake.Last()
	var chat struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	json.Unmarshal(second.Body, &chat)
	var roles []string
	for _, m := range chat.Messages {
		roles = append(roles, m.Role)
	}
	if strings.Join(roles, ",") != "user,assistant,user" || !strings.Contains(string(second.Body), "My name is Ada.") {
		t.Errorf("continued conversation sent as %v: %s", roles, second.Body)
	}
	// Another key cannot continue it.
	resp, body = sendResponses(t, e.srv.URL, masterKey, `{"model":"gpt-alias","input":"hi","previous_response_id":"`+r1.ID+`"}`)
	checkError(t, resp, body, 404, r1.ID)

	// Deleted: gone for everyone.
	got, b = getAs(t, http.MethodDelete, e.srv.URL+"/v1/responses/"+r1.ID, keyModel)
	checkError(t, got, b, 404, r1.ID)
	got, b = getAs(t, http.MethodDelete, e.srv.URL+"/v1/responses/"+r1.ID, keyConn)
	if got.StatusCode != 200 || !strings.Contains(b, `"deleted":true`) {
		t.Errorf("DELETE: %d %s", got.StatusCode, b)
	}
	got, b = getAs(t, http.MethodGet, e.srv.URL+"/v1/responses/"+r1.ID, keyConn)
	checkError(t, got, b, 404, r1.ID)
	resp, body = sendResponses(t, e.srv.URL, keyConn, `{"model":"gpt-alias","input":"hi","previous_response_id":"`+r1.ID+`"}`)
	checkError(t, resp, body, 404, r1.ID)

	sums := e.usage(llmproxy.UsageFilter{})
	if len(sums) != 1 || sums[0].Requests != 2 || sums[0].PromptTokens == 0 {
		t.Errorf("usage %+v", sums)
	}
}

// TestResponsesTranslatedStream: a translated stream is the exact event
// sequence clients expect, hosted tools are left out and named in a
// header, the stored response is the one streamed, and store:false keeps
// nothing.
func TestResponsesTranslatedStream(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/responses", strings.NewReader(
		`{"model":"gpt-alias","input":[{"role":"user","content":[{"type":"input_text","text":"hello"}]}],"stream":true,`+
			`"tools":[{"type":"web_search"},{"type":"function","name":"exec_command","parameters":{"type":"object","properties":{"cmd":{"type":"string"}}}}],"include":["reasoning.encrypted_content"],"prompt_cache_key":"abc"}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Llm-Proxy-Dropped-Tools") != "web_search" {
		t.Fatalf("%d, dropped tools %q", resp.StatusCode, resp.Header.Get("X-Llm-Proxy-Dropped-Tools"))
	}
	evs := readEvents(t, resp)
	var datas [][]byte
	for _, ev := range evs {
		datas = append(datas, []byte(ev.data))
		var typ struct {
			Type string `json:"type"`
		}
		json.Unmarshal([]byte(ev.data), &typ)
		if typ.Type != ev.name {
			t.Errorf("event %q carries type %q", ev.name, typ.Type)
		}
	}
	if err := translate.CheckResponsesEvents(datas); err != nil {
		t.Errorf("event order: %v", err)
	}
	last := evs[len(evs)-1]
	if last.name != "response.completed" {
		t.Fatalf("last event %s", last.name)
	}
	var done struct {
		Response json.RawMessage `json:"response"`
	}
	json.Unmarshal([]byte(last.data), &done)
	var id struct {
		ID string `json:"id"`
	}
	json.Unmarshal(done.Response, &id)
	got, b := getAs(t, http.MethodGet, e.srv.URL+"/v1/responses/"+id.ID, keyConn)
	if got.StatusCode != 200 || strings.TrimSpace(b) != string(done.Response) {
		t.Errorf("GET after a stream: %d %s\nwant %s", got.StatusCode, b, done.Response)
	}
	if up := e.fake.Last(); strings.Contains(string(up.Body), "web_search") || !strings.Contains(string(up.Body), "exec_command") {
		t.Errorf("upstream tools: %s", up.Body)
	}

	resp2, body := sendResponses(t, e.srv.URL, keyConn, `{"model":"gpt-alias","input":"hi","store":false}`)
	var r struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(body), &r)
	got, b = getAs(t, http.MethodGet, e.srv.URL+"/v1/responses/"+r.ID, keyConn)
	if resp2.StatusCode != 200 || got.StatusCode != 404 {
		t.Errorf("store:false: %d, then GET %d %s", resp2.StatusCode, got.StatusCode, b)
	}
}
