package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// msgEventSource is a Stream of Messages events' data, as the anthropic
// provider's SSE reader yields them. Like it, it reuses the slice it
// returns, so a translation that keeps it past the next call is caught.
type msgEventSource struct {
	events  [][]byte
	next    int
	buf     []byte
	closed  bool
	blockAt int // Next fails the test's expectation if called for this event; -1 for never
}

func newMsgEventSource(events []json.RawMessage) *msgEventSource {
	s := &msgEventSource{blockAt: -1}
	for _, e := range events {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e); err != nil {
			buf.Reset()
			buf.Write(e)
		}
		s.events = append(s.events, buf.Bytes())
	}
	return s
}

var errMsgReadTooFar = errors.New("the translation read an event it did not need")

func (s *msgEventSource) Next() ([]byte, error) {
	if s.closed {
		return nil, errors.New("read after Close")
	}
	if s.next == s.blockAt {
		return nil, errMsgReadTooFar
	}
	if s.next >= len(s.events) {
		return nil, io.EOF
	}
	// Overwrite the previous event's bytes before returning the next.
	for i := range s.buf {
		s.buf[i] = 'x'
	}
	s.buf = append(s.buf[:0], s.events[s.next]...)
	s.next++
	return s.buf, nil
}

func (s *msgEventSource) Close() error {
	s.closed = true
	return nil
}

// readChatChunks reads a stream to its end, copying each chunk.
func readChatChunks(s Stream) ([]json.RawMessage, error) {
	var chunks []json.RawMessage
	for {
		b, err := s.Next()
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, bytes.Clone(b))
		if len(chunks) > 1e6 {
			return chunks, errors.New("endless stream")
		}
	}
}

// chatChunkShape is what checkChatChunks reads of a chunk.
type chatChunkShape struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Delta struct {
			Role      string `json:"role"`
			ToolCalls []struct {
				Index *int   `json:"index"`
				ID    string `json:"id"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage `json:"usage"`
}

// checkChatChunks checks the invariants of a translated stream: valid JSON,
// one id, the role first, dense tool call indexes, one finish_reason, and
// when the stream ended (io.EOF, which only message_stop gives) exactly
// one usage chunk, the last.
func checkChatChunks(t testing.TB, chunks []json.RawMessage, end error) {
	t.Helper()
	tools, usages, finishes := 0, 0, 0
	for i, c := range chunks {
		if !json.Valid(c) {
			t.Fatalf("chunk %d is not valid JSON: %s", i, c)
		}
		var s chatChunkShape
		if err := json.Unmarshal(c, &s); err != nil {
			t.Fatalf("chunk %d: %v: %s", i, err, c)
		}
		var first chatChunkShape
		_ = json.Unmarshal(chunks[0], &first)
		if s.ID == "" || s.ID != first.ID || s.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %d: id %q (first %q), object %q", i, s.ID, first.ID, s.Object)
		}
		if i == 0 && (len(s.Choices) != 1 || s.Choices[0].Delta.Role != "assistant") {
			t.Fatalf("the first chunk does not bring the role: %s", c)
		}
		if s.Usage != nil {
			usages++
			if len(s.Choices) != 0 {
				t.Fatalf("chunk %d has usage and choices: %s", i, c)
			}
		}
		for _, ch := range s.Choices {
			if ch.FinishReason != nil {
				finishes++
			}
			for _, tc := range ch.Delta.ToolCalls {
				switch {
				case tc.Index == nil:
					t.Fatalf("chunk %d: a tool call without index: %s", i, c)
				case tc.ID != "" && *tc.Index != tools:
					t.Fatalf("chunk %d: new tool call %d, want index %d: %s", i, *tc.Index, tools, c)
				case tc.ID != "":
					tools++
				case *tc.Index >= tools:
					t.Fatalf("chunk %d: arguments for tool call %d, which did not start: %s", i, *tc.Index, c)
				}
			}
		}
	}
	if finishes > 1 {
		t.Fatalf("%d finish_reasons", finishes)
	}
	if end == io.EOF {
		if usages != 1 || len(chunks) == 0 || !bytes.Contains(chunks[len(chunks)-1], []byte(`"usage":`)) {
			t.Fatalf("the stream ended with %d usage chunks, usage last: %v", usages, len(chunks) > 0 && bytes.Contains(chunks[len(chunks)-1], []byte(`"usage":`)))
		}
		if finishes != 1 {
			t.Fatalf("the stream ended with %d finish_reasons", finishes)
		}
	} else if usages != 0 {
		t.Fatalf("a broken stream (%v) has a usage chunk", end)
	}
}

func msgEvents(list ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(list))
	for i, e := range list {
		out[i] = json.RawMessage(e)
	}
	return out
}

const (
	msgEvStart     = `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}`
	msgEvTextStart = `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	msgEvText      = `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`
	msgEvDelta     = `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}`
	msgEvStop      = `{"type":"message_stop"}`
)

// TestMessagesStreamToChatDoesNotWait: each event's chunk is returned
// before the next event is read, and nothing is read after message_stop.
func TestMessagesStreamToChatDoesNotWait(t *testing.T) {
	all := msgEvents(msgEvStart, msgEvTextStart, msgEvText, msgEvDelta, msgEvStop, `{"type":"ping"}`)
	for _, tc := range []struct {
		blockAt int
		chunks  int // chunks expected before the read that must not happen
	}{
		{1, 1}, // the role chunk on message_start
		{3, 2}, // the text delta
		{4, 3}, // the finish_reason on message_delta
		{5, 4}, // the usage on message_stop, then io.EOF without reading on
	} {
		src := newMsgEventSource(all)
		src.blockAt = tc.blockAt
		chunks, err := readChatChunks(MessagesStreamToChat(src, "alias"))
		if tc.blockAt == 5 {
			if err != io.EOF || len(chunks) != tc.chunks {
				t.Errorf("after message_stop: %d chunks, %v; want %d, io.EOF", len(chunks), err, tc.chunks)
			}
			continue
		}
		if err != errMsgReadTooFar || len(chunks) != tc.chunks {
			t.Errorf("blocked at event %d: got %d chunks (%v), want %d before the read", tc.blockAt, len(chunks), err, tc.chunks)
		}
	}
}

func TestMessagesStreamToChatClose(t *testing.T) {
	src := newMsgEventSource(msgEvents(msgEvStart, msgEvText))
	s := MessagesStreamToChat(src, "alias")
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil || !src.closed {
		t.Fatalf("Close: %v, source closed %v", err, src.closed)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("Next after Close: %v, want io.EOF", err)
	}
}

func TestMessagesStreamToChatMalformed(t *testing.T) {
	src := newMsgEventSource(msgEvents(msgEvStart, `{"type":"content_block_delta",`))
	_, err := readChatChunks(MessagesStreamToChat(src, "alias"))
	if err == nil || err == io.EOF || errors.Is(err, ErrStreamTruncated) {
		t.Fatalf("got %v, want a malformed-event error", err)
	}
}

// TestMessagesStreamToChatWithoutMessageStart: a stream that starts
// elsewhere still brings the role first and one id.
func TestMessagesStreamToChatWithoutMessageStart(t *testing.T) {
	chunks, err := readChatChunks(MessagesStreamToChat(newMsgEventSource(msgEvents(msgEvText, msgEvStop)), `al"ias`))
	checkChatChunks(t, chunks, err)
	if err != io.EOF || len(chunks) != 3 {
		t.Fatalf("%d chunks, %v", len(chunks), err)
	}
	if !bytes.Contains(chunks[0], []byte(`"model":"al\"ias"`)) {
		t.Errorf("model not escaped: %s", chunks[0])
	}
}

func TestMessagesStreamToChatErrorEvent(t *testing.T) {
	src := newMsgEventSource(msgEvents(msgEvStart, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	_, err := readChatChunks(MessagesStreamToChat(src, "alias"))
	var ee *EventError
	if !errors.As(err, &ee) || ee.Type != "overloaded_error" || ee.Message != "Overloaded" {
		t.Fatalf("got %v, want the overloaded_error", err)
	}
}
