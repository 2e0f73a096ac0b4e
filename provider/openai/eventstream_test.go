package openai_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

// TestEventStreamLines reads events of every size class (within the small
// buffer, the pooled one, and beyond it), through readers that return one
// byte at a time or the whole body, with LF and CRLF endings.
func TestEventStreamLines(t *testing.T) {
	event := func(n int) string {
		return `{"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("x", n) + `"},"finish_reason":null}]}`
	}
	sizes := []int{1, 900, 1100, 5000, 16 << 10, 40 << 10, 3}
	for _, tc := range []struct {
		name string
		eol  string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", "\n", func(r io.Reader) io.Reader { return r }},
		{"one byte", "\n", iotest.OneByteReader},
		{"half", "\r\n", iotest.HalfReader},
		{"data err", "\n", iotest.DataErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			for _, n := range sizes {
				b.WriteString(": keep-alive" + tc.eol + "data: " + event(n) + tc.eol + tc.eol)
			}
			b.WriteString("data: [DONE]" + tc.eol + tc.eol)
			s := openai.NewEventStream("c", io.NopCloser(tc.wrap(strings.NewReader(b.String()))))
			defer s.Close()
			for i, n := range sizes {
				d, err := s.Next()
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if string(d) != event(n) {
					t.Fatalf("event %d: got %d bytes, want %d", i, len(d), len(event(n)))
				}
			}
			if _, err := s.Next(); err != io.EOF {
				t.Fatalf("after [DONE]: %v, want io.EOF", err)
			}
		})
	}
}

// TestEventStreamBrokenOff: a body that ends mid-stream is an error, a
// last event without its blank line is still delivered.
func TestEventStreamBrokenOff(t *testing.T) {
	s := openai.NewEventStream("c", io.NopCloser(strings.NewReader(`data: {"choices":[{"delta":{"content":"a"}}]}`)))
	if d, err := s.Next(); err != nil || !strings.Contains(string(d), `"a"`) {
		t.Fatalf("last event without blank line: %q, %v", d, err)
	}
	if _, err := s.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("unfinished stream ended with %v, want a broken-off error", err)
	}
	s.Close()
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("after Close: %v", err)
	}
}

// TestResponsesEventStreamEnds: the terminal event is returned, then
// io.EOF without waiting for the body to end.
func TestResponsesEventStreamEnds(t *testing.T) {
	for _, terminal := range []string{"response.completed", "response.incomplete", "response.failed"} {
		pr, pw := io.Pipe()
		go io.WriteString(pw, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n"+
			"event: "+terminal+"\ndata: {\"type\":\""+terminal+"\",\"sequence_number\":1}\n\n") // never closed
		s := openai.NewResponsesEventStream("c", pr)
		for _, want := range []string{"response.created", terminal} {
			d, err := s.Next()
			if err != nil || !strings.Contains(string(d), `"type":"`+want+`"`) {
				t.Fatalf("%s: got %s, %v", want, d, err)
			}
		}
		if _, err := s.Next(); err != io.EOF {
			t.Fatalf("after %s: %v", terminal, err)
		}
		if !s.Ready() {
			t.Fatal("an ended stream is not Ready")
		}
		s.Close()
		pw.Close()
	}
}

// TestResponsesEventStreamBroken: what is not a well-formed Responses
// stream ends it with a 502 *llmproxy.Error; a [DONE] ends it.
func TestResponsesEventStreamBroken(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		events     int
		eof        bool
	}{
		{"no terminal event", "data: {\"type\":\"response.created\"}\n\n", 1, false},
		{"no type", "data: {\"choices\":[]}\n\n", 0, false},
		{"type not a string", "data: {\"type\":1}\n\n", 0, false},
		{"malformed", "data: {\"type\":\n\n", 0, false},
		{"chat-style error", "data: {\"type\":\"response.created\"}\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\n", 1, false},
		{"error event named by its line", "event: error\ndata: {\"type\":\"weird\",\"message\":\"boom\"}\n\n", 0, false},
		{"[DONE]", "data: {\"type\":\"response.created\"}\n\ndata: [DONE]\n\n", 1, true},
		{"nested error is not an error", "data: {\"type\":\"response.created\",\"response\":{\"error\":null}}\n\ndata: {\"type\":\"response.completed\",\"response\":{\"error\":null}}\n\n", 2, true},
	} {
		s := openai.NewResponsesEventStream("c", io.NopCloser(strings.NewReader(tc.body)))
		n := 0
		var err error
		for {
			if _, err = s.Next(); err != nil {
				break
			}
			n++
		}
		var e *llmproxy.Error
		switch {
		case n != tc.events:
			t.Errorf("%s: %d events, want %d", tc.name, n, tc.events)
		case tc.eof && err != io.EOF:
			t.Errorf("%s: ended with %v, want io.EOF", tc.name, err)
		case !tc.eof && (!errors.As(err, &e) || e.Status != 502):
			t.Errorf("%s: ended with %v, want a 502 *llmproxy.Error", tc.name, err)
		}
	}
}
