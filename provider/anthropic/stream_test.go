package anthropic_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
)

// sse is a whole stream as the fake sends it.
func sse(events ...anthropictest.Event) string {
	var b []byte
	for _, ev := range events {
		b = ev.AppendSSE(b)
	}
	return string(b)
}

var sample = anthropictest.Events(anthropictest.Message{Content: []anthropictest.Block{
	anthropictest.ThinkingBlock("Hmm.", "sig=="), anthropictest.TextBlock("Hello, world."),
	anthropictest.ToolUseBlock("toolu_1", "Read", map[string]string{"file_path": "/x"})}})

// readEvents reads a stream to its end: its events, and the error that
// ended it.
func readEvents(st *anthropic.EventStream) ([]string, error) {
	var out []string
	for len(out) < 10000 {
		d, err := st.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(d))
	}
	return out, errors.New("endless stream")
}

// TestEventStream: the wire format's variants are read as Anthropic (and
// the SSE specification) mean them; ends are io.EOF only after
// message_stop.
func TestEventStream(t *testing.T) {
	long := strings.Repeat("é", 70<<10) // a text delta far over the read buffer
	longEvent := anthropictest.NewEvent("content_block_delta", map[string]any{"index": 0, "delta": map[string]any{"type": "text_delta", "text": long}})
	stop := `{"type":"message_stop"}`
	for _, tc := range []struct {
		name   string
		in     string
		events []string
		status int    // of the *llmproxy.Error that ends the stream; 0: io.EOF
		typ    string // its Type
	}{
		{name: "the fake's stream", in: sse(sample...), events: datas(sample)},
		{name: "CRLF, comments, data without a space, two data lines",
			in:     ": hello\r\nevent: ping\r\ndata:{\"type\":\r\ndata: \"ping\"}\r\n\r\nevent: message_stop\r\ndata: " + stop + "\r\n\r\n",
			events: []string{"{\"type\":\n\"ping\"}", stop}},
		{name: "no blank line at the end", in: "event: message_stop\ndata: " + stop, events: []string{stop}},
		{name: "bytes after message_stop are not read", in: "data: " + stop + "\n\ngarbage that would be malformed\n\n", events: []string{stop}},
		{name: "a line far longer than the buffer", in: sse(longEvent, anthropictest.NewEvent("message_stop", nil)), events: []string{string(longEvent.Data), stop}},
		{name: "ends before message_stop", in: sse(sample[:3]...), events: datas(sample[:3]), status: 502, typ: llmproxy.TypeUpstream},
		{name: "empty", in: "", status: 502, typ: llmproxy.TypeUpstream},
		{name: "error event", in: sse(sample[0], anthropictest.ErrorEvent("overloaded_error", "Overloaded")), events: datas(sample[:1]), status: 529, typ: "overloaded_error"},
		{name: "error data without an event line", in: `data: {"type":"error","error":{"type":"api_error","message":"boom"}}` + "\n\n", status: 500, typ: "api_error"},
		{name: "event: error with odd data", in: "event: error\ndata: {\"type\":\"x\"}\n\n", status: 502, typ: llmproxy.TypeUpstream},
		{name: "malformed JSON", in: "data: {\"type\":\n\n", status: 502, typ: llmproxy.TypeUpstream},
		{name: "no type", in: "data: {\"index\":0}\n\n", status: 502, typ: llmproxy.TypeUpstream},
		{name: "a type that is not a string", in: "data: {\"type\":7}\n\n", status: 502, typ: llmproxy.TypeUpstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{{"whole", strings.NewReader(tc.in)}, {"byte by byte", iotest.OneByteReader(strings.NewReader(tc.in))}} {
				st := anthropic.NewEventStream("c", io.NopCloser(r.r))
				got, err := readEvents(st)
				if strings.Join(got, "\x00") != strings.Join(tc.events, "\x00") {
					t.Errorf("%s: events %.200q, want %.200q", r.name, got, tc.events)
				}
				var e *llmproxy.Error
				switch {
				case tc.status == 0 && err != io.EOF:
					t.Errorf("%s: ended with %v, want io.EOF", r.name, err)
				case tc.status != 0 && !errors.As(err, &e):
					t.Errorf("%s: ended with %v, want an *llmproxy.Error", r.name, err)
				case tc.status != 0 && (e.Status != tc.status || e.Type != tc.typ):
					t.Errorf("%s: %d %q, want %d %q", r.name, e.Status, e.Type, tc.status, tc.typ)
				}
				if _, err := st.Next(); err != io.EOF {
					t.Errorf("%s: Next after the end: %v, want io.EOF", r.name, err)
				}
			}
		})
	}
}

func datas(events []anthropictest.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = string(ev.Data)
	}
	return out
}

// TestEventStreamReady: Ready and Buffered tell whether the next event
// has arrived.
func TestEventStreamReady(t *testing.T) {
	pr, pw := io.Pipe()
	st := anthropic.NewEventStream("c", pr)
	defer st.Close()
	first, second := sample[0].AppendSSE(nil), sample[1].AppendSSE(nil)
	go pw.Write(append(first, second[:10]...)) // the first event and the start of the second
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	if st.Ready() || st.Buffered() != 10 {
		t.Errorf("with half an event buffered: Ready %v, Buffered %d; want false, 10", st.Ready(), st.Buffered())
	}
	go pw.Write(second[10:])
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	go pw.Write([]byte(sse(sample[2:]...)))
	if _, err := st.Next(); err != nil { // reads everything written, up to its buffer
		t.Fatal(err)
	}
	if !st.Ready() || st.Buffered() == 0 {
		t.Errorf("with whole events buffered: Ready %v, Buffered %d; want true, >0", st.Ready(), st.Buffered())
	}
	st.Close()
	if !st.Ready() || st.Buffered() != 0 {
		t.Errorf("after Close: Ready %v, Buffered %d; want true, 0", st.Ready(), st.Buffered())
	}
}

// FuzzEventStream: any input ends (io.EOF or an error) without a panic;
// every event returned is a JSON object with a string "type"; io.EOF
// comes only after message_stop; and how the input is split into reads
// changes nothing.
func FuzzEventStream(f *testing.F) {
	f.Add([]byte(sse(sample...)))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\n"))
	f.Add([]byte(": c\r\ndata:{\"type\":\r\ndata:\"ping\"}\r\n\r\ndata: {\"type\":\"message_stop\"}"))
	f.Add([]byte("data: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, werr := readEvents(anthropic.NewEventStream("c", io.NopCloser(bytes.NewReader(in))))
		bytewise, berr := readEvents(anthropic.NewEventStream("c", io.NopCloser(iotest.OneByteReader(bytes.NewReader(in)))))
		if strings.Join(whole, "\x00") != strings.Join(bytewise, "\x00") || (werr == io.EOF) != (berr == io.EOF) {
			t.Fatalf("read whole: %q, %v; byte by byte: %q, %v", whole, werr, bytewise, berr)
		}
		for _, ev := range whole {
			var v struct {
				Type *string `json:"type"`
			}
			if err := json.Unmarshal([]byte(ev), &v); err != nil || v.Type == nil {
				t.Fatalf("event %q is not an object with a string type", ev)
			}
		}
		if werr == io.EOF && (len(whole) == 0 || !strings.Contains(whole[len(whole)-1], "message_stop")) {
			t.Fatalf("io.EOF without message_stop: %q", whole)
		}
		var e *llmproxy.Error
		if werr != io.EOF && !errors.As(werr, &e) {
			t.Fatalf("ended with %v, not an *llmproxy.Error", werr)
		}
	})
}
