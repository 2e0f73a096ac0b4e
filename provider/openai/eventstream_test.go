package openai_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

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
