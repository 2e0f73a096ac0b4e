package translate_test

import (
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

func mustResponsesRequest(t testing.TB, body string) *translate.ResponsesRequest {
	t.Helper()
	r, err := translate.ResponsesToChat([]byte(body), translate.ResponsesOptions{Model: "m", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestResponsesStreamNoBuffering checks that each event is given out as
// soon as the chunk causing it has been read, not when a later one comes,
// and that the first two come before the upstream is read at all.
func TestResponsesStreamNoBuffering(t *testing.T) {
	src := &stepStream{chunks: []string{
		`{"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{"}}]}}]}`,
		`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		`{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`,
	}}
	s := translate.ChatStreamToResponses(src, mustResponsesRequest(t, `{"input":"hi"}`), testMeta(""))
	want := [][]string{
		{"response.created", "response.in_progress"},
		{"response.output_item.added", "response.content_part.added", "response.output_text.delta"},
		{"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta"},
		{"response.function_call_arguments.done", "response.output_item.done"},
		{"response.completed"},
	}
	checkNoBuffering(t, s, src, want, 0)
}

// TestResponsesStreamUpstreamError checks that an upstream error comes
// back as it is, after the events already made, and that an error after
// the terminal event is not shown.
func TestResponsesStreamUpstreamError(t *testing.T) {
	boom := errors.New("boom")
	src := &errStream{chunks: []string{`{"choices":[{"index":0,"delta":{"content":"a"}}]}`}, err: boom}
	s := translate.ChatStreamToResponses(src, mustResponsesRequest(t, `{"input":"hi"}`), testMeta(""))
	var err error
	n := 0
	for ; err == nil; n++ {
		_, err = s.Next()
	}
	if !errors.Is(err, boom) || n != 6 {
		t.Fatalf("after %d events: %v; want boom after 5", n-1, err)
	}

	src = &errStream{chunks: []string{`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`}, err: boom}
	s = translate.ChatStreamToResponses(src, mustResponsesRequest(t, `{"input":"hi"}`), testMeta(""))
	var events [][]byte
	for {
		e, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after the terminal event: %v", err)
		}
		events = append(events, append([]byte(nil), e...))
	}
	if err := translate.CheckResponsesEvents(events); err != nil {
		t.Fatal(err)
	}
}

// errStream yields its chunks, then err.
type errStream struct {
	chunks []string
	err    error
}

func (s *errStream) Next() ([]byte, error) {
	if len(s.chunks) == 0 {
		return nil, s.err
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return []byte(c), nil
}

func (s *errStream) Close() error { return nil }

// TestResponsesStreamMatchesResponse checks that the terminal event's
// response is what ChatToResponsesResponse makes of the same answer.
func TestResponsesStreamMatchesResponse(t *testing.T) {
	r := mustResponsesRequest(t, `{"input":"hi","instructions":"be brief","tools":[{"type":"function","name":"Read","parameters":{"type":"object"}}]}`)
	chunks := []string{
		`{"choices":[{"index":0,"delta":{"role":"assistant","content":"Reading \"a\"\n"}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"Read","arguments":"{\"p\":"}}]}}]}`,
		`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"é\"}"}}]}}]}`,
		`{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":2}}}`,
	}
	whole := `{"choices":[{"index":0,"message":{"role":"assistant","content":"Reading \"a\"\n","tool_calls":[{"id":"call_1","type":"function","function":{"name":"Read","arguments":"{\"p\":\"é\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":2}}}`
	s := translate.ChatStreamToResponses(&stepStream{chunks: chunks}, r, testMeta(""))
	var last []byte
	for {
		e, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = append(last[:0], e...)
	}
	var term struct{ Response json.RawMessage }
	if err := json.Unmarshal(last, &term); err != nil {
		t.Fatal(err)
	}
	want, err := translate.ChatToResponsesResponse([]byte(whole), r, testMeta(""))
	if err != nil {
		t.Fatal(err)
	}
	if string(term.Response) != string(want) {
		t.Errorf("stream's response:\n%s\nwhole answer's:\n%s", term.Response, want)
	}
}

// FuzzChatStreamToResponses feeds arbitrary chunk sequences (split on
// newlines): a stream that ends must pass CheckResponsesEvents, every
// event must be one line of JSON, and nothing may panic.
func FuzzChatStreamToResponses(f *testing.F) {
	files, _ := filepath.Glob("testdata/responses/stream_*.json")
	for _, file := range files {
		c := readResponsesCase(f, file)
		var chunks []json.RawMessage
		_ = json.Unmarshal(c.Input, &chunks)
		var seed []byte
		for _, ch := range chunks {
			b, _ := json.Marshal(ch)
			seed = append(append(seed, b...), '\n')
		}
		f.Add(seed)
	}
	r := mustResponsesRequest(f, `{"input":"hi","tools":[{"type":"function","name":"f"}]}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &sliceStream{}
		for _, line := range strings.Split(string(data), "\n") {
			if line != "" {
				src.events = append(src.events, []byte(line))
			}
		}
		s := translate.ChatStreamToResponses(src, r, translate.ResponseMeta{ID: "resp_\"x", Model: "m\"<"})
		var events [][]byte
		for {
			e, err := s.Next()
			if err == io.EOF {
				if err := translate.CheckResponsesEvents(events); err != nil {
					t.Fatalf("%v\n%s", err, joinEvents(events))
				}
				return
			}
			if err != nil {
				return
			}
			if !json.Valid(e) || strings.ContainsAny(string(e), "\r\n") {
				t.Fatalf("event is not one line of JSON: %q", e)
			}
			events = append(events, append([]byte(nil), e...))
		}
	})
}

func joinEvents(events [][]byte) string {
	var sb strings.Builder
	for _, e := range events {
		sb.Write(e)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// BenchmarkChatStreamToResponses measures the translation per event of a
// typical answer: text deltas, a tool call in fragments, the finish and
// usage chunks.
func BenchmarkChatStreamToResponses(b *testing.B) {
	const id = `"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","system_fingerprint":"fp_1",`
	var chunks []string
	chunks = append(chunks, `{`+id+`"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`)
	for range 40 {
		chunks = append(chunks, `{`+id+`"choices":[{"index":0,"delta":{"content":" the quick"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	}
	chunks = append(chunks, `{`+id+`"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"exec_command","arguments":""}}]},"finish_reason":null}],"usage":null}`)
	for range 8 {
		chunks = append(chunks, `{`+id+`"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"cmd\":"}}]},"finish_reason":null}],"usage":null}`)
	}
	chunks = append(chunks,
		`{`+id+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}`,
		`{`+id+`"choices":[],"usage":{"prompt_tokens":2000,"completion_tokens":5,"total_tokens":2005,"prompt_tokens_details":{"cached_tokens":1536}}}`)
	r := mustResponsesRequest(b, `{"input":"hi","tools":[{"type":"function","name":"exec_command","parameters":{"type":"object","properties":{"cmd":{"type":"string"}}}}]}`)
	events := 0
	b.ReportAllocs()
	for b.Loop() {
		s := translate.ChatStreamToResponses(&stepStream{chunks: chunks}, r, testMeta(""))
		for {
			if _, err := s.Next(); err != nil {
				break
			}
			events++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkChatStreamToResponsesEvent measures one event in steady
// state: a text delta, or a tool call's arguments.
func BenchmarkChatStreamToResponsesEvent(b *testing.B) {
	r := mustResponsesRequest(b, `{"input":"hi","tools":[{"type":"function","name":"Read","parameters":{"type":"object","properties":{"file":{"type":"string"}}}}]}`)
	for _, bc := range streamEventCases {
		b.Run(bc.name, func(b *testing.B) {
			s := translate.ChatStreamToResponses(&loopChunks{chunks: bc.chunks, first: 1}, r, testMeta(""))
			for range 6 { // created, in_progress, the item's (and part's) start, the first delta
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
