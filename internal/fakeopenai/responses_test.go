package fakeopenai_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

const key = "sk-fake"

// call sends method path (under /v1) with body and returns the status and
// the decoded JSON answer.
func call(t *testing.T, s *fakeopenai.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.BaseURL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var js map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&js); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, js
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data map[string]any
}

// readEvents reads a whole event stream, checking that each event's
// "event:" line names its type.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var evs []sseEvent
	var name string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			if err := json.Unmarshal([]byte(line[len("data: "):]), &d); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
			if d["type"] != name {
				t.Fatalf("event: %q carries type %v", name, d["type"])
			}
			evs = append(evs, sseEvent{name, d})
		}
	}
	return evs
}

// checkOrder checks the Responses stream rules: sequence_number counts
// from 0; items are added before their deltas and done; parts are done
// before their item; the last event is terminal.
func checkOrder(t *testing.T, evs []sseEvent) {
	t.Helper()
	open := map[any]bool{}  // item ids added, not done
	parts := map[any]bool{} // item ids with an open part
	for i, e := range evs {
		if n, _ := e.data["sequence_number"].(float64); int(n) != i {
			t.Fatalf("event %d (%s) has sequence_number %v", i, e.name, e.data["sequence_number"])
		}
		id := e.data["item_id"]
		switch e.name {
		case "response.output_item.added":
			open[e.data["item"].(map[string]any)["id"]] = true
		case "response.output_item.done":
			id = e.data["item"].(map[string]any)["id"]
			if !open[id] || parts[id] {
				t.Fatalf("event %d: item %v done while not open or with an open part", i, id)
			}
			delete(open, id)
		case "response.content_part.added":
			parts[id] = true
		case "response.content_part.done":
			delete(parts, id)
		}
		if id != nil && strings.Contains(e.name, "delta") && !open[id] {
			t.Fatalf("event %d: delta for item %v not open", i, id)
		}
	}
	last := evs[len(evs)-1].name
	if last != "response.completed" && last != "response.incomplete" && last != "response.failed" {
		t.Fatalf("stream ends with %s", last)
	}
	if len(open) > 0 {
		t.Fatalf("items never done: %v", open)
	}
}

func TestResponsesStoredConversation(t *testing.T) {
	s := fakeopenai.New(t, key)
	var seen []*fakeopenai.ResponsesRequest
	s.Responses.SetHandler(func(r *fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		seen = append(seen, r)
		return fakeopenai.DefaultTurn(r)
	})
	status, first := call(t, s, "POST", "/responses", `{"model":"m1","input":"hello there","instructions":"be brief"}`)
	if status != 200 || first["object"] != "response" || first["status"] != "completed" || first["instructions"] != "be brief" {
		t.Fatalf("create: %d %v", status, first)
	}
	out := first["output"].([]any)[0].(map[string]any)
	text := out["content"].([]any)[0].(map[string]any)["text"]
	if text != fakeopenai.Reply("m1", "hello there") {
		t.Fatalf("text %v", text)
	}
	u := first["usage"].(map[string]any)
	if u["input_tokens"] != float64(fakeopenai.PromptTokens) || u["input_tokens_details"] == nil || u["output_tokens_details"] == nil {
		t.Fatalf("usage %v", u)
	}
	id := first["id"].(string)

	if status, got := call(t, s, "GET", "/responses/"+id, ""); status != 200 || got["id"] != id {
		t.Fatalf("GET: %d %v", status, got)
	}
	status, items := call(t, s, "GET", "/responses/"+id+"/input_items", "")
	data, _ := items["data"].([]any)
	if status != 200 || items["object"] != "list" || len(data) != 1 || items["has_more"] != false {
		t.Fatalf("input_items: %d %v", status, items)
	}
	if it := data[0].(map[string]any); it["type"] != "message" || it["role"] != "user" || it["id"] == nil {
		t.Fatalf("input item %v", it)
	}

	status, second := call(t, s, "POST", "/responses", `{"model":"m1","input":[{"role":"user","content":"and again"}],"previous_response_id":"`+id+`"}`)
	if status != 200 || second["previous_response_id"] != id {
		t.Fatalf("continue: %d %v", status, second)
	}
	if c := seen[1].Conversation; len(c) != 3 || c[1]["type"] != "message" || c[1]["role"] != "assistant" || seen[1].UserText() != "and again" {
		t.Fatalf("conversation of the second turn: %v", c)
	}

	if status, got := call(t, s, "DELETE", "/responses/"+id, ""); status != 200 || got["deleted"] != true || got["object"] != "response.deleted" {
		t.Fatalf("DELETE: %d %v", status, got)
	}
	for _, p := range []string{"/responses/" + id, "/responses/" + id + "/input_items"} {
		status, got := call(t, s, "GET", p, "")
		if status != 404 || !strings.Contains(got["error"].(map[string]any)["message"].(string), id) {
			t.Fatalf("GET %s after DELETE: %d %v", p, status, got)
		}
	}
	status, got := call(t, s, "POST", "/responses", `{"model":"m1","input":"x","previous_response_id":"`+id+`"}`)
	if e := got["error"].(map[string]any); status != 400 || e["code"] != "previous_response_not_found" || e["param"] != "previous_response_id" {
		t.Fatalf("continuing a deleted response: %d %v", status, got)
	}
}

func TestResponsesStoreFalse(t *testing.T) {
	s := fakeopenai.New(t, key)
	_, r := call(t, s, "POST", "/responses", `{"model":"m","input":"x","store":false}`)
	if status, _ := call(t, s, "GET", "/responses/"+r["id"].(string), ""); status != 404 {
		t.Fatalf("GET of an unstored response: %d", status)
	}
}

func TestResponsesInputItemsPaging(t *testing.T) {
	s := fakeopenai.New(t, key)
	_, r := call(t, s, "POST", "/responses", `{"model":"m","input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}`)
	id := r["id"].(string)
	_, page := call(t, s, "GET", "/responses/"+id+"/input_items?order=asc&limit=2", "")
	data := page["data"].([]any)
	if len(data) != 2 || page["has_more"] != true || data[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"] != "a" {
		t.Fatalf("first page: %v", page)
	}
	_, next := call(t, s, "GET", "/responses/"+id+"/input_items?order=asc&after="+page["last_id"].(string), "")
	if d := next["data"].([]any); len(d) != 1 || next["has_more"] != false {
		t.Fatalf("second page: %v", next)
	}
	_, desc := call(t, s, "GET", "/responses/"+id+"/input_items", "")
	if d := desc["data"].([]any); len(d) != 3 || d[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"] != "c" {
		t.Fatalf("default order is desc: %v", desc)
	}
	if status, _ := call(t, s, "GET", "/responses/"+id+"/input_items?limit=0", ""); status != 400 {
		t.Fatalf("limit=0: %d", status)
	}
}

func postStream(t *testing.T, s *fakeopenai.Server, body string) []sseEvent {
	t.Helper()
	req, _ := http.NewRequest("POST", s.BaseURL()+"/responses", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	return readEvents(t, resp.Body)
}

// TestResponsesStreamFunctionCall scripts Codex's round trip: an
// exec_command call, then text once the output comes back.
func TestResponsesStreamFunctionCall(t *testing.T) {
	s := fakeopenai.New(t, key)
	s.Responses.SetHandler(func(r *fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		if out, callID, ok := r.FunctionCallOutput(); ok {
			return &fakeopenai.Turn{Text: "ran " + callID + ": " + out,
				Usage: &fakeopenai.ResponsesUsage{InputTokens: 30, CachedTokens: 20, OutputTokens: 9, ReasoningTokens: 4}}
		}
		return &fakeopenai.Turn{Calls: []fakeopenai.FunctionCall{{Name: "exec_command", Arguments: `{"cmd":"echo hi"}`, CallID: "call_1"}}}
	})
	tools := `"tools":[{"type":"function","name":"exec_command","parameters":{"type":"object"}},{"type":"web_search"}]`
	evs := postStream(t, s, `{"model":"m","stream":true,"store":false,"input":"run it",`+tools+`}`)
	checkOrder(t, evs)
	var names []string
	for _, e := range evs {
		names = append(names, e.name)
	}
	want := "response.created response.in_progress response.output_item.added response.function_call_arguments.delta response.function_call_arguments.delta response.function_call_arguments.done response.output_item.done response.completed"
	if strings.Join(names, " ") != want {
		t.Fatalf("events:\n%s\nwant\n%s", strings.Join(names, " "), want)
	}
	item := evs[6].data["item"].(map[string]any)
	if item["name"] != "exec_command" || item["arguments"] != `{"cmd":"echo hi"}` || item["call_id"] != "call_1" {
		t.Fatalf("call item %v", item)
	}

	evs = postStream(t, s, `{"model":"m","stream":true,"store":false,`+tools+`,"input":[{"role":"user","content":"run it"},`+
		`{"type":"function_call","call_id":"call_1","name":"exec_command","arguments":"{}"},{"type":"function_call_output","call_id":"call_1","output":"hi\n"}]}`)
	checkOrder(t, evs)
	var text string
	for _, e := range evs {
		if e.name == "response.output_text.delta" {
			text += e.data["delta"].(string)
		}
	}
	if text != "ran call_1: hi\n" {
		t.Fatalf("streamed text %q", text)
	}
	u := evs[len(evs)-1].data["response"].(map[string]any)["usage"].(map[string]any)
	if u["input_tokens_details"].(map[string]any)["cached_tokens"] != 20.0 || u["output_tokens_details"].(map[string]any)["reasoning_tokens"] != 4.0 || u["total_tokens"] != 39.0 {
		t.Fatalf("usage %v", u)
	}
}

func TestResponsesStreamEndings(t *testing.T) {
	for _, tc := range []struct {
		turn     fakeopenai.Turn
		last     string
		status   string
		terminal bool
	}{
		{fakeopenai.Turn{Text: "cut short", Incomplete: "max_output_tokens"}, "response.incomplete", "incomplete", true},
		{fakeopenai.Turn{FailCode: "server_error", FailMessage: "boom"}, "response.failed", "failed", true},
		{fakeopenai.Turn{Text: "a b c", ErrorAfter: 3, ErrorCode: "rate_limit_exceeded", ErrorMessage: "slow down"}, "error", "", false},
	} {
		s := fakeopenai.New(t, key)
		turn := tc.turn
		s.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn { return &turn })
		evs := postStream(t, s, `{"model":"m","stream":true,"input":"x"}`)
		last := evs[len(evs)-1]
		if last.name != tc.last {
			t.Fatalf("%+v: last event %s", tc.turn, last.name)
		}
		if tc.terminal {
			checkOrder(t, evs)
			if r := last.data["response"].(map[string]any); r["status"] != tc.status {
				t.Fatalf("status %v", r["status"])
			}
		} else if last.data["code"] != "rate_limit_exceeded" || last.data["message"] != "slow down" || len(evs) != 4 {
			t.Fatalf("error event %v after %d events", last.data, len(evs))
		}
	}
}

func TestResponsesErrors(t *testing.T) {
	s := fakeopenai.New(t, key)
	s.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Error: fakeopenai.ErrorAnswer(400, "bad tool")}
	})
	status, got := call(t, s, "POST", "/responses", `{"model":"m","input":"x"}`)
	if status != 400 || got["error"].(map[string]any)["message"] != "bad tool" {
		t.Fatalf("%d %v", status, got)
	}
	if status, _ := call(t, s, "POST", "/responses", `{"input":"x"}`); status != 400 {
		t.Fatalf("no model: %d", status)
	}
	if status, _ := call(t, s, "PUT", "/responses/resp_x", `{}`); status != 404 {
		t.Fatalf("PUT: %d", status)
	}
	if got := s.Requests(); len(got) != 3 || got[0].Path != "/v1/responses" {
		t.Fatalf("requests recorded: %d", len(got))
	}
}
