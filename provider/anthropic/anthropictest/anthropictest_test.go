package anthropictest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
)

// post sends body to the fake with its key and a version, and returns the
// answer.
func post(t *testing.T, s *anthropictest.Server, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
	req.Header.Set("X-Api-Key", anthropictest.DefaultAPIKey)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readSSE reads a whole stream: each event's name and data.
func readSSE(t *testing.T, r io.Reader) (names []string, data []map[string]any) {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			names = append(names, strings.TrimPrefix(line, "event: "))
		case strings.HasPrefix(line, "data: "):
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
			data = append(data, m)
		case line != "":
			t.Fatalf("unexpected line %q", line)
		}
	}
	return names, data
}

// TestWireFormat: a Message and its stream are in the API's shape.
func TestWireFormat(t *testing.T) {
	s := anthropictest.New(t)
	m := anthropictest.Message{Content: []anthropictest.Block{anthropictest.ThinkingBlock("Hmm, well.", "sig=="),
		anthropictest.TextBlock("Let me look."), anthropictest.ToolUseBlock("toolu_1", "Read", map[string]string{"file_path": "/x"})},
		Usage: anthropictest.Usage{InputTokens: 5, OutputTokens: 9, CacheCreationInputTokens: 100, CacheReadInputTokens: 2000}}
	s.Reply(anthropictest.Reply(m), anthropictest.Reply(m))
	req := `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]`

	resp := post(t, s, "/v1/messages?beta=true", req+"}")
	var msg map[string]any
	json.NewDecoder(resp.Body).Decode(&msg)
	usage, _ := msg["usage"].(map[string]any)
	if msg["type"] != "message" || msg["role"] != "assistant" || msg["model"] != "claude-x" || msg["stop_reason"] != "tool_use" ||
		msg["stop_sequence"] != nil || len(msg["content"].([]any)) != 3 || usage["cache_read_input_tokens"] != 2000.0 ||
		!strings.HasPrefix(msg["id"].(string), "msg_") || resp.Header.Get("Request-Id") == "" {
		t.Errorf("message %v (request-id %q)", msg, resp.Header.Get("Request-Id"))
	}

	resp = post(t, s, "/v1/messages", req+`,"stream":true}`)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type %q", ct)
	}
	names, data := readSSE(t, resp.Body)
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if strings.Join(names, " ") != want {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(names, " "), want)
	}
	for i, d := range data {
		if d["type"] != names[i] {
			t.Errorf("event %d named %q has type %q", i, names[i], d["type"])
		}
	}
	start := data[0]["message"].(map[string]any)["usage"].(map[string]any)
	final := data[len(data)-2]["usage"].(map[string]any)
	if start["input_tokens"] != 5.0 || start["cache_creation_input_tokens"] != 100.0 || start["cache_read_input_tokens"] != 2000.0 ||
		final["output_tokens"] != 9.0 || final["cache_read_input_tokens"] != 2000.0 {
		t.Errorf("usage at the start %v, at the end %v", start, final)
	}
}

// TestToolRoundTrip: a handler answers a tool call, then text once the
// request carries the tool's result, as an agent's end-to-end test does.
func TestToolRoundTrip(t *testing.T) {
	s := anthropictest.New(t)
	s.Handle(func(c *anthropictest.Call) anthropictest.Answer {
		if r := c.ToolResults(); len(r) > 0 {
			return anthropictest.Text("The file says: " + r[0].Content)
		}
		if c.HasTool("Read") {
			return anthropictest.ToolUse("toolu_01", "Read", map[string]string{"file_path": "/tmp/a.txt"})
		}
		return anthropictest.Text("no tools")
	})
	first := `{"model":"m","max_tokens":10,"tools":[{"name":"Read","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"read it"}]}`
	var msg struct {
		Content []struct{ Type, Name, Text string } `json:"content"`
	}
	json.NewDecoder(post(t, s, "/v1/messages", first).Body).Decode(&msg)
	if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "Read" {
		t.Fatalf("first answer %+v, want a Read tool_use", msg)
	}
	second := `{"model":"m","max_tokens":10,"tools":[{"name":"Read","input_schema":{"type":"object"}}],"messages":[` +
		`{"role":"user","content":"read it"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_01","name":"Read","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":[{"type":"text","text":"hello"}]}]}]}`
	json.NewDecoder(post(t, s, "/v1/messages", second).Body).Decode(&msg)
	if len(msg.Content) != 1 || msg.Content[0].Text != "The file says: hello" {
		t.Errorf("second answer %+v", msg)
	}
	if n := len(s.Calls()); n != 2 {
		t.Errorf("%d calls", n)
	}
}

// TestFakeChecks: the fake refuses what Anthropic refuses, in its shape.
func TestFakeChecks(t *testing.T) {
	s := anthropictest.New(t)
	post := func(path, key, version, body string) (int, string) {
		req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		if version != "" {
			req.Header.Set("Anthropic-Version", version)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Type  string                `json:"type"`
			Error struct{ Type string } `json:"error"`
			ID    string                `json:"request_id"`
		}
		json.NewDecoder(resp.Body).Decode(&env)
		if resp.StatusCode != 200 && (env.Type != "error" || env.ID == "" || resp.Header.Get("Request-Id") != env.ID) {
			t.Errorf("%s: error answer not in Anthropic's shape: %+v", path, env)
		}
		return resp.StatusCode, env.Error.Type
	}
	ok := `{"model":"m","max_tokens":5,"messages":[]}`
	for _, tc := range []struct {
		path, key, version, body string
		status                   int
		typ                      string
	}{
		{"/v1/messages", "", "2023-06-01", ok, 401, "authentication_error"},
		{"/v1/messages", "wrong", "2023-06-01", ok, 401, "authentication_error"},
		{"/v1/messages", anthropictest.DefaultAPIKey, "", ok, 400, "invalid_request_error"},
		{"/v1/messages", anthropictest.DefaultAPIKey, "2023-06-01", `{"model":"m","messages":[]}`, 400, "invalid_request_error"},
		{"/v1/messages", anthropictest.DefaultAPIKey, "2023-06-01", `{"model":`, 400, "invalid_request_error"},
		{"/v1/complete", anthropictest.DefaultAPIKey, "2023-06-01", ok, 404, "not_found_error"},
		{"/v1/messages", anthropictest.DefaultAPIKey, "2023-06-01", ok, 200, ""},
		{"/v1/messages/count_tokens", anthropictest.DefaultAPIKey, "2023-06-01", `{"model":"m","messages":[]}`, 200, ""},
	} {
		if status, typ := post(tc.path, tc.key, tc.version, tc.body); status != tc.status || typ != tc.typ {
			t.Errorf("%s key=%q version=%q %s: %d %q, want %d %q", tc.path, tc.key, tc.version, tc.body, status, typ, tc.status, tc.typ)
		}
	}
	if n := len(s.Calls()); n != 8 {
		t.Errorf("%d calls recorded, want all 8", n)
	}
}
