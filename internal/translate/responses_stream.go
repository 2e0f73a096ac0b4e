package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ChatStreamToResponses wraps a stream of chat.completion.chunk data into
// a stream of Responses events' data: each a JSON object with "type" and
// "sequence_number" (0, 1, 2, …), in the order OpenAI sends them and
// clients (the SDKs' stream helpers, Codex) require:
//
//	response.created response.in_progress
//	per text:      response.output_item.added (message, in_progress)
//	               response.content_part.added (output_text "")
//	               response.output_text.delta* response.output_text.done
//	               response.content_part.done response.output_item.done
//	per refusal:   the same with response.refusal.delta / .done, inside
//	               the message item
//	per tool call: response.output_item.added (function_call, arguments "")
//	               response.function_call_arguments.delta*
//	               response.function_call_arguments.done
//	               response.output_item.done
//	response.completed, or response.incomplete (finish_reason length or
//	content_filter), with the whole response: output and usage
//
// then io.EOF. response.created and response.in_progress come at once,
// before the upstream is read; every other event as soon as the upstream
// chunk causing it is read (one chunk may cause several). The terminal
// event waits for the upstream's usage chunk, which may follow the
// finish_reason chunk, or for the end of the stream. An upstream error
// before the terminal event is returned as it is (the gateway writes an
// "error" event: no response.failed is made up); after it the stream is
// complete for the client and the rest of the upstream is read and
// ignored. Tool call fragments must come call by call, as every known
// upstream sends them: a fragment for a call already closed is an error.
// reasoning_content is dropped. Close closes src.
func ChatStreamToResponses(src Stream, r *ResponsesRequest, m ResponseMeta) Stream {
	return &chatToResponses{src: src, r: r, m: m, base: idBase(m.ID)}
}

type itemKind uint8

const (
	noItem itemKind = iota
	messageItem
	functionItem
)

type partKind uint8

const (
	noPart partKind = iota
	textPart
	refusalPart
)

// chatToResponses is the stream ChatStreamToResponses returns; its eventQueue holds
// the events of the chunk read last.
type chatToResponses struct {
	src  Stream
	r    *ResponsesRequest
	m    ResponseMeta
	base string

	eventQueue
	seq int64

	chunk   respChunk   // decoded into when scanChunk gives up; reused, its RawMessages keep their capacity
	scanned streamChunk // what the translation reads: scanned into, or copied from chunk

	started, finished, usageAfterFinish, done bool
	finish                                    string
	usage                                     respUsage
	hasUsage                                  bool

	items int      // output items added so far; the open one is items-1
	open  itemKind // the open item
	part  partKind // the open content part of the open message
	parts int      // content parts of the open message so far
	text  []byte   // the open part's text, inner JSON
	done1 []byte   // the open message's finished parts, comma-separated

	toolIndex int    // upstream index of the open call
	toolID    []byte // its upstream id, raw
	callID    []byte // its call_id, a JSON string
	name      []byte // its name, a JSON string
	args      []byte // its arguments so far, inner JSON
	toolsSeen []int  // upstream indexes of the calls started

	output []byte // the finished items, comma-separated, for the terminal event
}

// respChunk is what a chunk that scanChunk leaves to encoding/json is
// decoded into: a streamChunk without the id, kept apart so that
// decoding errors name the types they always named. Raw fields, so that
// decoding into a reused chunk allocates nothing once the buffers have
// grown.
type respChunk struct {
	Choices []respChunkChoice `json:"choices"`
	Usage   json.RawMessage   `json:"usage"`
}

type respChunkChoice struct {
	Index        int             `json:"index"`
	Delta        respChunkDelta  `json:"delta"`
	FinishReason json.RawMessage `json:"finish_reason"`
}

type respChunkDelta struct {
	Content   json.RawMessage     `json:"content"`
	Refusal   json.RawMessage     `json:"refusal"`
	ToolCalls []respChunkToolCall `json:"tool_calls"`
}

type respChunkToolCall struct {
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
func (c *respChunk) reset() {
	c.Usage = c.Usage[:0]
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

// Next returns the next event's data.
func (s *chatToResponses) Next() ([]byte, error) {
	for {
		if ev, ok := s.pop(); ok {
			return ev, nil
		}
		s.clear()
		if !s.started {
			s.start()
			continue
		}
		data, err := s.src.Next()
		if s.done {
			// The client has its whole response: drain the upstream and
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
func (s *chatToResponses) Ready() bool { return s.queued() || !s.started }

// Close closes the upstream stream.
func (s *chatToResponses) Close() error { return s.src.Close() }

// translate queues the events one upstream chunk causes.
func (s *chatToResponses) translate(data []byte) error {
	c, err := s.read(data)
	if err != nil {
		return err
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // n > 1 is not asked for
		}
		if err := s.delta(&ch.Delta); err != nil {
			return err
		}
		if !isNone(ch.FinishReason) {
			s.finished = true
			s.finish = finishName(ch.FinishReason)
			status, _ := responseStatus(s.finish)
			s.closeItem(status)
		}
	}
	if !isNone(c.Usage) {
		s.usage = respUsage{}
		if err := json.Unmarshal(c.Usage, &s.usage); err != nil {
			return fmt.Errorf("translate: upstream usage: %w", err)
		}
		s.hasUsage = true
		s.usageAfterFinish = s.finished
	}
	if s.usageAfterFinish {
		s.end()
	}
	return nil
}

// read reads a chunk with scanChunk or, when it leaves the chunk to
// encoding/json, decodes it into s.chunk (whose type names its errors
// give) and copies that into s.scanned.
func (s *chatToResponses) read(data []byte) (*streamChunk, error) {
	c := &s.scanned
	if scanChunk(data, c) {
		return c, nil
	}
	d := &s.chunk
	d.reset()
	if err := json.Unmarshal(data, d); err != nil {
		return nil, fmt.Errorf("translate: upstream chat.completion.chunk: %w", err)
	}
	c.ID, c.Usage, c.Choices = nil, d.Usage, c.Choices[:0]
	for i := range d.Choices {
		dc := &d.Choices[i]
		ch := nextChunkChoice(c)
		ch.Index, ch.FinishReason = dc.Index, dc.FinishReason
		ch.Delta.Content, ch.Delta.Refusal = dc.Delta.Content, dc.Delta.Refusal
		for j := range dc.Delta.ToolCalls {
			dt := &dc.Delta.ToolCalls[j]
			ch.Delta.ToolCalls = append(ch.Delta.ToolCalls, streamToolCall{Index: dt.Index, ID: dt.ID})
			ch.Delta.ToolCalls[j].Function.Name = dt.Function.Name
			ch.Delta.ToolCalls[j].Function.Arguments = dt.Function.Arguments
		}
	}
	return c, nil
}

func (s *chatToResponses) delta(d *streamDelta) error {
	if err := s.textDelta(d.Content, textPart); err != nil {
		return err
	}
	if err := s.textDelta(d.Refusal, refusalPart); err != nil {
		return err
	}
	for i := range d.ToolCalls {
		if err := s.toolCall(&d.ToolCalls[i]); err != nil {
			return err
		}
	}
	return nil
}

// begin starts an event of typ with the next sequence number; the caller
// appends the rest of its fields and calls s.emit.
func (s *chatToResponses) begin(typ string) {
	s.buf = append(s.buf, `{"type":"`...)
	s.buf = append(s.buf, typ...)
	s.buf = append(s.buf, `","sequence_number":`...)
	s.buf = strconv.AppendInt(s.buf, s.seq, 10)
	s.seq++
}

// emit ends the event begun last.
func (s *chatToResponses) emit() {
	s.buf = append(s.buf, '}')
	s.endEvent()
}

// itemRef appends the item_id and output_index of the open item.
func (s *chatToResponses) itemRef() {
	s.buf = append(s.buf, `,"item_id":`...)
	prefix := "msg_"
	if s.open == functionItem {
		prefix = "fc_"
	}
	s.buf = appendItemID(s.buf, prefix, s.base, s.items-1)
	s.buf = append(s.buf, `,"output_index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.items-1), 10)
}

// partRef appends the item_id, output_index and content_index of the
// open part.
func (s *chatToResponses) partRef() {
	s.itemRef()
	s.buf = append(s.buf, `,"content_index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.parts), 10)
}

// start queues response.created and response.in_progress.
func (s *chatToResponses) start() {
	s.started = true
	for _, typ := range [2]string{"response.created", "response.in_progress"} {
		s.begin(typ)
		s.buf = append(s.buf, `,"response":`...)
		s.buf = appendResponse(s.buf, s.r, s.m, "in_progress", "", nil, nil)
		s.emit()
	}
}

// textDelta queues a text or refusal fragment, opening a message item
// and a part of that kind if need be.
func (s *chatToResponses) textDelta(raw json.RawMessage, kind partKind) error {
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
	inner := raw[1 : len(raw)-1]
	if s.open != messageItem {
		s.openMessage()
	}
	if s.part != kind {
		s.openPart(kind)
	}
	if kind == textPart {
		s.begin("response.output_text.delta")
	} else {
		s.begin("response.refusal.delta")
	}
	s.partRef()
	s.buf = append(s.buf, `,"delta":`...)
	s.buf = append(s.buf, raw...) // a valid JSON string already
	if kind == textPart {
		s.buf = append(s.buf, `,"logprobs":[]`...)
	}
	s.emit()
	s.text = append(s.text, inner...)
	return nil
}

// openMessage queues the output_item.added of a message item.
func (s *chatToResponses) openMessage() {
	s.closeItem("completed")
	s.open = messageItem
	s.items++
	s.parts = 0
	s.done1 = s.done1[:0]
	s.begin("response.output_item.added")
	s.buf = append(s.buf, `,"output_index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.items-1), 10)
	s.buf = append(s.buf, `,"item":`...)
	s.buf = appendMessageItem(s.buf, s.base, s.items-1, "in_progress")
	s.buf = append(s.buf, `],"role":"assistant"}`...)
	s.emit()
}

// openPart queues the content_part.added of a part of kind.
func (s *chatToResponses) openPart(kind partKind) {
	s.closePart()
	s.part = kind
	s.text = s.text[:0]
	s.begin("response.content_part.added")
	s.partRef()
	s.buf = append(s.buf, `,"part":`...)
	s.buf = s.appendPart(s.buf)
	s.emit()
}

// appendPart appends the open part with the text so far.
func (s *chatToResponses) appendPart(b []byte) []byte {
	if s.part == refusalPart {
		return appendRefusalPart(b, s.text)
	}
	return appendTextPart(b, s.text)
}

// closePart queues the output_text.done (or refusal.done) and
// content_part.done of the open part, if any.
func (s *chatToResponses) closePart() {
	if s.part == noPart {
		return
	}
	if s.part == textPart {
		s.begin("response.output_text.done")
		s.partRef()
		s.buf = append(s.buf, `,"text":"`...)
		s.buf = append(s.buf, s.text...)
		s.buf = append(s.buf, `","logprobs":[]`...)
	} else {
		s.begin("response.refusal.done")
		s.partRef()
		s.buf = append(s.buf, `,"refusal":"`...)
		s.buf = append(s.buf, s.text...)
		s.buf = append(s.buf, '"')
	}
	s.emit()
	s.begin("response.content_part.done")
	s.partRef()
	s.buf = append(s.buf, `,"part":`...)
	s.buf = s.appendPart(s.buf)
	s.emit()
	if s.parts > 0 {
		s.done1 = append(s.done1, ',')
	}
	s.done1 = s.appendPart(s.done1)
	s.parts++
	s.part = noPart
}

// closeItem queues what finishes the open item, if any: its open part's
// events, or its arguments' done event, then output_item.done with the
// whole item, which the terminal event's output repeats.
func (s *chatToResponses) closeItem(status string) {
	if s.open == noItem {
		return
	}
	if s.items > 1 {
		s.output = append(s.output, ',')
	}
	itemStart := len(s.output)
	switch s.open {
	case messageItem:
		s.closePart()
		s.output = appendMessageItem(s.output, s.base, s.items-1, status)
		s.output = append(s.output, s.done1...)
		s.output = append(s.output, `],"role":"assistant"}`...)
	case functionItem:
		if len(s.args) == 0 {
			// OpenAI sends "{}" for a call without arguments; so do we.
			s.args = append(s.args, "{}"...)
			s.begin("response.function_call_arguments.delta")
			s.itemRef()
			s.buf = append(s.buf, `,"delta":"{}"`...)
			s.emit()
		}
		s.begin("response.function_call_arguments.done")
		s.itemRef()
		s.buf = append(s.buf, `,"name":`...)
		s.buf = append(s.buf, s.name...)
		s.buf = append(s.buf, `,"arguments":"`...)
		s.buf = append(s.buf, s.args...)
		s.buf = append(s.buf, '"')
		s.emit()
		s.output = appendFunctionCallItem(s.output, s.base, s.items-1, status, s.args, s.callID, s.name)
	}
	s.begin("response.output_item.done")
	s.buf = append(s.buf, `,"output_index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.items-1), 10)
	s.buf = append(s.buf, `,"item":`...)
	s.buf = append(s.buf, s.output[itemStart:]...)
	s.emit()
	s.open = noItem
}

// toolCall queues a tool call fragment: a new call index, or a new id
// (some servers number every call 0), starts a function_call item.
func (s *chatToResponses) toolCall(tc *streamToolCall) error {
	hasID := !isNone(tc.ID) && tc.ID[0] == '"' && string(tc.ID) != `""`
	if s.open != functionItem || tc.Index != s.toolIndex || (hasID && !bytes.Equal(tc.ID, s.toolID)) {
		if !hasID {
			for _, seen := range s.toolsSeen {
				if seen == tc.Index {
					return fmt.Errorf("translate: upstream sent arguments for tool call %d after another item began", tc.Index)
				}
			}
		}
		s.startCall(tc, hasID)
	}
	args := tc.Function.Arguments
	if isNone(args) || args[0] != '"' || string(args) == `""` {
		return nil
	}
	s.begin("response.function_call_arguments.delta")
	s.itemRef()
	s.buf = append(s.buf, `,"delta":`...)
	s.buf = append(s.buf, args...) // a valid JSON string already
	s.emit()
	s.args = append(s.args, args[1:len(args)-1]...)
	return nil
}

// startCall queues the output_item.added of a function_call item; a call
// without an id gets one made of the response id and the item index.
func (s *chatToResponses) startCall(tc *streamToolCall, hasID bool) {
	s.closeItem("completed")
	s.open = functionItem
	s.items++
	s.toolIndex = tc.Index
	s.toolID = append(s.toolID[:0], tc.ID...)
	s.toolsSeen = append(s.toolsSeen, tc.Index)
	s.args = s.args[:0]
	if hasID {
		s.callID = append(s.callID[:0], tc.ID...)
	} else {
		s.callID = appendItemID(s.callID[:0], "call_", s.base, s.items-1)
	}
	if isNone(tc.Function.Name) || tc.Function.Name[0] != '"' {
		s.name = append(s.name[:0], `""`...)
	} else {
		s.name = append(s.name[:0], tc.Function.Name...)
	}
	s.begin("response.output_item.added")
	s.buf = append(s.buf, `,"output_index":`...)
	s.buf = strconv.AppendInt(s.buf, int64(s.items-1), 10)
	s.buf = append(s.buf, `,"item":`...)
	s.buf = appendFunctionCallItem(s.buf, s.base, s.items-1, "in_progress", nil, s.callID, s.name)
	s.emit()
}

// end queues what finishes the response: the open item's events and the
// terminal event with the whole response.
func (s *chatToResponses) end() {
	if s.done {
		return
	}
	status, reason := responseStatus(s.finish)
	s.closeItem(status)
	s.done = true
	if status == "completed" {
		s.begin("response.completed")
	} else {
		s.begin("response.incomplete")
	}
	s.buf = append(s.buf, `,"response":`...)
	var usage []byte // null until the upstream tells
	if s.hasUsage {
		usage = appendUsage(nil, &s.usage)
	}
	s.buf = appendResponse(s.buf, s.r, s.m, status, reason, s.output, usage)
	s.emit()
}
