package anthropictest

import (
	"encoding/json"
	"strings"
)

// Message is an assistant Message, the answer to a /v1/messages call.
type Message struct {
	// ID and Model, when empty, are filled in by the fake: a new id, the
	// requested model.
	ID    string
	Model string
	// Content holds the message's blocks, in order.
	Content []Block
	// StopReason is end_turn when empty, or tool_use when Content calls a
	// tool. StopSequence, when set, is the stop sequence met (with
	// StopReason "stop_sequence").
	StopReason   string
	StopSequence string
	// Usage, when zero, is filled in by the fake (see Answer.Message).
	Usage Usage
}

// Block is a content block of an answer: text, tool_use, thinking or
// redacted_thinking.
type Block struct {
	Type string
	Text string // text
	// tool_use
	ID    string
	Name  string
	Input json.RawMessage // a JSON object
	// thinking
	Thinking  string
	Signature string
	Data      string // redacted_thinking
}

// TextBlock is a text block.
func TextBlock(text string) Block { return Block{Type: "text", Text: text} }

// ToolUseBlock is a tool_use block calling name with input (any value
// that marshals to a JSON object; nil means {}).
func ToolUseBlock(id, name string, input any) Block {
	raw, ok := input.(json.RawMessage)
	if !ok {
		raw, _ = json.Marshal(input)
	}
	if input == nil || string(raw) == "null" {
		raw = json.RawMessage(`{}`)
	}
	return Block{Type: "tool_use", ID: id, Name: name, Input: raw}
}

// ThinkingBlock is a thinking block with its signature.
func ThinkingBlock(thinking, signature string) Block {
	return Block{Type: "thinking", Thinking: thinking, Signature: signature}
}

// Usage is a Message's token usage. InputTokens excludes the tokens read
// from or written to the prompt cache, as Anthropic counts them.
type Usage struct {
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
}

func (u Usage) wire(outputTokens int64) map[string]any {
	return map[string]any{
		"input_tokens":                u.InputTokens,
		"cache_creation_input_tokens": u.CacheCreationInputTokens,
		"cache_read_input_tokens":     u.CacheReadInputTokens,
		"output_tokens":               outputTokens,
	}
}

// stopReason is m's stop_reason.
func (m Message) stopReason() string {
	if m.StopReason != "" {
		return m.StopReason
	}
	for _, b := range m.Content {
		if b.Type == "tool_use" {
			return "tool_use"
		}
	}
	return "end_turn"
}

// outputWords is the fake's output token count of m: its words, and five
// per tool call.
func (m Message) outputWords() int64 {
	var n int64
	for _, b := range m.Content {
		n += int64(len(strings.Fields(b.Text)) + len(strings.Fields(b.Thinking)))
		if b.Type == "tool_use" {
			n += 5
		}
	}
	return n
}

// wire is m as the API's JSON.
func (m Message) wire() map[string]any {
	content := make([]any, len(m.Content))
	for i, b := range m.Content {
		content[i] = b.wire(true)
	}
	var seq any
	if m.StopSequence != "" {
		seq = m.StopSequence
	}
	return map[string]any{
		"id": orDefault(m.ID, "msg_fake"), "type": "message", "role": "assistant",
		"model": orDefault(m.Model, "claude-fake"), "content": content,
		"stop_reason": m.stopReason(), "stop_sequence": seq,
		"usage": m.Usage.wire(m.Usage.OutputTokens),
	}
}

// wire is b as the API's JSON: whole, or as a content_block_start shows
// it (its text, input and thinking left to the deltas).
func (b Block) wire(whole bool) map[string]any {
	switch b.Type {
	case "text":
		return map[string]any{"type": "text", "text": pick(whole, b.Text)}
	case "tool_use":
		in := json.RawMessage(`{}`)
		if whole && len(b.Input) > 0 {
			in = b.Input
		}
		return map[string]any{"type": "tool_use", "id": b.ID, "name": b.Name, "input": in}
	case "thinking":
		return map[string]any{"type": "thinking", "thinking": pick(whole, b.Thinking), "signature": pick(whole, b.Signature)}
	case "redacted_thinking":
		return map[string]any{"type": "redacted_thinking", "data": b.Data}
	}
	return map[string]any{"type": b.Type}
}

func pick(whole bool, s string) string {
	if whole {
		return s
	}
	return ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Event is one server-sent event of a stream: "event: Type" and
// "data: Data".
type Event struct {
	Type string
	Data json.RawMessage
}

// NewEvent is the event of type typ whose data is v with "type": typ
// added (v marshals to a JSON object; a map is simplest).
func NewEvent(typ string, v map[string]any) Event {
	m := map[string]any{"type": typ}
	for k, x := range v {
		m[k] = x
	}
	b, _ := json.Marshal(m)
	return Event{Type: typ, Data: b}
}

// AppendSSE appends ev as it is sent: "event: …\ndata: …\n\n".
func (ev Event) AppendSSE(b []byte) []byte {
	b = append(b, "event: "...)
	b = append(b, ev.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, ev.Data...)
	return append(b, "\n\n"...)
}

// Ping is a ping event.
func Ping() Event { return NewEvent("ping", nil) }

// ErrorEvent is a mid-stream error event, e.g.
// ErrorEvent("overloaded_error", "Overloaded").
func ErrorEvent(typ, message string) Event {
	return NewEvent("error", map[string]any{"error": map[string]string{"type": typ, "message": message}})
}

// Events returns the stream Anthropic sends for m: message_start (usage
// with the input and cache counts, output_tokens 1), per block
// content_block_start, deltas (text word by word, tool input in two
// input_json_delta fragments, thinking then its signature_delta) and
// content_block_stop, with a ping after the first block's start, then
// message_delta (stop_reason, the final usage) and message_stop.
func Events(m Message) []Event {
	start := m.wire()
	start["content"], start["stop_reason"], start["stop_sequence"] = []any{}, nil, nil
	start["usage"] = m.Usage.wire(1)
	out := []Event{NewEvent("message_start", map[string]any{"message": start})}
	for i, b := range m.Content {
		out = append(out, NewEvent("content_block_start", map[string]any{"index": i, "content_block": b.wire(false)}))
		if i == 0 {
			out = append(out, Ping())
		}
		for _, d := range b.deltas() {
			out = append(out, NewEvent("content_block_delta", map[string]any{"index": i, "delta": d}))
		}
		out = append(out, NewEvent("content_block_stop", map[string]any{"index": i}))
	}
	var seq any
	if m.StopSequence != "" {
		seq = m.StopSequence
	}
	out = append(out,
		NewEvent("message_delta", map[string]any{
			"delta": map[string]any{"stop_reason": m.stopReason(), "stop_sequence": seq},
			"usage": m.Usage.wire(m.Usage.OutputTokens),
		}),
		NewEvent("message_stop", nil))
	return out
}

// deltas are the content_block_delta deltas of b.
func (b Block) deltas() []map[string]any {
	var out []map[string]any
	switch b.Type {
	case "text":
		for _, w := range splitWords(b.Text) {
			out = append(out, map[string]any{"type": "text_delta", "text": w})
		}
	case "tool_use":
		in := string(b.Input)
		if in == "" {
			in = "{}"
		}
		for _, part := range []string{in[:len(in)/2], in[len(in)/2:]} {
			out = append(out, map[string]any{"type": "input_json_delta", "partial_json": part})
		}
	case "thinking":
		for _, w := range splitWords(b.Thinking) {
			out = append(out, map[string]any{"type": "thinking_delta", "thinking": w})
		}
		out = append(out, map[string]any{"type": "signature_delta", "signature": b.Signature})
	}
	return out
}

// splitWords splits s into words, each but the first with its leading
// space: concatenated they are s again.
func splitWords(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s[1:], ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}
