package anthropic

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// EventStream reads a Messages stream: server-sent events of the form
//
//	event: content_block_delta
//	data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}
//
// Next returns each event's data as it arrives, "ping" included, and
// io.EOF after message_stop. An "error" event ends the stream with an
// *llmproxy.Error carrying its Anthropic type (see typedError); a stream
// that ends before message_stop, or carries data that is not a JSON
// object with a "type", ends with a 502.
//
// It is not provider/openai's EventStream: that one ends at [DONE] and
// reports error events as upstream_error, losing the Anthropic type the
// Gateway shows Messages clients.
//
// Its read buffer is small (1 KiB: events are a few hundred bytes, and an
// idle stream waiting for its next event should hold little); a longer
// line is gathered on the heap.
type EventStream struct {
	name   string
	body   io.ReadCloser
	br     *bufio.Reader
	long   []byte // a line longer than br's buffer, gathered
	data   []byte // the current event's data, reused
	done   bool   // message_stop or a failure was returned
	closed bool
}

const (
	readBuffer = 1 << 10
	// maxLine bounds one line of the stream; a longer one is a broken
	// upstream, not an event to buffer without end.
	maxLine = 32 << 20
)

// NewEventStream reads events from body. name names the connection in
// errors.
func NewEventStream(name string, body io.ReadCloser) *EventStream {
	return &EventStream{name: name, body: body, br: bufio.NewReaderSize(body, readBuffer)}
}

var (
	_ llmproxy.BufferedStream = (*EventStream)(nil)
	_ llmproxy.ReadyStream    = (*EventStream)(nil)
)

var (
	dataPrefix  = []byte("data:")
	eventPrefix = []byte("event:")
)

// Next returns the next event's data, valid until the next call.
func (s *EventStream) Next() ([]byte, error) {
	if s.done || s.closed {
		return nil, io.EOF
	}
	s.data = s.data[:0]
	hasData, isError := false, false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				return s.event(isError)
			}
			s.done = true
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q broke off before message_stop", s.name), err)
		}
		switch {
		case len(line) == 0: // the end of an event
			if hasData {
				return s.event(isError)
			}
			isError = false
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
			isError = string(bytes.TrimSpace(line[len(eventPrefix):])) == "error"
		}
		// comments (":…"), id: and retry: lines are ignored
	}
}

// event checks the data of a whole event and returns it, or the error it
// reports. isError is whether its event: line named "error".
func (s *EventStream) event(isError bool) ([]byte, error) {
	d := s.data
	if !jsonscan.Valid(d) {
		s.done = true
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q carried malformed JSON", s.name), nil)
	}
	typ := jsonscan.Field(d, "type")
	if len(typ) < 2 || typ[0] != '"' {
		s.done = true
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q carried an event without a type", s.name), nil)
	}
	switch string(typ[1 : len(typ)-1]) {
	case "error":
		isError = true
	case "message_stop":
		s.done = true // the next call returns io.EOF without waiting
	}
	if isError {
		s.done = true
		return nil, eventError(s.name, d)
	}
	return d, nil
}

// readLine returns the next line without its line ending, valid until the
// next call; a last line without one at the end of the body; then the
// body's error (io.EOF at its end).
func (s *EventStream) readLine() ([]byte, error) {
	s.long = s.long[:0]
	for {
		line, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(s.long)+len(line) > maxLine {
				return nil, fmt.Errorf("a line of more than %d bytes", maxLine)
			}
			s.long = append(s.long, line...)
			continue
		}
		if len(s.long) > 0 {
			s.long = append(s.long, line...)
			line = s.long
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			return nil, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		return bytes.TrimSuffix(line, []byte("\r")), nil
	}
}

// Buffered reports how many bytes of the events still to come have
// arrived: what this stream holds, plus what the body holds if it can
// tell (internal/h1client's bodies can). See llmproxy.BufferedStream.
func (s *EventStream) Buffered() int {
	if s.closed || s.done {
		return 0
	}
	n := s.br.Buffered()
	if b, ok := s.body.(interface{ Buffered() int }); ok {
		n += b.Buffered()
	}
	return n
}

// Ready reports whether Next would return without reading from the
// upstream: the stream has ended, or a whole event is buffered.
func (s *EventStream) Ready() bool {
	if s.done || s.closed {
		return true
	}
	b, _ := s.br.Peek(s.br.Buffered())
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}

// Close releases the upstream connection. It may be called before the
// end of the stream, and more than once.
func (s *EventStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.body.Close()
}
