package translate

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// EventError is an error event in a Messages stream, or an error answer:
// Type is Anthropic's error type (overloaded_error, api_error, …), for
// the provider to map to a status.
type EventError struct {
	Type    string
	Message string
}

// Error returns the type and the message.
func (e *EventError) Error() string {
	return "upstream error event: " + e.Type + ": " + e.Message
}

// ErrStreamTruncated is returned by a stream from MessagesStreamToChat
// when its source ended before message_stop.
var ErrStreamTruncated = errors.New("translate: the Messages stream ended before message_stop")

// MessagesStreamToChat translates a stream of Anthropic Messages events'
// data into a stream of chat.completion.chunk data whose model is the
// client's alias:
//
//   - message_start: the role chunk, delta {role: assistant, content: ""};
//   - a text block's start (if it has text) and its text_delta: content
//     deltas;
//   - a tool_use block's start: a tool_calls delta {index, id, type,
//     function {name, arguments: ""}}, tool call indexes counting tool
//     calls only; its input_json_delta: arguments deltas;
//   - message_delta with a stop_reason: a chunk with the finish_reason;
//   - message_stop: the usage chunk (choices: []), then io.EOF;
//   - an error event: an *EventError;
//   - thinking and signature deltas, content_block_stop, ping and unknown
//     events: nothing.
//
// Every chunk carries the same id, "chatcmpl-" + the message id. Each
// event's chunk is returned as soon as the event is read. A source that
// ends before message_stop gives ErrStreamTruncated. Close closes src.
func MessagesStreamToChat(src Stream, model string) Stream {
	return &chatChunkStream{src: src, model: model, created: time.Now().Unix(), buf: make([]byte, 0, 512)}
}

// chatChunkStream is MessagesStreamToChat's stream. It reads events with
// jsonscan rather than decoding them: an event's strings (text, partial
// JSON, ids) are copied into the chunk as the upstream escaped them, so a
// text delta costs no allocation.
type chatChunkStream struct {
	src     Stream
	model   string
	created int64
	prefix  []byte // `{"id":…,"object":…,"created":…,"model":…,`
	buf     []byte
	// tools maps content block indexes to tool call indexes.
	tools      []int64
	started    bool // the role was sent
	finishSent bool
	usage      streamUsage
	// pendingUsage: message_stop came without a finish_reason, whose
	// chunk went first; the usage chunk is next.
	pendingUsage bool
	err          error // returned by every later Next: io.EOF, or why the stream broke
}

// streamUsage is a stream's token counts so far.
type streamUsage struct {
	input, output, cacheRead, cacheWrite int64
}

// Next returns the next chunk.
func (s *chatChunkStream) Next() ([]byte, error) {
	for {
		if s.err != nil {
			return nil, s.err
		}
		if s.pendingUsage {
			s.pendingUsage = false
			s.err = io.EOF
			return s.usageChunk(), nil
		}
		ev, err := s.src.Next()
		if err != nil {
			if err == io.EOF {
				err = ErrStreamTruncated
			}
			s.err = err
			return nil, err
		}
		b, err := s.chunk(ev)
		if err != nil {
			s.err = err
			return nil, err
		}
		if b != nil {
			return b, nil
		}
	}
}

// Close closes the source.
func (s *chatChunkStream) Close() error {
	if s.err == nil {
		s.err = io.EOF
	}
	return s.src.Close()
}

// chunk translates one event; nil means the event has no chunk.
func (s *chatChunkStream) chunk(ev []byte) ([]byte, error) {
	if !jsonscan.Valid(ev) {
		return nil, fmt.Errorf("translate: a Messages stream event is not JSON: %.200q", ev)
	}
	switch string(jsonscan.Field(ev, "type")) {
	case `"message_start"`:
		return s.messageStart(jsonscan.Field(ev, "message")), nil
	case `"content_block_start"`:
		return s.blockStart(jsonscan.Field(ev, "index"), jsonscan.Field(ev, "content_block"))
	case `"content_block_delta"`:
		return s.blockDelta(jsonscan.Field(ev, "index"), jsonscan.Field(ev, "delta")), nil
	case `"message_delta"`:
		s.usage.add(jsonscan.Field(ev, "usage"))
		return s.messageDelta(jsonscan.Field(jsonscan.Field(ev, "delta"), "stop_reason")), nil
	case `"message_stop"`:
		if !s.finishSent {
			s.pendingUsage = true
			return s.finishChunk(`"stop"`), nil
		}
		s.err = io.EOF
		return s.usageChunk(), nil
	case `"error"`:
		return nil, eventError(jsonscan.Field(ev, "error"))
	}
	// ping, content_block_stop, and event types added later.
	return nil, nil
}

func (s *chatChunkStream) messageStart(msg []byte) []byte {
	s.usage.add(jsonscan.Field(msg, "usage"))
	if s.prefix != nil {
		return nil // a second message_start
	}
	s.setPrefix(rawJSONString(jsonscan.Field(msg, "id")))
	s.started = true
	b := append(s.buf[:0], s.prefix...)
	b = append(b, `"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`...)
	s.buf = b
	return b
}

// setPrefix writes the start every chunk shares. id is the message id as
// a raw JSON string; without one (no message_start) the id is random.
func (s *chatChunkStream) setPrefix(id []byte) {
	p := make([]byte, 0, 96+len(id)+len(s.model))
	p = append(p, `{"id":"chatcmpl-`...)
	if len(id) >= 2 {
		p = append(p, id[1:]...) // the id's text and closing quote
	} else {
		p = append(p, rand.Text()...)
		p = append(p, '"')
	}
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, s.created, 10)
	p = append(p, `,"model":`...)
	model, _ := marshalUnescaped(s.model) // a string always marshals
	p = append(p, model...)
	s.prefix = append(p, ',')
}

// begin starts a chunk with one choice, up to the inside of its delta;
// the first chunk of a stream without message_start brings the role.
// more says whether the caller adds members to the delta.
func (s *chatChunkStream) begin(more bool) []byte {
	if s.prefix == nil {
		s.setPrefix(nil)
	}
	b := append(s.buf[:0], s.prefix...)
	b = append(b, `"choices":[{"index":0,"delta":{`...)
	if !s.started {
		s.started = true
		b = append(b, `"role":"assistant"`...)
		if more {
			b = append(b, ',')
		}
	}
	return b
}

// end closes a chunk begun with begin, with a null finish_reason.
func (s *chatChunkStream) end(b []byte) []byte {
	b = append(b, `},"logprobs":null,"finish_reason":null}]}`...)
	s.buf = b
	return b
}

func (s *chatChunkStream) blockStart(index, block []byte) ([]byte, error) {
	switch string(jsonscan.Field(block, "type")) {
	case `"text"`:
		return s.content(rawJSONString(jsonscan.Field(block, "text"))), nil
	case `"tool_use"`:
		n, ok := jsonscan.Count(index)
		id := rawJSONString(jsonscan.Field(block, "id"))
		if !ok || len(id) <= 2 {
			// A client tells a new call from more arguments by its id.
			return nil, errors.New("translate: a Messages stream has a tool_use block without index or id")
		}
		k := len(s.tools)
		s.tools = append(s.tools, n)
		b := s.begin(true)
		b = append(b, `"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, `,"id":`...)
		b = append(b, id...)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendRaw(b, rawJSONString(jsonscan.Field(block, "name")))
		b = append(b, `,"arguments":""}}]`...)
		return s.end(b), nil
	}
	// thinking, redacted_thinking, server tool blocks.
	return nil, nil
}

func (s *chatChunkStream) blockDelta(index, delta []byte) []byte {
	switch string(jsonscan.Field(delta, "type")) {
	case `"text_delta"`:
		return s.content(rawJSONString(jsonscan.Field(delta, "text")))
	case `"input_json_delta"`:
		args := rawJSONString(jsonscan.Field(delta, "partial_json"))
		k, ok := s.toolCall(index)
		if !ok || len(args) <= 2 {
			return nil
		}
		b := s.begin(true)
		b = append(b, `"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, `,"function":{"arguments":`...)
		b = append(b, args...)
		b = append(b, `}}]`...)
		return s.end(b)
	}
	// thinking_delta, signature_delta, citations_delta.
	return nil
}

// content is a chunk of text, given as a raw JSON string; nil if empty.
func (s *chatChunkStream) content(text []byte) []byte {
	if len(text) <= 2 {
		return nil
	}
	b := s.begin(true)
	b = append(b, `"content":`...)
	b = append(b, text...)
	return s.end(b)
}

// toolCall finds the tool call index of a content block index.
func (s *chatChunkStream) toolCall(index []byte) (int, bool) {
	n, ok := jsonscan.Count(index)
	if !ok {
		return 0, false
	}
	for k := len(s.tools) - 1; k >= 0; k-- {
		if s.tools[k] == n {
			return k, true
		}
	}
	return 0, false
}

// messageDelta sends the finish_reason, once, when the stop reason is
// known.
func (s *chatChunkStream) messageDelta(stop []byte) []byte {
	stop = rawJSONString(stop)
	if stop == nil || s.finishSent {
		return nil
	}
	// Stop reasons are plain ASCII names; an escaped one maps to "stop".
	return s.finishChunk(`"` + finishReasonOfStopName(string(stop[1:len(stop)-1])) + `"`)
}

// finishChunk is the chunk with the finish_reason (a JSON string).
func (s *chatChunkStream) finishChunk(reason string) []byte {
	s.finishSent = true
	b := s.begin(false)
	b = append(b, `},"logprobs":null,"finish_reason":`...)
	b = append(b, reason...)
	b = append(b, `}]}`...)
	s.buf = b
	return b
}

// usageChunk is the last chunk: no choices, the usage.
func (s *chatChunkStream) usageChunk() []byte {
	if s.prefix == nil {
		s.setPrefix(nil)
	}
	u := s.usage
	prompt := u.input + u.cacheRead + u.cacheWrite
	b := append(s.buf[:0], s.prefix...)
	b = append(b, `"choices":[],"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, prompt, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.output, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, prompt+u.output, 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, u.cacheRead, 10)
	b = append(b, `}}}`...)
	s.buf = b
	return b
}

// add reads a usage object, message_start's then message_delta's: the
// counts it has replace those read before (message_delta's are
// cumulative).
func (u *streamUsage) add(usage []byte) {
	set := func(dst *int64, name string) {
		if n, ok := jsonscan.Count(jsonscan.Field(usage, name)); ok {
			*dst = n
		}
	}
	set(&u.output, "output_tokens")
	set(&u.input, "input_tokens")
	set(&u.cacheRead, "cache_read_input_tokens")
	set(&u.cacheWrite, "cache_creation_input_tokens")
}

// eventError reads an error event's error.
func eventError(raw []byte) error {
	var e msgAnswerError
	if err := json.Unmarshal(raw, &e); err != nil || e.Type == "" {
		return &EventError{Type: "api_error", Message: "the upstream sent an error event without details"}
	}
	return &EventError{Type: e.Type, Message: e.Message}
}

// rawJSONString returns raw if it is a JSON string, else nil.
func rawJSONString(raw []byte) []byte {
	if len(raw) < 2 || raw[0] != '"' {
		return nil
	}
	return raw
}

// appendRaw appends a raw JSON string, or "" for nil.
func appendRaw(b, raw []byte) []byte {
	if raw == nil {
		return append(b, `""`...)
	}
	return append(b, raw...)
}
