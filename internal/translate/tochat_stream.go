package translate

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Chat Completions answers carried back to a Messages client, whole
// (ChatToMessagesResponse) and streamed (ChatStreamToMessages). The table
// in tochat.go says what becomes of each field.

// chatAnswerMessage is an answer's message with the fields only answers
// carry.
type chatAnswerMessage struct {
	chatMessage
	// Refusal is OpenAI's refusal text, shown as the answer's text.
	Refusal string `json:"refusal,omitempty"`
}

type chatAnswer struct {
	ID      string `json:"id"`
	Choices []struct {
		Message      *chatAnswerMessage `json:"message"`
		FinishReason *string            `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage `json:"usage"`
}

// ChatToMessagesResponse translates a chat.completion answer into an
// Anthropic Message naming model (the alias the client asked for). The
// table at the top of this file says what becomes of each field.
func ChatToMessagesResponse(chat []byte, model string) ([]byte, error) {
	var a chatAnswer
	if err := json.Unmarshal(chat, &a); err != nil {
		return nil, fmt.Errorf("translate: upstream chat.completion: %w", err)
	}
	if len(a.Choices) == 0 || a.Choices[0].Message == nil {
		return nil, errors.New("translate: upstream chat.completion has no choice")
	}
	c := a.Choices[0]
	text, err := chatText(c.Message.Content)
	if err != nil {
		return nil, err
	}
	if text == "" {
		text = c.Message.Refusal
	}
	if a.ID == "" {
		a.ID = newID()
	}
	out := msgResponse{ID: "msg_" + a.ID, Type: "message", Role: "assistant", Model: model, Content: []msgBlock{}}
	if text != "" {
		out.Content = append(out.Content, msgBlock{Type: "text", Text: text})
	}
	for i, tc := range c.Message.ToolCalls {
		id := tc.ID
		if id == "" {
			id = "toolu_" + a.ID + "_" + strconv.Itoa(i)
		}
		out.Content = append(out.Content, msgBlock{Type: "tool_use", ID: id, Name: tc.Function.Name, Input: toolInput(tc.Function.Arguments)})
	}
	finish := ""
	if c.FinishReason != nil {
		finish = *c.FinishReason
	}
	reason := stopReason(finish, len(c.Message.ToolCalls) > 0)
	out.StopReason = &reason
	if a.Usage != nil {
		out.Usage = messagesUsage(*a.Usage)
	}
	return marshal(out)
}

// chatText reads a message's content: a string, null, or text parts.
func chatText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []chatPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("translate: upstream message content: %w", err)
	}
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(p.Text)
	}
	return sb.String(), nil
}

// rawArgumentsKey holds tool arguments that are not a JSON object, so
// that nothing the model wrote is lost and the client's schema check
// reports the mistake to the model.
const rawArgumentsKey = "_raw_arguments"

// toolInput turns a tool call's arguments into a tool_use input: the
// object itself, {} for none, or the text wrapped under rawArgumentsKey.
func toolInput(args string) json.RawMessage {
	trimmed := strings.TrimSpace(args)
	if trimmed == "" {
		return json.RawMessage("{}")
	}
	if trimmed[0] == '{' && json.Valid([]byte(trimmed)) {
		var buf bytes.Buffer
		_ = json.Compact(&buf, []byte(trimmed)) // valid, so it compacts
		return buf.Bytes()
	}
	b, _ := json.Marshal(map[string]string{rawArgumentsKey: args})
	return b
}

// stopReason maps a finish_reason to a stop_reason.
func stopReason(finish string, toolCalls bool) string {
	switch {
	case finish == "length":
		return "max_tokens"
	case finish == "content_filter":
		return "refusal"
	case toolCalls, finish == "tool_calls", finish == "function_call":
		return "tool_use"
	}
	return "end_turn"
}

// messagesUsage maps Chat Completions usage to Messages usage: the
// cached part of the prompt is reported apart, as Anthropic does.
func messagesUsage(u chatUsage) msgUsage {
	var cached int64
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	cached = min(max(cached, 0), u.PromptTokens)
	return msgUsage{InputTokens: u.PromptTokens - cached, OutputTokens: u.CompletionTokens, CacheReadInputTokens: cached}
}

// ChatStreamToMessages wraps a stream of chat.completion.chunk data into
// a stream of Anthropic Messages events' data: each a JSON object whose
// "type" is the event's name, in the order clients require:
//
//	message_start
//	(content_block_start content_block_delta* content_block_stop)*
//	message_delta message_stop
//
// then io.EOF. Every event is given out as soon as the upstream chunk that
// causes it is read; one chunk may cause several. message_start carries
// zero usage; message_delta carries the usage and stop reason, sent once
// the upstream's usage chunk (which may follow the finish_reason chunk)
// or the end of the stream has arrived. Upstream errors are returned as
// they are, before message_stop; after message_stop the stream is
// complete for the client and the rest of the upstream is read and
// ignored. Text after a tool call starts a new text block. Tool call
// fragments must come call by call (as every known upstream sends them):
// a fragment for a call whose block is already closed is an error.
// reasoning_content is dropped. Close closes src.
func ChatStreamToMessages(src Stream, model string) Stream {
	return &chatToMessages{src: src, model: model}
}

type blockKind uint8

const (
	noBlock blockKind = iota
	textBlock
	toolBlock
)

// chatToMessages is the stream ChatStreamToMessages returns; its eventQueue holds
// the events of the chunk read last.
type chatToMessages struct {
	src   Stream
	model string

	eventQueue

	chunk   streamChunk // decoded into when scanChunk gives up; reused, its RawMessages keep their capacity
	scanned streamChunk // scanned into: slices of the chunk read last

	started, finished, usageAfterFinish, done bool
	open                                      blockKind
	blocks                                    int    // blocks started so far; the open one is blocks-1
	toolIndex                                 int    // upstream index of the open tool call
	toolsSeen                                 []int  // upstream indexes of the calls started
	toolID                                    []byte // raw id of the open tool call
	idInner                                   []byte // upstream id, without quotes
	finish                                    string
	usage                                     chatUsage
}

// streamChunk is the part of a chat.completion.chunk the translations
// (this one and ChatStreamToResponses) read. Fields are raw so that text
// and argument fragments, already valid JSON strings, are copied into
// the events as they are; scanChunk fills them with slices of the chunk,
// and a chunk it leaves to encoding/json is decoded into a reused one,
// which allocates nothing once its buffers have grown.
type streamChunk struct {
	ID      json.RawMessage `json:"id"`
	Choices []streamChoice  `json:"choices"`
	Usage   json.RawMessage `json:"usage"`
}

type streamChoice struct {
	Index        int             `json:"index"`
	Delta        streamDelta     `json:"delta"`
	FinishReason json.RawMessage `json:"finish_reason"`
}

type streamDelta struct {
	Content   json.RawMessage  `json:"content"`
	Refusal   json.RawMessage  `json:"refusal"`
	ToolCalls []streamToolCall `json:"tool_calls"`
}

type streamToolCall struct {
	Index    int             `json:"index"`
	ID       json.RawMessage `json:"id"`
	Function struct {
		Name      json.RawMessage `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// reset empties c for the next chunk, keeping every buffer's capacity:
// encoding/json decodes into the old elements of a slice without zeroing
// them first.
func (c *streamChunk) reset() {
	c.ID, c.Usage = c.ID[:0], c.Usage[:0]
	choices := c.Choices[:cap(c.Choices)]
	for i := range choices {
		ch := &choices[i]
		ch.Index = 0
		ch.FinishReason = ch.FinishReason[:0]
		d := &ch.Delta
		d.Content, d.Refusal = d.Content[:0], d.Refusal[:0]
		calls := d.ToolCalls[:cap(d.ToolCalls)]
		for j := range calls {
			tc := &calls[j]
			tc.Index = 0
			tc.ID = tc.ID[:0]
			tc.Function.Name, tc.Function.Arguments = tc.Function.Name[:0], tc.Function.Arguments[:0]
		}
		d.ToolCalls = d.ToolCalls[:0]
	}
	c.Choices = c.Choices[:0]
}

// readChunk reads a chunk into scanned, or, when scanChunk leaves it to
// encoding/json, decodes it into decoded.
func readChunk(data []byte, scanned, decoded *streamChunk) (*streamChunk, error) {
	if scanChunk(data, scanned) {
		return scanned, nil
	}
	decoded.reset()
	if err := json.Unmarshal(data, decoded); err != nil {
		return nil, fmt.Errorf("translate: upstream chat.completion.chunk: %w", err)
	}
	return decoded, nil
}

// isNone reports whether a raw field was absent or null.
func isNone(raw json.RawMessage) bool {
	return len(raw) == 0 || raw[0] == 'n'
}

// Next returns the next event's data.
func (s *chatToMessages) Next() ([]byte, error) {
	for {
		if ev, ok := s.pop(); ok {
			return ev, nil
		}
		s.clear()
		data, err := s.src.Next()
		if s.done {
			// The client has its whole message: drain the upstream and
			// show nothing more, not even a late error.
			if err != nil {
				return nil, io.EOF
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			s.end()
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := s.translate(data); err != nil {
			return nil, err
		}
	}
}

// Ready reports whether Next would return without reading the upstream:
// the gateway flushes what it wrote once it is false.
func (s *chatToMessages) Ready() bool { return s.queued() }

// Close closes the upstream stream.
func (s *chatToMessages) Close() error { return s.src.Close() }

// translate queues the events one upstream chunk causes.
func (s *chatToMessages) translate(data []byte) error {
	c, err := readChunk(data, &s.scanned, &s.chunk)
	if err != nil {
		return err
	}
	if !s.started {
		if len(c.ID) > 2 && c.ID[0] == '"' {
			s.idInner = append(s.idInner[:0], c.ID[1:len(c.ID)-1]...)
		}
		s.start()
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // n > 1 is not asked for; only the first choice is a Message
		}
		if err := s.delta(&ch.Delta); err != nil {
			return err
		}
		if !isNone(ch.FinishReason) {
			s.closeBlock()
			s.finished = true
			s.finish = finishName(ch.FinishReason)
		}
	}
	if !isNone(c.Usage) {
		var u chatUsage
		if err := json.Unmarshal(c.Usage, &u); err != nil {
			return fmt.Errorf("translate: upstream usage: %w", err)
		}
		s.usage = u
		s.usageAfterFinish = s.finished
	}
	if s.usageAfterFinish {
		s.end()
	}
	return nil
}

func (s *chatToMessages) delta(d *streamDelta) error {
	for _, text := range [2]json.RawMessage{d.Content, d.Refusal} {
		if err := s.text(text); err != nil {
			return err
		}
	}
	for i := range d.ToolCalls {
		if err := s.toolCall(&d.ToolCalls[i]); err != nil {
			return err
		}
	}
	return nil
}

// text queues a text fragment, opening a text block if need be.
func (s *chatToMessages) text(raw json.RawMessage) error {
	if isNone(raw) || string(raw) == `""` {
		return nil
	}
	if raw[0] != '"' {
		t, err := chatText(raw) // an array of parts, as a few servers send
		if err != nil || t == "" {
			return err
		}
		raw = appendJSONString(nil, t)
	}
	if s.open != textBlock {
		s.closeBlock()
		s.open = textBlock
		s.blocks++
		s.buf = append(s.buf, `{"type":"content_block_start","index":`...)
		s.buf = strconv.AppendInt(s.buf, int64(s.blocks-1), 10)
		s.buf = append(s.buf, `,"content_block":{"type":"text","text":""}}`...)
		s.endEvent()
	}
	s.buf = append(s.buf, `{"type":"content_block_delta","index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.blocks-1), 10)
	s.buf = append(s.buf, `,"delta":{"type":"text_delta","text":`...)
	s.buf = append(s.buf, raw...) // a valid JSON string already
	s.buf = append(s.buf, "}}"...)
	s.endEvent()
	return nil
}

// toolCall queues a tool call fragment: a new call index, or a new id
// (some servers number every call 0), starts a tool_use block; arguments
// become input_json_delta.
func (s *chatToMessages) toolCall(tc *streamToolCall) error {
	hasID := !isNone(tc.ID) && string(tc.ID) != `""`
	if s.open != toolBlock || tc.Index != s.toolIndex || (hasID && !bytes.Equal(tc.ID, s.toolID)) {
		if !hasID {
			for _, seen := range s.toolsSeen {
				if seen == tc.Index {
					return fmt.Errorf("translate: upstream sent arguments for tool call %d after another block began", tc.Index)
				}
			}
		}
		s.startTool(tc, hasID)
	}
	args := tc.Function.Arguments
	if isNone(args) || args[0] != '"' || string(args) == `""` {
		return nil
	}
	s.buf = append(s.buf, `{"type":"content_block_delta","index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.blocks-1), 10)
	s.buf = append(s.buf, `,"delta":{"type":"input_json_delta","partial_json":`...)
	s.buf = append(s.buf, args...) // a valid JSON string already
	s.buf = append(s.buf, "}}"...)
	s.endEvent()
	return nil
}

// startTool queues the content_block_start of a tool_use block; a call
// without an id gets one made of the upstream id and the block index.
func (s *chatToMessages) startTool(tc *streamToolCall, hasID bool) {
	s.closeBlock()
	s.open = toolBlock
	s.toolIndex = tc.Index
	s.toolID = append(s.toolID[:0], tc.ID...)
	s.toolsSeen = append(s.toolsSeen, tc.Index)
	s.blocks++
	s.buf = append(s.buf, `{"type":"content_block_start","index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.blocks-1), 10)
	s.buf = append(s.buf, `,"content_block":{"type":"tool_use","id":`...)
	if hasID && tc.ID[0] == '"' {
		s.buf = append(s.buf, tc.ID...)
	} else {
		s.buf = append(s.buf, `"toolu_`...)
		s.buf = append(s.buf, s.idInner...)
		s.buf = append(s.buf, '_')
		s.buf = strconv.AppendInt(s.buf, int64(s.blocks-1), 10)
		s.buf = append(s.buf, '"')
	}
	s.buf = append(s.buf, `,"name":`...)
	if isNone(tc.Function.Name) || tc.Function.Name[0] != '"' {
		s.buf = append(s.buf, `""`...)
	} else {
		s.buf = append(s.buf, tc.Function.Name...)
	}
	s.buf = append(s.buf, `,"input":{}}}`...)
	s.endEvent()
}

// start queues message_start.
func (s *chatToMessages) start() {
	s.started = true
	if len(s.idInner) == 0 {
		s.idInner = append(s.idInner, newID()...)
	}
	s.buf = append(s.buf, `{"type":"message_start","message":{"id":"msg_`...)
	s.buf = append(s.buf, s.idInner...)
	s.buf = append(s.buf, `","type":"message","role":"assistant","model":`...)
	s.buf = appendJSONString(s.buf, s.model)
	s.buf = append(s.buf, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}`...)
	s.endEvent()
}

// closeBlock queues the content_block_stop of the open block, if any.
func (s *chatToMessages) closeBlock() {
	if s.open == noBlock {
		return
	}
	s.open = noBlock
	s.buf = append(s.buf, `{"type":"content_block_stop","index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.blocks-1), 10)
	s.buf = append(s.buf, '}')
	s.endEvent()
}

// end queues what finishes the message: message_start if the upstream
// sent nothing, the open block's stop, message_delta and message_stop.
func (s *chatToMessages) end() {
	if s.done {
		return
	}
	if !s.started {
		s.start()
	}
	s.closeBlock()
	s.done = true
	u := messagesUsage(s.usage)
	s.buf = append(s.buf, `{"type":"message_delta","delta":{"stop_reason":"`...)
	s.buf = append(s.buf, stopReason(s.finish, len(s.toolsSeen) > 0)...)
	s.buf = append(s.buf, `","stop_sequence":null},"usage":{"input_tokens":`...)
	s.buf = strconv.AppendInt(s.buf, u.InputTokens, 10)
	s.buf = append(s.buf, `,"output_tokens":`...)
	s.buf = strconv.AppendInt(s.buf, u.OutputTokens, 10)
	s.buf = append(s.buf, `,"cache_read_input_tokens":`...)
	s.buf = strconv.AppendInt(s.buf, u.CacheReadInputTokens, 10)
	s.buf = append(s.buf, `,"cache_creation_input_tokens":0}}`...)
	s.endEvent()
	s.buf = append(s.buf, `{"type":"message_stop"}`...)
	s.endEvent()
}

// newID makes an id for an answer whose upstream gave none: "gw" and
// 24 random hex digits.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "gw" + hex.EncodeToString(b[:])
}

// finishName returns a finish_reason's value, without allocating for
// the known ones.
func finishName(raw json.RawMessage) string {
	switch string(raw) {
	case `"stop"`:
		return "stop"
	case `"length"`:
		return "length"
	case `"tool_calls"`:
		return "tool_calls"
	case `"function_call"`:
		return "function_call"
	case `"content_filter"`:
		return "content_filter"
	}
	var s string
	_ = json.Unmarshal(raw, &s) // anything else maps to end_turn anyway
	return s
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
