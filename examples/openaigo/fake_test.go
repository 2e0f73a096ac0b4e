package openaigo_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// The native route's upstream: a stand-in for OpenAI's Responses API
// until internal/fakeopenai serves it (then this file goes).

// A fakeTurn is what the fake model answers: a text, or a call of the
// function name with args.
type fakeTurn struct {
	text string
	name string
	args map[string]any
}

// defaultTurn is the fake model, as the chat fake's: after a
// function_call_output, "The tool said: <output>"; offered function
// tools, a call of the first with {"city":"Paris"}; otherwise
// fakeopenai.Reply(model, the last user text).
func defaultTurn(body []byte) (fakeTurn, error) {
	var req struct {
		Model string `json:"model"`
		Tools []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tools"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return fakeTurn{}, err
	}
	var text string
	if json.Unmarshal(req.Input, &text) != nil {
		var items []struct {
			Type    string          `json:"type"`
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
			Output  string          `json:"output"`
		}
		if err := json.Unmarshal(req.Input, &items); err != nil || len(items) == 0 {
			return fakeTurn{}, fmt.Errorf("input: %v", err)
		}
		if last := items[len(items)-1]; last.Type == "function_call_output" {
			return fakeTurn{text: "The tool said: " + last.Output}, nil
		}
		for _, it := range items {
			if it.Role == "user" {
				text = contentText(it.Content)
			}
		}
	}
	for _, t := range req.Tools {
		if t.Type == "function" {
			return fakeTurn{name: t.Name, args: map[string]any{"city": "Paris"}}, nil
		}
	}
	return fakeTurn{text: fakeopenai.Reply(req.Model, text)}, nil
}

// contentText is the text of a message's content: a string, or the
// text of its parts.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// responseObject is the Responses API's response object answering with
// tr: a message with one output_text part, or a function_call item.
func responseObject(id, model string, tr fakeTurn, inputTokens int) map[string]any {
	var item map[string]any
	outputTokens := 10
	if tr.name != "" {
		args, _ := json.Marshal(tr.args)
		item = map[string]any{"type": "function_call", "id": "fc_" + id, "call_id": "call_" + id,
			"name": tr.name, "arguments": string(args), "status": "completed"}
	} else {
		outputTokens = len(strings.Fields(tr.text))
		item = map[string]any{"type": "message", "id": "msg_" + id, "role": "assistant", "status": "completed",
			"content": []any{map[string]any{"type": "output_text", "text": tr.text, "annotations": []any{}}}}
	}
	return map[string]any{
		"id": "resp_" + id, "object": "response", "created_at": 1700000000, "status": "completed",
		"model": model, "output": []any{item}, "parallel_tool_calls": true, "tool_choice": "auto", "tools": []any{},
		"usage": map[string]any{
			"input_tokens": inputTokens, "input_tokens_details": map[string]any{"cached_tokens": 0},
			"output_tokens": outputTokens, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
			"total_tokens": inputTokens + outputTokens,
		},
	}
}

// responseEvents is the stream of events OpenAI sends for resp (one
// output item), each as its "data" JSON with its sequence_number: the
// item added, its text or arguments in two deltas, the item done, then
// response.completed.
func responseEvents(resp map[string]any) []string {
	var events []string
	add := func(typ string, fields map[string]any) {
		fields["type"], fields["sequence_number"] = typ, len(events)
		b, _ := json.Marshal(fields)
		events = append(events, string(b))
	}
	inProgress := map[string]any{}
	for k, v := range resp {
		inProgress[k] = v
	}
	inProgress["status"], inProgress["output"], inProgress["usage"] = "in_progress", []any{}, nil
	add("response.created", map[string]any{"response": inProgress})
	add("response.in_progress", map[string]any{"response": inProgress})
	item := resp["output"].([]any)[0].(map[string]any)
	id := item["id"]
	if item["type"] == "function_call" {
		args := item["arguments"].(string)
		added := map[string]any{}
		for k, v := range item {
			added[k] = v
		}
		added["arguments"], added["status"] = "", "in_progress"
		add("response.output_item.added", map[string]any{"output_index": 0, "item": added})
		half := len(args) / 2
		for _, d := range []string{args[:half], args[half:]} {
			add("response.function_call_arguments.delta", map[string]any{"output_index": 0, "item_id": id, "delta": d})
		}
		add("response.function_call_arguments.done", map[string]any{"output_index": 0, "item_id": id, "arguments": args})
	} else {
		part := item["content"].([]any)[0].(map[string]any)
		text := part["text"].(string)
		add("response.output_item.added", map[string]any{"output_index": 0, "item": map[string]any{
			"type": "message", "id": id, "role": "assistant", "status": "in_progress", "content": []any{}}})
		loc := func(m map[string]any) map[string]any {
			m["output_index"], m["item_id"], m["content_index"] = 0, id, 0
			return m
		}
		add("response.content_part.added", loc(map[string]any{"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}}))
		half := strings.IndexByte(text, ' ') + 1
		for _, d := range []string{text[:half], text[half:]} {
			add("response.output_text.delta", loc(map[string]any{"delta": d, "logprobs": []any{}}))
		}
		add("response.output_text.done", loc(map[string]any{"text": text, "logprobs": []any{}}))
		add("response.content_part.done", loc(map[string]any{"part": part}))
	}
	add("response.output_item.done", map[string]any{"output_index": 0, "item": item})
	add("response.completed", map[string]any{"response": resp})
	return events
}

// respFake serves POST /v1/responses, streamed or not, with
// defaultTurn; it keeps nothing and counts what it got.
type respFake struct {
	*httptest.Server
	apiKey string

	mu    sync.Mutex
	calls int
}

func newRespFake(t *testing.T, apiKey string) *respFake {
	f := &respFake{apiKey: apiKey}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// Calls returns how many requests the fake got.
func (f *respFake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *respFake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error"}})
	}
	if r.Header.Get("Authorization") != "Bearer "+f.apiKey {
		fail(http.StatusUnauthorized, "Incorrect API key provided")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/responses" {
		fail(http.StatusNotFound, "no such path "+r.Method+" "+r.URL.Path)
		return
	}
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	json.Unmarshal(body, &req)
	tr, err := defaultTurn(body)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	resp := responseObject(fmt.Sprintf("fake%d", n), req.Model, tr, len(body)/4)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range responseEvents(resp) {
		var typ struct {
			Type string `json:"type"`
		}
		json.Unmarshal([]byte(e), &typ)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ.Type, e)
		w.(http.Flusher).Flush()
	}
}
