package bedrocktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// AnthropicVersion is the anthropic_version Bedrock requires.
const AnthropicVersion = "bedrock-2023-05-31"

// KnownBetas are the anthropic_beta flags the fake accepts by default:
// those Bedrock documents for Claude's Messages API.
var KnownBetas = []string{
	"computer-use-2024-10-22", "computer-use-2025-01-24", "computer-use-2025-11-24",
	"token-efficient-tools-2025-02-19", "interleaved-thinking-2025-05-14", "output-128k-2025-02-19",
	"dev-full-thinking-2025-05-14", "context-1m-2025-08-07", "context-management-2025-06-27",
	"effort-2025-11-24", "tool-search-tool-2025-10-19", "tool-examples-2025-10-29",
}

// MessagesCall is an Anthropic Messages call the fake received: an
// invoke or invoke-with-response-stream call whose body is an Anthropic
// body, or a count-tokens call.
type MessagesCall struct {
	*Call
	// Anthropic is the Anthropic body as Bedrock got it: the call's
	// body, or for count-tokens the one in input.invokeModel.body.
	Anthropic []byte
	// Request is Anthropic decoded.
	Request MessagesRequest
}

// MessagesRequest is the part of an Anthropic body a handler reads.
type MessagesRequest struct {
	AnthropicVersion string          `json:"anthropic_version"`
	AnthropicBeta    []string        `json:"anthropic_beta"`
	MaxTokens        int             `json:"max_tokens"`
	System           json.RawMessage `json:"system"`
	Messages         []Message       `json:"messages"`
	Tools            []Tool          `json:"tools"`
	Thinking         json.RawMessage `json:"thinking"`
}

// Message is one turn of a request.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Content is a message's (or tool result's) content: a string is read
// as one text block.
type Content []Block

// UnmarshalJSON reads a string or an array of blocks.
func (c *Content) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content{{Type: "text", Text: s}}
		return nil
	}
	return json.Unmarshal(b, (*[]Block)(c))
}

// Text joins the text of the text blocks.
func (c Content) Text() string {
	var s strings.Builder
	for _, b := range c {
		if b.Type == "text" {
			s.WriteString(b.Text)
		}
	}
	return s.String()
}

// Block is a content block.
type Block struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      Content         `json:"content,omitempty"`
	IsError      bool            `json:"is_error,omitempty"`
	Thinking     string          `json:"thinking,omitempty"`
	Signature    string          `json:"signature,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// Tool is a tool the request offers.
type Tool struct {
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// LastUser returns the last user turn's content, or nil.
func (r *MessagesRequest) LastUser() Content {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return nil
}

// ToolResults returns the tool_result blocks of the last user turn.
func (r *MessagesRequest) ToolResults() []Block {
	var out []Block
	for _, b := range r.LastUser() {
		if b.Type == "tool_result" {
			out = append(out, b)
		}
	}
	return out
}

// MessagesReply is the fake's answer to a MessagesCall.
type MessagesReply struct {
	// Message is an Anthropic Message JSON (see TextMessage): the
	// answer of an invoke call, and of an invoke-with-response-stream
	// call without Events, sent as MessageEvents(Message).
	Message []byte
	// Events are a stream's answer, sent in order.
	Events []StreamEvent
	// InputTokens is a count-tokens answer.
	InputTokens int
	// Error, when set, is answered instead (see Error).
	Error *Reply
	// HoldOpen keeps a stream open after Events until the client goes
	// away; Cut breaks the connection after Events.
	HoldOpen, Cut bool
	// Header holds headers added to the answer.
	Header http.Header
}

// StreamEvent is one frame of an InvokeModelWithResponseStream answer:
// a chunk holding Data, or an exception.
type StreamEvent struct {
	// Data is an Anthropic event's JSON ({"type":"message_start",…}).
	Data []byte
	// Exception, when set, makes the frame an exception of this type
	// (throttlingException, modelStreamErrorException,
	// internalServerException, serviceUnavailableException,
	// validationException, modelTimeoutException) with Message.
	Exception string
	Message   string
	// Wait, when set, holds the frame until it is closed (or the client
	// goes away): a model slow to go on.
	Wait <-chan struct{}
}

// Exception is a stream exception frame.
func Exception(typ, message string) StreamEvent {
	return StreamEvent{Exception: typ, Message: message}
}

// isMessagesBody reports whether an invoke body is Anthropic's Messages
// API rather than, say, a Titan embeddings request.
func isMessagesBody(body []byte) bool {
	var probe struct {
		Version *json.RawMessage `json:"anthropic_version"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.Version != nil
}

// serveMessages checks and answers an Anthropic Messages call.
func (s *Server) serveMessages(w http.ResponseWriter, r *http.Request, c *Call) {
	mc := &MessagesCall{Call: c, Anthropic: c.Body}
	if c.Operation == OpCountTokens {
		var in struct {
			Input struct {
				InvokeModel *struct {
					Body []byte `json:"body"` // base64, decoded by encoding/json
				} `json:"invokeModel"`
			} `json:"input"`
		}
		if err := json.Unmarshal(c.Body, &in); err != nil || in.Input.InvokeModel == nil {
			writeReply(w, Error(http.StatusBadRequest, "ValidationException", "this fake counts tokens of input.invokeModel bodies only"))
			return
		}
		if !foundationModel(c.ModelID) {
			writeReply(w, Error(http.StatusBadRequest, "ValidationException", "The provided model doesn't support counting tokens."))
			return
		}
		mc.Anthropic = in.Input.InvokeModel.Body
	}
	if reply := s.checkMessages(mc); reply != nil {
		writeReply(w, reply)
		return
	}
	h := s.Messages
	if h == nil {
		h = EchoMessages
	}
	reply := h(mc)
	if s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	if reply.Error != nil {
		writeReply(w, reply.Error)
		return
	}
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	for k, v := range reply.Header {
		w.Header()[k] = v
	}
	switch c.Operation {
	case OpCountTokens:
		b, _ := json.Marshal(map[string]int{"inputTokens": reply.InputTokens})
		writeReply(w, &Reply{Body: b})
	case OpInvoke:
		in, out := usageOf(reply.Message)
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(in))
		w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", strconv.Itoa(out))
		writeReply(w, &Reply{Body: reply.Message})
	default:
		events := reply.Events
		if events == nil {
			events = MessageEvents(reply.Message)
		}
		s.writeChunks(w, r, events)
		if reply.HoldOpen {
			s.hold(r)
		}
		if reply.Cut {
			panic(http.ErrAbortHandler)
		}
	}
}

// foundationModel reports whether id is a model id CountTokens takes:
// not an ARN, not an inference profile (geo.anthropic.…).
func foundationModel(id string) bool {
	if strings.HasPrefix(id, "arn:") {
		return false
	}
	_, rest, _ := strings.Cut(id, ".")
	return !strings.HasPrefix(rest, "anthropic.")
}

// checkMessages checks an Anthropic body as Bedrock's schema does.
func (s *Server) checkMessages(mc *MessagesCall) *Reply {
	invalid := func(msg string) *Reply { return Error(http.StatusBadRequest, "ValidationException", msg) }
	var top map[string]json.RawMessage
	if err := json.Unmarshal(mc.Anthropic, &top); err != nil {
		return invalid("Malformed input request: the body is not a JSON object")
	}
	for _, k := range []string{"model", "stream"} {
		if _, ok := top[k]; ok {
			return invalid("Malformed input request: #: extraneous key [" + k + "] is not permitted, please reformat your input and try again.")
		}
	}
	for _, k := range []string{"anthropic_version", "max_tokens", "messages"} {
		if _, ok := top[k]; !ok {
			return invalid("Malformed input request: #: required key [" + k + "] not found, please reformat your input and try again.")
		}
	}
	if err := json.Unmarshal(mc.Anthropic, &mc.Request); err != nil {
		return invalid("Malformed input request: " + err.Error())
	}
	if mc.Request.AnthropicVersion != AnthropicVersion {
		return invalid("Malformed input request: #/anthropic_version: " + mc.Request.AnthropicVersion + " is not a valid enum value")
	}
	known := s.Betas
	if known == nil {
		known = KnownBetas
	}
	for _, b := range mc.Request.AnthropicBeta {
		if !slices.Contains(known, b) {
			return invalid("invalid beta flag")
		}
	}
	if mc.Request.MaxTokens < 1 {
		return invalid("Malformed input request: #/max_tokens: must be at least 1")
	}
	return nil
}

// writeChunks writes events as InvokeModelWithResponseStream frames: a
// chunk's payload is {"bytes":"<base64 of the event>","p":"…"}, with
// the padding field Bedrock adds to hide the events' lengths.
func (s *Server) writeChunks(w http.ResponseWriter, r *http.Request, events []StreamEvent) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	enc := eventstream.NewEncoder()
	f, _ := w.(http.Flusher)
	for i, ev := range events {
		if ev.Wait != nil {
			select {
			case <-ev.Wait:
			case <-r.Context().Done():
				return
			case <-s.closing:
				return
			}
		}
		var msg eventstream.Message
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		if ev.Exception != "" {
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
			msg.Headers.Set(":exception-type", eventstream.StringValue(ev.Exception))
			fields := map[string]any{"message": ev.Message}
			if ev.Exception == "modelStreamErrorException" {
				fields["originalStatusCode"], fields["originalMessage"] = 500, ev.Message
			}
			msg.Payload, _ = json.Marshal(fields)
		} else {
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
			msg.Headers.Set(":event-type", eventstream.StringValue("chunk"))
			msg.Payload, _ = json.Marshal(map[string]any{"bytes": ev.Data, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGH"[:1+i%30]})
		}
		if err := enc.Encode(w, msg); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
		if s.Latency > 0 && i == 0 {
			time.Sleep(s.Latency / 5)
		}
	}
}

// message is the part of an Anthropic Message MessageEvents reads.
type message struct {
	ID           string          `json:"id"`
	Model        string          `json:"model"`
	Content      []Block         `json:"content"`
	StopReason   string          `json:"stop_reason"`
	StopSequence *string         `json:"stop_sequence"`
	Usage        json.RawMessage `json:"usage"`
}

// usageOf returns a Message's input and output tokens.
func usageOf(msg []byte) (in, out int) {
	var m struct {
		Usage struct {
			In  int `json:"input_tokens"`
			Out int `json:"output_tokens"`
		} `json:"usage"`
	}
	json.Unmarshal(msg, &m)
	return m.Usage.In, m.Usage.Out
}

// MessageEvents splits an Anthropic Message into the events Bedrock
// streams for it: message_start (empty content, the usage but
// output_tokens), then per block content_block_start, deltas
// (text_delta per word, input_json_delta in two halves, thinking_delta
// then signature_delta) and content_block_stop, then message_delta
// (stop reason, output_tokens) and message_stop, to which Bedrock adds
// amazon-bedrock-invocationMetrics.
func MessageEvents(msg []byte) []StreamEvent {
	var m message
	json.Unmarshal(msg, &m)
	in, out := usageOf(msg)
	ev := func(v map[string]any) StreamEvent { return StreamEvent{Data: typeFirst(v)} }
	var usage map[string]any
	json.Unmarshal(m.Usage, &usage)
	if usage == nil {
		usage = map[string]any{"input_tokens": 0}
	}
	usage["output_tokens"] = 1
	events := []StreamEvent{ev(map[string]any{"type": "message_start", "message": map[string]any{
		"id": m.ID, "type": "message", "role": "assistant", "model": m.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": usage}})}
	for i, b := range m.Content {
		start := map[string]any{"type": b.Type}
		var deltas []map[string]any
		switch b.Type {
		case "text":
			start["text"] = ""
			for _, w := range splitWords(b.Text) {
				deltas = append(deltas, map[string]any{"type": "text_delta", "text": w})
			}
		case "tool_use":
			start["id"], start["name"], start["input"] = b.ID, b.Name, map[string]any{}
			in := string(b.Input)
			for _, part := range []string{in[:len(in)/2], in[len(in)/2:]} {
				deltas = append(deltas, map[string]any{"type": "input_json_delta", "partial_json": part})
			}
		case "thinking":
			start["thinking"], start["signature"] = "", ""
			deltas = append(deltas, map[string]any{"type": "thinking_delta", "thinking": b.Thinking},
				map[string]any{"type": "signature_delta", "signature": b.Signature})
		default:
			continue
		}
		events = append(events, ev(map[string]any{"type": "content_block_start", "index": i, "content_block": json.RawMessage(typeFirst(start))}))
		for _, d := range deltas {
			events = append(events, ev(map[string]any{"type": "content_block_delta", "index": i, "delta": json.RawMessage(typeFirst(d))}))
		}
		events = append(events, ev(map[string]any{"type": "content_block_stop", "index": i}))
	}
	events = append(events,
		ev(map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": m.StopReason, "stop_sequence": m.StopSequence},
			"usage": map[string]int{"output_tokens": out}}),
		ev(map[string]any{"type": "message_stop", "amazon-bedrock-invocationMetrics": map[string]int{
			"inputTokenCount": in, "outputTokenCount": out, "invocationLatency": 420, "firstByteLatency": 42}}))
	return events
}

// typeFirst marshals v with its "type" first, as Anthropic writes its
// events (clients do not depend on it; people reading them do).
func typeFirst(v map[string]any) []byte {
	typ, _ := json.Marshal(v["type"])
	delete(v, "type")
	rest, _ := json.Marshal(v)
	b := append([]byte(`{"type":`), typ...)
	if len(rest) > 2 {
		b = append(append(b, ','), rest[1:]...)
		return b
	}
	return append(b, '}')
}

// TextMessage is an Anthropic Message answering text, with the given
// token counts.
func TextMessage(text string, inputTokens, outputTokens int) []byte {
	return newMessage([]any{map[string]string{"type": "text", "text": text}}, "end_turn", inputTokens, outputTokens)
}

// ToolUseMessage is an Anthropic Message calling tool name with input
// (marshalled to JSON), with the given token counts.
func ToolUseMessage(id, name string, input any, inputTokens, outputTokens int) []byte {
	return newMessage([]any{map[string]any{"type": "tool_use", "id": id, "name": name, "input": input}}, "tool_use", inputTokens, outputTokens)
}

func newMessage(content []any, stop string, in, out int) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": "msg_bdrk_fake1", "type": "message", "role": "assistant", "model": "claude-fake-bedrock",
		"content": content, "stop_reason": stop, "stop_sequence": nil,
		"usage": map[string]int{"input_tokens": in, "output_tokens": out, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
	})
	return b
}

// EchoMessages is the fake's default Anthropic model. After tool
// results it answers "The tool said: …" (their text); when tools are
// offered it calls the first one (required properties set to "test");
// otherwise "You said: <last user text>". Tokens count words; a
// count-tokens call answers the input's.
func EchoMessages(c *MessagesCall) *MessagesReply {
	req := &c.Request
	in := len(strings.Fields(string(textOf(req))))
	if c.Operation == OpCountTokens {
		return &MessagesReply{InputTokens: in}
	}
	if results := req.ToolResults(); len(results) > 0 {
		var said []string
		for _, r := range results {
			said = append(said, r.Content.Text())
		}
		text := "The tool said: " + strings.Join(said, " ")
		return &MessagesReply{Message: TextMessage(text, in, len(strings.Fields(text)))}
	}
	if len(req.Tools) > 0 {
		t := req.Tools[0]
		var schema struct {
			Required []string `json:"required"`
		}
		json.Unmarshal(t.InputSchema, &schema)
		input := map[string]string{}
		for _, r := range schema.Required {
			input[r] = "test"
		}
		return &MessagesReply{Message: ToolUseMessage("toolu_bdrk_fake1", t.Name, input, in, 5)}
	}
	text := "You said: " + req.LastUser().Text()
	return &MessagesReply{Message: TextMessage(text, in, len(strings.Fields(text)))}
}

// textOf gathers the request's text (system and messages) for counting.
func textOf(req *MessagesRequest) []byte {
	var b bytes.Buffer
	var system Content
	if json.Unmarshal(req.System, &system) == nil {
		b.WriteString(system.Text())
	}
	for _, m := range req.Messages {
		fmt.Fprintf(&b, " %s", m.Content.Text())
	}
	return b.Bytes()
}
