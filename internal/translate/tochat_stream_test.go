package translate_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// checkEventOrder checks the order Anthropic's clients require:
// message_start first, each content_block_start closed by its stop
// before the next starts, deltas only inside their open block, and
// message_delta then message_stop last.
func checkEventOrder(t *testing.T, events [][]byte, ended bool) {
	t.Helper()
	open := -1
	next := 0
	for i, e := range events {
		var ev struct {
			Type  string `json:"type"`
			Index *int   `json:"index"`
		}
		if err := json.Unmarshal(e, &ev); err != nil {
			t.Fatalf("event %d is not JSON: %s", i, e)
		}
		if (i == 0) != (ev.Type == "message_start") {
			t.Fatalf("event %d is %s", i, ev.Type)
		}
		switch ev.Type {
		case "message_start":
		case "content_block_start":
			if open != -1 || ev.Index == nil || *ev.Index != next {
				t.Fatalf("event %d: block %v starts while %d is open (next %d)", i, ev.Index, open, next)
			}
			open = *ev.Index
			next++
		case "content_block_delta", "content_block_stop":
			if ev.Index == nil || *ev.Index != open {
				t.Fatalf("event %d: %s for block %v while %d is open", i, ev.Type, ev.Index, open)
			}
			if ev.Type == "content_block_stop" {
				open = -1
			}
		case "message_delta":
			if open != -1 || i != len(events)-2 {
				t.Fatalf("event %d: message_delta with block %d open, or not second to last", i, open)
			}
		case "message_stop":
			if i != len(events)-1 || events[i-1] == nil {
				t.Fatalf("event %d: message_stop not last", i)
			}
		default:
			t.Fatalf("event %d: unknown type %q", i, ev.Type)
		}
	}
	if ended {
		if len(events) < 3 {
			t.Fatalf("a finished stream of %d events", len(events))
		}
		var last struct{ Type string }
		_ = json.Unmarshal(events[len(events)-2], &last)
		if last.Type != "message_delta" {
			t.Fatalf("second to last event is %s", last.Type)
		}
	}
}

// collect reads a stream to its end; ended is false if it broke.
func collect(t *testing.T, s translate.Stream) (events [][]byte, ended bool) {
	t.Helper()
	for {
		e, err := s.Next()
		if err == io.EOF {
			return events, true
		}
		if err != nil {
			return events, false
		}
		if !json.Valid(e) {
			t.Fatalf("event is not JSON: %q", e)
		}
		events = append(events, append([]byte(nil), e...))
	}
}

func TestStreamGoldenOrder(t *testing.T) {
	files, _ := filepath.Glob("testdata/tochat/stream_*.json")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		var c goldenCase
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		var chunks []json.RawMessage
		_ = json.Unmarshal(c.Input, &chunks)
		src := &sliceStream{}
		for _, ch := range chunks {
			src.events = append(src.events, ch)
		}
		events, ended := collect(t, translate.ChatStreamToMessages(src, "m"))
		checkEventOrder(t, events, ended)
	}
}

// TestStreamNoBuffering checks that each event is given out as soon as
// the chunk causing it has been read, not when a later one comes.
func TestStreamNoBuffering(t *testing.T) {
	src := &stepStream{chunks: []string{
		`{"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{"}}]}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		`{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`,
	}}
	s := translate.ChatStreamToMessages(src, "m")
	want := [][]string{
		{"message_start", "content_block_start", "content_block_delta"},
		{"content_block_stop", "content_block_start", "content_block_delta"},
		{"content_block_stop"},
		{"message_delta", "message_stop"},
	}
	checkNoBuffering(t, s, src, want, 1)
}

// checkNoBuffering reads s, a translation of src, and checks that the
// events of want[i] come, in that order, once src has given i+first
// chunks and no more, that s is not Ready once they have, and that s
// ends after the last.
func checkNoBuffering(t *testing.T, s translate.Stream, src *stepStream, want [][]string, first int) {
	t.Helper()
	r, _ := s.(interface{ Ready() bool })
	for i, types := range want {
		for j, typ := range types {
			e, err := s.Next()
			if err != nil {
				t.Fatalf("chunk %d event %d: %v", i, j, err)
			}
			var ev struct{ Type string }
			_ = json.Unmarshal(e, &ev)
			if ev.Type != typ || src.read != i+first {
				t.Fatalf("chunk %d event %d: %s after reading %d chunks; want %s after %d", i, j, ev.Type, src.read, typ, i+first)
			}
		}
		if r != nil && r.Ready() {
			t.Errorf("after chunk %d: Ready with nothing queued", i)
		}
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// stepStream counts the chunks read; Next's slice is reused, as the
// gateway's EventStream does.
type stepStream struct {
	chunks []string
	read   int
	buf    []byte
}

func (s *stepStream) Next() ([]byte, error) {
	if s.read == len(s.chunks) {
		return nil, io.EOF
	}
	s.read++
	s.buf = append(s.buf[:0], s.chunks[s.read-1]...)
	return s.buf, nil
}

func (s *stepStream) Close() error { return nil }

// FuzzChatStreamToMessages feeds arbitrary chunk sequences (split on
// newlines) and checks that the events are JSON in the required order,
// and that nothing panics.
func FuzzChatStreamToMessages(f *testing.F) {
	files, _ := filepath.Glob("testdata/tochat/stream_*.json")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		var c goldenCase
		if json.Unmarshal(raw, &c) != nil {
			continue
		}
		var chunks []json.RawMessage
		_ = json.Unmarshal(c.Input, &chunks)
		var seed []byte
		for _, ch := range chunks {
			b, _ := json.Marshal(ch)
			seed = append(append(seed, b...), '\n')
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &sliceStream{}
		start := 0
		for i := 0; i <= len(data); i++ {
			if i == len(data) || data[i] == '\n' {
				if i > start {
					src.events = append(src.events, data[start:i])
				}
				start = i + 1
			}
		}
		events, ended := collect(t, translate.ChatStreamToMessages(src, "m\"<"))
		checkEventOrder(t, events, ended)
	})
}

// BenchmarkChatStreamToMessages measures the translation per upstream
// chunk of a typical answer: text deltas, a tool call in fragments, the
// finish and usage chunks.
func BenchmarkChatStreamToMessages(b *testing.B) {
	var chunks []string
	chunks = append(chunks, (`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`))
	for range 40 {
		chunks = append(chunks, (`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" the quick"},"logprobs":null,"finish_reason":null}],"usage":null}`))
	}
	chunks = append(chunks, (`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"Read","arguments":""}}]},"finish_reason":null}],"usage":null}`))
	for range 8 {
		chunks = append(chunks, (`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"file\":"}}]},"finish_reason":null}],"usage":null}`))
	}
	chunks = append(chunks,
		(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}`),
		(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[],"usage":{"prompt_tokens":2000,"completion_tokens":5,"total_tokens":2005,"prompt_tokens_details":{"cached_tokens":1536}}}`))
	events := 0
	b.ReportAllocs()
	for b.Loop() {
		src := &stepStream{chunks: chunks}
		s := translate.ChatStreamToMessages(src, "claude-sonnet")
		for {
			if _, err := s.Next(); err != nil {
				break
			}
			events++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// loopChunks yields its first chunks once, then the rest over and over,
// as a long answer does, in a reused buffer.
type loopChunks struct {
	chunks []string
	first  int // chunks[:first] come once
	next   int
	buf    []byte
}

func (s *loopChunks) Next() ([]byte, error) {
	s.buf = append(s.buf[:0], s.chunks[s.next]...)
	if s.next++; s.next == len(s.chunks) {
		s.next = s.first
	}
	return s.buf, nil
}

func (s *loopChunks) Close() error { return nil }

// streamEventCases are streams whose chunks after the first ones each
// cause one event: a text delta, or a tool call's arguments.
var streamEventCases = []struct {
	name   string
	chunks []string
}{
	{"text_delta", []string{
		`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" the quick"},"logprobs":null,"finish_reason":null}],"usage":null}`,
	}},
	{"tool_args", []string{
		`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"Read","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"file\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}`,
	}},
}

// BenchmarkChatStreamToMessagesEvent measures one event in steady
// state: a text delta, or a tool call's arguments.
func BenchmarkChatStreamToMessagesEvent(b *testing.B) {
	for _, bc := range streamEventCases {
		b.Run(bc.name, func(b *testing.B) {
			s := translate.ChatStreamToMessages(&loopChunks{chunks: bc.chunks, first: 1}, "claude-sonnet")
			for range 4 { // message_start, the block's start, the first delta
				if _, err := s.Next(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
