package fakeopenai

import (
	"fmt"
	"strings"
)

// builder makes the response object and the stream events of one Turn.
type builder struct {
	req    *ResponsesRequest
	turn   *Turn
	n      int // the response's number, in its ids
	items  int // item ids made so far
	id     string
	output []any // the final output items
	usage  map[string]any
}

// createdAt is the created_at of every response: answers are
// reproducible.
const createdAt = 1700000000

func newBuilder(req *ResponsesRequest, turn *Turn, n int) *builder {
	b := &builder{req: req, turn: turn, n: n, id: fmt.Sprintf("resp_fake%04d", n)}
	status := "completed"
	if turn.Incomplete != "" {
		status = "incomplete"
	}
	if turn.FailCode == "" {
		if turn.Text != "" || len(turn.Calls) == 0 {
			b.output = append(b.output, map[string]any{
				"id": b.newID("msg"), "type": "message", "status": status, "role": "assistant",
				"content": []any{textPart(turn.Text)},
			})
		}
		for _, c := range turn.Calls {
			callID := c.CallID
			if callID == "" {
				callID = b.newID("call")
			}
			b.output = append(b.output, map[string]any{
				"id": b.newID("fc"), "type": "function_call", "status": "completed",
				"arguments": c.Arguments, "call_id": callID, "name": c.Name,
			})
		}
	}
	u := turn.Usage
	if u == nil {
		u = &ResponsesUsage{InputTokens: PromptTokens, OutputTokens: len(strings.Fields(turn.Text)) + 5*len(turn.Calls)}
	}
	b.usage = map[string]any{
		"input_tokens":          u.InputTokens,
		"input_tokens_details":  map[string]any{"cached_tokens": u.CachedTokens},
		"output_tokens":         u.OutputTokens,
		"output_tokens_details": map[string]any{"reasoning_tokens": u.ReasoningTokens},
		"total_tokens":          u.InputTokens + u.OutputTokens,
	}
	return b
}

// newID returns a new id with prefix ("msg", "fc", "call", …).
func (b *builder) newID(prefix string) string {
	b.items++
	return fmt.Sprintf("%s_fake%04d%04d", prefix, b.n, b.items)
}

func textPart(text string) map[string]any {
	return map[string]any{"type": "output_text", "annotations": []any{}, "logprobs": []any{}, "text": text}
}

// response is the response object with status, output and usage; the
// request's settings are echoed as OpenAI echoes them.
func (b *builder) response(status string, output []any, usage any) map[string]any {
	js := b.req.JSON
	echo := func(key string, def any) any {
		if v, ok := js[key]; ok {
			return v
		}
		return def
	}
	reasoning := map[string]any{"effort": nil, "summary": nil}
	if r, ok := js["reasoning"].(map[string]any); ok {
		for k, v := range r {
			reasoning[k] = v
		}
	}
	var prev any
	if b.req.PreviousResponseID != "" {
		prev = b.req.PreviousResponseID
	}
	if output == nil {
		output = []any{}
	}
	r := map[string]any{
		"id": b.id, "object": "response", "created_at": createdAt, "status": status,
		"background": false, "error": nil, "incomplete_details": nil,
		"instructions":      echo("instructions", nil),
		"max_output_tokens": echo("max_output_tokens", nil),
		"max_tool_calls":    echo("max_tool_calls", nil),
		"metadata":          echo("metadata", map[string]any{}),
		"model":             b.req.Model, "output": output,
		"parallel_tool_calls":  echo("parallel_tool_calls", true),
		"previous_response_id": prev,
		"prompt_cache_key":     echo("prompt_cache_key", nil),
		"reasoning":            reasoning,
		"safety_identifier":    nil,
		"service_tier":         "default",
		"store":                b.req.Store,
		"temperature":          echo("temperature", 1.0),
		"text":                 echo("text", map[string]any{"format": map[string]any{"type": "text"}, "verbosity": "medium"}),
		"tool_choice":          echo("tool_choice", "auto"),
		"tools":                echo("tools", []any{}),
		"top_logprobs":         0,
		"top_p":                echo("top_p", 1.0),
		"truncation":           echo("truncation", "disabled"),
		"usage":                usage,
		"user":                 nil,
	}
	if status == "completed" || status == "incomplete" || status == "failed" {
		r["completed_at"] = createdAt + 1
	}
	switch {
	case b.turn.Incomplete != "":
		r["incomplete_details"] = map[string]any{"reason": b.turn.Incomplete}
	case b.turn.FailCode != "" && status == "failed":
		r["error"] = map[string]any{"code": b.turn.FailCode, "message": b.turn.FailMessage}
	}
	return r
}

// final is the finished response object, as a non-streaming request
// gets it and GET returns it.
func (b *builder) final() map[string]any {
	switch {
	case b.turn.FailCode != "":
		return b.response("failed", nil, nil)
	case b.turn.Incomplete != "":
		return b.response("incomplete", b.output, b.usage)
	}
	return b.response("completed", b.output, b.usage)
}

// events is the stream of the response whose final object is final:
// response.created, response.in_progress, the events of each output
// item, and the terminal event, numbered by sequence_number from 0.
func (b *builder) events(final map[string]any) []map[string]any {
	var evs []map[string]any
	add := func(typ string, fields map[string]any) {
		fields["type"], fields["sequence_number"] = typ, len(evs)
		evs = append(evs, fields)
	}
	add("response.created", map[string]any{"response": b.response("in_progress", nil, nil)})
	add("response.in_progress", map[string]any{"response": b.response("in_progress", nil, nil)})
	for i, o := range b.output {
		item := o.(map[string]any)
		id := item["id"]
		switch item["type"] {
		case "message":
			text := item["content"].([]any)[0].(map[string]any)["text"].(string)
			add("response.output_item.added", map[string]any{"output_index": i, "item": map[string]any{
				"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []any{}}})
			add("response.content_part.added", map[string]any{"item_id": id, "output_index": i, "content_index": 0, "part": textPart("")})
			for j, word := range strings.SplitAfter(text, " ") {
				if word == "" && j > 0 {
					continue
				}
				add("response.output_text.delta", map[string]any{"item_id": id, "output_index": i, "content_index": 0, "delta": word, "logprobs": []any{}})
			}
			add("response.output_text.done", map[string]any{"item_id": id, "output_index": i, "content_index": 0, "text": text, "logprobs": []any{}})
			add("response.content_part.done", map[string]any{"item_id": id, "output_index": i, "content_index": 0, "part": textPart(text)})
		case "function_call":
			args := item["arguments"].(string)
			add("response.output_item.added", map[string]any{"output_index": i, "item": map[string]any{
				"id": id, "type": "function_call", "status": "in_progress", "arguments": "", "call_id": item["call_id"], "name": item["name"]}})
			half := len(args) / 2
			for half > 0 && half < len(args) && args[half]&0xC0 == 0x80 {
				half++ // split on a rune boundary
			}
			for _, d := range []string{args[:half], args[half:]} {
				if d != "" {
					add("response.function_call_arguments.delta", map[string]any{"item_id": id, "output_index": i, "delta": d})
				}
			}
			add("response.function_call_arguments.done", map[string]any{"item_id": id, "output_index": i, "arguments": args, "name": item["name"]})
		}
		add("response.output_item.done", map[string]any{"output_index": i, "item": item})
	}
	switch final["status"] {
	case "failed":
		add("response.failed", map[string]any{"response": final})
	case "incomplete":
		add("response.incomplete", map[string]any{"response": final})
	default:
		add("response.completed", map[string]any{"response": final})
	}
	return evs
}

// ResponsesAnswer is an Answer (for SetAnswer) holding the Responses
// API's answer to req with turn: the response object or, for a stream,
// its events. Unlike Server.Responses it stores nothing; turn's stream
// shaping fields other than ErrorAfter are not applied.
func ResponsesAnswer(req Request, turn *Turn) *Answer {
	r := &ResponsesRequest{Request: req, Store: true}
	r.Model, _ = req.JSON["model"].(string)
	r.Stream, _ = req.JSON["stream"].(bool)
	if s, ok := req.JSON["store"].(bool); ok {
		r.Store = s
	}
	b := newBuilder(r, turn, 0)
	final := b.final()
	if !r.Stream {
		return &Answer{Body: mustJSON(final), Header: turn.Header}
	}
	a := &Answer{TypedEvents: true, Header: turn.Header}
	for i, e := range b.events(final) {
		if i == turn.ErrorAfter && i > 0 {
			a.Events = append(a.Events, string(mustJSON(map[string]any{"type": "error", "code": orDefault(turn.ErrorCode, "server_error"), "message": turn.ErrorMessage, "param": nil, "sequence_number": i})))
			break
		}
		a.Events = append(a.Events, string(mustJSON(e)))
	}
	return a
}
