package llmproxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
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
		{"unknown previous", `{"model":"gpt-alias","input":"hi","previous_response_id":"resp_nope"}`, 400, "resp_nope"},
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
	// Another key cannot continue it: to it the id does not exist (OpenAI
	// answers an unknown previous_response_id with a 400).
	resp, body = sendResponses(t, e.srv.URL, masterKey, `{"model":"gpt-alias","input":"hi","previous_response_id":"`+r1.ID+`"}`)
	if e := checkError(t, resp, body, 400, r1.ID); deref(e.Error.Code) != "previous_response_not_found" {
		t.Errorf("code %q", deref(e.Error.Code))
	}

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
	checkError(t, resp, body, 400, r1.ID)

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

// TestResponsesNative: on a connection that serves the Responses API the
// body goes upstream as sent but for model and the stream is relayed as
// it comes; usage is recorded from response.completed; the upstream keeps
// the conversation, and the gateway keeps whose it is: another key
// cannot read, continue or delete it, and GET and DELETE are forwarded.
func TestResponsesNative(t *testing.T) {
	ctx := context.Background()
	fake := fakeopenai.New(t, upstreamKey)
	store := memory.New()
	conn := &llmproxy.Connection{Name: "native", Provider: llmproxy.KindCompatible, Endpoint: fake.BaseURL(),
		Credentials: llmproxy.Credentials{APIKey: upstreamKey}, Settings: map[string]string{openai.SettingResponses: "native"}}
	must(t, store.CreateConnection(ctx, conn))
	must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "gpt-native", Remote: "remote-model-1", ConnectionID: conn.ID}))
	for _, k := range []string{keyConn, keyModel} {
		must(t, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: k, Hash: llmproxy.HashKey(k), Prefix: llmproxy.KeyPrefix(k),
			Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}))
	}
	spy := &ledgerSpy{Store: store}
	gw, err := llmproxy.New(llmproxy.Config{Storage: spy, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	fake.Responses.SetHandler(func(r *fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Text: "turn " + r.UserText(), Usage: &fakeopenai.ResponsesUsage{InputTokens: 30, CachedTokens: 20, OutputTokens: 5, ReasoningTokens: 2}}
	})

	body := `{"model":"gpt-native","input":"one","store":true,"prompt_cache_key":"k","include":["reasoning.encrypted_content"],"x_unknown":{"a":[1,2]}}`
	resp, got := sendResponses(t, srv.URL, keyConn, body)
	var r1 struct {
		ID string `json:"id"`
	}
	if json.Unmarshal([]byte(got), &r1); resp.StatusCode != 200 || !strings.HasPrefix(r1.ID, "resp") {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	var up []byte
	for _, rq := range fake.Requests() {
		if strings.HasSuffix(rq.Path, "/responses") {
			up = rq.Body
		}
	}
	if want := strings.Replace(body, `"gpt-native"`, `"remote-model-1"`, 1); string(up) != want {
		t.Errorf("upstream body\n got %s\nwant %s", up, want)
	}
	got2, b := getAs(t, http.MethodGet, srv.URL+"/v1/responses/"+r1.ID, keyConn)
	if got2.StatusCode != 200 || !strings.Contains(b, r1.ID) || !strings.Contains(b, "turn one") {
		t.Errorf("GET forwarded: %d %s", got2.StatusCode, b)
	}
	got2, b = getAs(t, http.MethodGet, srv.URL+"/v1/responses/"+r1.ID, keyModel)
	checkError(t, got2, b, 404, r1.ID)
	resp, got = sendResponses(t, srv.URL, keyModel, `{"model":"gpt-native","input":"two","previous_response_id":"`+r1.ID+`"}`)
	checkError(t, resp, got, 400, r1.ID)
	got2, b = getAs(t, http.MethodDelete, srv.URL+"/v1/responses/"+r1.ID, keyModel)
	checkError(t, got2, b, 404, r1.ID)

	// Continued as a stream by its key: relayed as it comes, in order.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/responses", strings.NewReader(`{"model":"gpt-native","input":"two","stream":true,"previous_response_id":"`+r1.ID+`"}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	sresp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer sresp.Body.Close()
	evs := readEvents(t, sresp)
	if len(evs) == 0 {
		t.Fatalf("no events: %d", sresp.StatusCode)
	}
	var datas [][]byte
	for _, ev := range evs {
		datas = append(datas, []byte(ev.data))
	}
	if err := translate.CheckResponsesEvents(datas); err != nil || evs[len(evs)-1].name != "response.completed" {
		t.Errorf("native stream: %v; last %+v", err, evs[len(evs)-1])
	}
	if !strings.Contains(evs[len(evs)-1].data, "turn two") {
		t.Errorf("the upstream did not see the follow-up: %s", evs[len(evs)-1].data)
	}

	got2, b = getAs(t, http.MethodDelete, srv.URL+"/v1/responses/"+r1.ID, keyConn)
	if got2.StatusCode != 200 || !strings.Contains(b, `"deleted":true`) {
		t.Errorf("DELETE forwarded: %d %s", got2.StatusCode, b)
	}
	got2, b = getAs(t, http.MethodGet, srv.URL+"/v1/responses/"+r1.ID, keyConn)
	checkError(t, got2, b, 404, r1.ID)

	srv.Close()
	must(t, gw.Close())
	spy.mu.Lock()
	defer spy.mu.Unlock()
	n := 0
	for _, rec := range spy.recs {
		if rec.Status != 200 {
			continue
		}
		n++
		if rec.Endpoint != llmproxy.EndpointResponses || rec.PromptTokens != 30 || rec.CacheReadTokens != 20 || rec.CompletionTokens != 5 || rec.Estimated {
			t.Errorf("record %+v", rec)
		}
	}
	if n != 2 {
		t.Errorf("%d records of answered requests", n)
	}
}

// TestResponsesLimitsAndMetrics: the Responses API is limited, counted and
// recorded as chat is, and reaches every kind of upstream: here an
// anthropic connection, through Chat Completions and then Messages.
func TestResponsesLimitsAndMetrics(t *testing.T) {
	e := newMsgEnv(t, llmproxy.Assignment{TPS: 1, Burst: 1}) // per assignment: one per connection
	e.ant.Reply(anthropictest.Reply(anthropictest.Message{
		Content: []anthropictest.Block{anthropictest.TextBlock("Bonjour")},
		Usage:   anthropictest.Usage{InputTokens: 4, OutputTokens: 2, CacheReadInputTokens: 6},
	}))
	resp, body := sendResponses(t, e.url, msgKey, `{"model":"claude","input":"hello","max_output_tokens":50}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"text":"Bonjour"`) || !strings.Contains(body, `"input_tokens":10`) || !strings.Contains(body, `"cached_tokens":6`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if c := e.ant.LastCall(); !strings.Contains(string(c.Body), `"max_tokens":50`) || !strings.Contains(string(c.Body), `"text":"hello"`) && !strings.Contains(string(c.Body), `"content":"hello"`) {
		t.Errorf("anthropic upstream body %s", c.Body)
	}
	resp, body = sendResponses(t, e.url, msgKey, `{"model":"gpt","input":"hi"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = sendResponses(t, e.url, msgKey, `{"model":"gpt","input":"hi"}`)
	checkError(t, resp, body, 429, "Rate limit")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	waitFor(t, func() bool {
		return e.metric("llmproxy_requests_total", map[string]string{"route": "responses", "status_class": "4xx"}) == 1 &&
			e.metric("llmproxy_requests_total", map[string]string{"route": "responses", "model": "claude", "status_class": "2xx"}) == 1
	})
	if got := e.metric("llmproxy_tokens_total", map[string]string{"model": "claude", "type": "cache_read"}); got != 6 {
		t.Errorf("cache_read tokens %v", got)
	}
	var n int
	for _, r := range e.records() {
		if r.Endpoint == llmproxy.EndpointResponses {
			n++
		}
		if r.Model == "claude" && (r.PromptTokens != 10 || r.CacheReadTokens != 6 || r.CompletionTokens != 2) {
			t.Errorf("record %+v", r)
		}
	}
	if n != 3 {
		t.Errorf("%d responses records, want 3 (the refusal included)", n)
	}
}
