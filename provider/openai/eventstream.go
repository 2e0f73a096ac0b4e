package openai

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// EventStream relays an upstream's server-sent events. It implements
// llmproxy.EventStream over any OpenAI-style SSE body: a chat completion
// stream (NewEventStream), which ends with [DONE], or a Responses API
// stream (NewResponsesEventStream), which ends with its terminal event.
//
// It reads through a small buffer of its own (events are a few hundred
// bytes) and borrows a large pooled one only while a longer line is being
// read, so that an idle stream, blocked waiting for its next event, holds
// about 1 KiB rather than a large read buffer: 10,000 open streams stay
// cheap.
type EventStream struct {
	name     string
	body     io.ReadCloser
	buf      []byte  // buf[r:w] is read and not yet consumed
	r, w     int     // read and write offsets in buf
	small    []byte  // the stream's own buffer; buf is small or *big
	big      *[]byte // borrowed from bigPool while a long line needs it
	err      error   // the body's sticky read error
	full     bool    // the last read filled buf: more is likely waiting
	data     []byte  // the current event's data, reused
	isError  bool    // the current event is "event: error"
	finished bool    // an event with a finish_reason was seen
	done     bool
	closed   bool
	// responses: the body is a Responses API stream (see
	// responsesEvent).
	responses bool
}

const smallBuffer = 1 << 10

var bigPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// NewEventStream reads events from body. name names the connection in
// errors.
func NewEventStream(name string, body io.ReadCloser) *EventStream {
	small := make([]byte, smallBuffer)
	return &EventStream{name: name, body: body, buf: small, small: small}
}

// NewResponsesEventStream reads the events of a Responses API stream from
// body. Next returns each event's data (a JSON object with its "type"),
// the terminal event (response.completed, response.incomplete or
// response.failed) included, then io.EOF without reading further. An
// "error" event is returned as an *llmproxy.Error (see
// responsesStreamError); a body that ends before the terminal event as a
// broken-off stream. name names the connection in errors.
func NewResponsesEventStream(name string, body io.ReadCloser) *EventStream {
	s := NewEventStream(name, body)
	s.responses = true
	return s
}

var (
	dataPrefix   = []byte("data:")
	eventPrefix  = []byte("event:")
	doneMarker   = []byte("[DONE]")
	finishMarker = []byte(`"finish_reason":"`)
	errorKey     = []byte(`"error"`)
)

// Next returns the next event's data.
func (s *EventStream) Next() ([]byte, error) {
	if s.done || s.closed {
		return nil, io.EOF
	}
	s.data = s.data[:0]
	s.isError = false
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				return s.event()
			}
			if err == io.EOF && s.finished {
				s.done = true // tolerate servers that omit [DONE] after a finished answer
				return nil, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q broke off", s.name), err)
		}
		switch {
		case len(line) == 0: // end of an event
			if hasData {
				return s.event()
			}
		case bytes.HasPrefix(line, dataPrefix):
			v := line[len(dataPrefix):]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, v...)
			hasData = true
		case bytes.HasPrefix(line, eventPrefix):
			s.isError = string(bytes.TrimSpace(line[len(eventPrefix):])) == "error"
		}
		// comments (":…"), id: and retry: lines are ignored
	}
}

func (s *EventStream) event() ([]byte, error) {
	d := s.data
	if bytes.Equal(d, doneMarker) {
		s.done = true
		return nil, io.EOF
	}
	if s.responses {
		return s.responsesEvent(d)
	}
	if s.isError || (bytes.Contains(d, errorKey) && isErrorEvent(d)) {
		s.done = true
		return nil, streamError(s.name, d)
	}
	if !jsonscan.Valid(d) {
		s.done = true
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q carried malformed JSON", s.name), nil)
	}
	if bytes.Contains(d, finishMarker) {
		s.finished = true
	}
	return d, nil
}

// Terminal event types of a Responses stream.
var (
	typeCompleted  = []byte(`"response.completed"`)
	typeIncomplete = []byte(`"response.incomplete"`)
	typeFailed     = []byte(`"response.failed"`)
	typeError      = []byte(`"error"`)
)

// responsesEvent checks the data d of a Responses event: a JSON object
// with a string "type". An "error" event (by its event: line or its
// type), or a chat-style error envelope from a compatible server, is the
// stream's error; a terminal event is returned and ends the stream.
// A [DONE] that some servers add is taken as the end.
func (s *EventStream) responsesEvent(d []byte) ([]byte, error) {
	if bytes.Contains(d, errorKey) && isErrorEvent(d) {
		s.done = true
		return nil, responsesStreamError(s.name, d)
	}
	if !jsonscan.Valid(d) {
		s.done = true
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q carried malformed JSON", s.name), nil)
	}
	typ := jsonscan.Field(d, "type")
	if len(typ) < 2 || typ[0] != '"' {
		s.done = true
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q carried an event without a type", s.name), nil)
	}
	switch {
	case s.isError || bytes.Equal(typ, typeError):
		s.done = true
		return nil, responsesStreamError(s.name, d)
	case bytes.Equal(typ, typeCompleted) || bytes.Equal(typ, typeIncomplete) || bytes.Equal(typ, typeFailed):
		s.done = true // the next call returns io.EOF without waiting
		s.finished = true
	}
	return d, nil
}

// readLine returns the next line without its line ending, valid until the
// next call. A last line without a line ending is returned at the end of
// the body; then io.EOF. Any other read error is returned as it is.
func (s *EventStream) readLine() ([]byte, error) {
	for empty := 0; ; {
		if i := bytes.IndexByte(s.buf[s.r:s.w], '\n'); i >= 0 {
			line := s.buf[s.r : s.r+i]
			s.r += i + 1
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		if s.err != nil {
			if s.err == io.EOF && s.w > s.r {
				line := s.buf[s.r:s.w]
				s.r = s.w
				return bytes.TrimSuffix(line, []byte("\r")), nil
			}
			return nil, s.err
		}
		n := s.fill()
		if n == 0 && s.err == nil {
			if empty++; empty >= 100 {
				s.err = io.ErrNoProgress
			}
		}
	}
}

// fill reads more of the body into buf, making room first: consumed bytes
// are dropped, a drained borrowed buffer goes back to the pool (so a
// stream waiting for its next event holds only its small one), and a
// full buffer grows.
func (s *EventStream) fill() int {
	switch {
	case s.r == s.w:
		s.r, s.w = 0, 0
		s.release()
	case s.r > 0:
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	if s.big == nil && len(s.buf) == len(s.small) && (s.full || bodyBuffered(s.body) > len(s.buf)-s.w) {
		// More has arrived than the small buffer holds: take it all in
		// one read (the data is there, so the read does not wait), and
		// the relay can send the events that came together in one write.
		// A body that cannot tell (net/http's) is taken to have more
		// when the last read filled the buffer.
		s.big = bigPool.Get().(*[]byte)
		s.w = copy(*s.big, s.buf[:s.w])
		s.buf = *s.big
	}
	if s.w == len(s.buf) {
		var nb []byte
		if s.big == nil && len(s.buf) < 16<<10 {
			s.big = bigPool.Get().(*[]byte)
			nb = *s.big
		} else {
			// Longer than 16 KiB: grow on the heap; the borrowed
			// buffer goes back.
			nb = make([]byte, 2*len(s.buf))
		}
		copy(nb, s.buf[:s.w])
		if s.big != nil && &nb[0] != &(*s.big)[0] {
			bigPool.Put(s.big)
			s.big = nil
		}
		s.buf = nb
	}
	n, err := s.body.Read(s.buf[s.w:])
	s.w += n
	s.full = s.w == len(s.buf)
	if err != nil {
		s.err = err
	}
	return n
}

// bodyBuffered is how many bytes body holds that it can return without
// waiting, when it can tell (internal/h1client's bodies can).
func bodyBuffered(body io.Reader) int {
	if b, ok := body.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

// release goes back to the small buffer once buf is drained.
func (s *EventStream) release() {
	if s.big != nil {
		bigPool.Put(s.big)
		s.big = nil
	}
	s.buf = s.small
}

var (
	_ llmproxy.BufferedStream = (*EventStream)(nil)
	_ llmproxy.ReadyStream    = (*EventStream)(nil)
)

// Buffered reports how many bytes of the events still to come have
// arrived: what this stream holds, plus what the body holds if it can
// tell (see llmproxy.BufferedStream).
func (s *EventStream) Buffered() int {
	if s.closed {
		return 0
	}
	return s.w - s.r + bodyBuffered(s.body)
}

// Ready reports whether Next would return without reading from the
// upstream: a whole event (or the stream's end) is already buffered.
func (s *EventStream) Ready() bool {
	if s.done || s.closed || s.err != nil {
		return true
	}
	b := s.buf[s.r:s.w]
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}

// Close releases the upstream connection.
func (s *EventStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.big != nil {
		bigPool.Put(s.big)
		s.big = nil
	}
	s.buf, s.r, s.w = nil, 0, 0
	return s.body.Close()
}
