package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// streamGoldenChunks returns the upstream chunks of the golden stream
// cases of both translations, the error markers left out.
func streamGoldenChunks(tb testing.TB) [][]byte {
	tb.Helper()
	files, _ := filepath.Glob("testdata/tochat/stream_*.json")
	more, _ := filepath.Glob("testdata/responses/stream_*.json")
	var chunks [][]byte
	for _, file := range append(files, more...) {
		raw, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		var c struct{ Input []json.RawMessage }
		if err := json.Unmarshal(raw, &c); err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		for _, ch := range c.Input {
			if !bytes.HasPrefix(ch, []byte(`{"error"`)) {
				var buf bytes.Buffer
				_ = json.Compact(&buf, ch)
				chunks = append(chunks, buf.Bytes())
			}
		}
	}
	if len(chunks) == 0 {
		tb.Fatal("no golden stream chunks")
	}
	return chunks
}

// oddChunks are chunks encoding/json reads in its own way, or refuses,
// which scanChunk must leave to it or read the same.
var oddChunks = []string{
	`null`, `[]`, `"x"`, `{}`, ` { } `, `{"choices":null,"usage":null,"id":null}`,
	`{"id":"a","ID":"b"}`, `{"id":"a","id":"b"}`, `{"Choices":[]}`, `{"choi\u0063es":[]}`,
	`{"choices":[],"choices":[{"index":0,"delta":{"content":"x"}}]}`,
	`{"choices":[null]}`, `{"choices":[1]}`, `{"choices":{}}`, `{"choices":"x"}`,
	`{"choices":[{"index":null,"delta":null,"finish_reason":null}]}`,
	`{"choices":[{"index":1.0}]}`, `{"choices":[{"index":-1}]}`, `{"choices":[{"index":-0}]}`,
	`{"choices":[{"index":1e0}]}`, `{"choices":[{"index":"0"}]}`, `{"choices":[{"index":99999999999999999999}]}`,
	`{"choices":[{"index":0,"index":1}]}`, `{"choices":[{"INDEX":1}]}`,
	`{"choices":[{"delta":{"content":"a"},"delta":{"refusal":"b"}}]}`,
	`{"choices":[{"delta":{"content":"a","Content":"b"}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"index":0}],"tool_calls":[{"index":1,"id":"x"}]}}]}`,
	`{"choices":[{"delta":{"tool_call\u017f":[]}}]}`, `{"choices":[{"delta":{"tool_call` + "\u017f" + `":[{"id":"x"}]}}]}`,
	`{"choices":[{"delta":{"tool_calls":[null]}}]}`, `{"choices":[{"delta":{"tool_calls":{}}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"function":null,"id":null,"index":null}]}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"function":"f"}]}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"function":{"name":"a","NAME":"b"}}]}}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"a","arguments":"b"}}]}}]}`,
	`{"choices":[{"delta":{"content":[{"type":"text","text":"a"}],"refusal":5}}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"delta":{"content":"\u00e9\ud83d\ude00 \" \\ \/ \n"},"finish_reason":"stop"}]}`,
	"{\"choices\":[{\"delta\":{\"content\":\"bad \xff utf8\"}}]}", "{\"\xff\":1,\"choices\":[]}",
	`{"choices":[{"delta":{"content":"a"}}],}`, `{"choices":[{"delta":{"content":"a"}}]`, `{"choices":[{"delta":{"content":"a"}}]} x`,
	`{"x":[[[[[[[[[[]]]]]]]]]],"choices":[{"index":0,"logprobs":{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[]}]},"delta":{"content":"a"}}]}`,
	` {"id" : "c" , "choices" : [ { "index" : 0 , "delta" : { "content" : "a" } } ] , "usage" : null } `,
}

// FuzzScanChunk checks that whenever scanChunk reads a chunk it reads
// what encoding/json does, into a chunk that held another before.
func FuzzScanChunk(f *testing.F) {
	for _, c := range streamGoldenChunks(f) {
		f.Add(c)
	}
	for _, c := range oddChunks {
		f.Add([]byte(c))
	}
	prev := []byte(`{"id":"p","choices":[{"index":0,"delta":{"content":"p","refusal":"r","tool_calls":[{"index":3,"id":"i","function":{"name":"n","arguments":"a"}},{"index":4}]},"finish_reason":"stop"},{"index":1}],"usage":{"x":1}}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var want streamChunk
		werr := json.Unmarshal(data, &want)
		var got streamChunk
		if !scanChunk(prev, &got) {
			t.Fatal("the previous chunk was not scanned")
		}
		if !scanChunk(data, &got) {
			return
		}
		if werr != nil {
			t.Fatalf("scanned a chunk encoding/json refuses (%v): %q", werr, data)
		}
		if g, w := chunkString(&got), chunkString(&want); g != w {
			t.Fatalf("%q\nscanned %s\ndecoded %s", data, g, w)
		}
	})
}

// chunkString shows what the translations read of c: absent and empty
// raw values alike.
func chunkString(c *streamChunk) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "id=%s usage=%s", c.ID, c.Usage)
	for _, ch := range c.Choices {
		d := ch.Delta
		fmt.Fprintf(&sb, " [index=%d finish=%s content=%s refusal=%s", ch.Index, ch.FinishReason, d.Content, d.Refusal)
		for _, tc := range d.ToolCalls {
			fmt.Fprintf(&sb, " {index=%d id=%s name=%s args=%s}", tc.Index, tc.ID, tc.Function.Name, tc.Function.Arguments)
		}
		sb.WriteString("]")
	}
	return sb.String()
}

// TestScanChunkReadsGoldenChunks checks that the chunks upstreams send
// take the fast way.
func TestScanChunkReadsGoldenChunks(t *testing.T) {
	var c streamChunk
	for _, data := range streamGoldenChunks(t) {
		if !scanChunk(data, &c) {
			t.Errorf("left to encoding/json: %s", data)
		}
	}
}

// TestChatStreamsDecodedChunks checks that chunks left to encoding/json
// (here, every member name written with an escape) are translated as
// the same chunks read by scanChunk, by both translations: their events
// and errors are the same.
func TestChatStreamsDecodedChunks(t *testing.T) {
	r, err := ResponsesToChat([]byte(`{"input":"hi"}`), ResponsesOptions{Model: "m", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	meta := ResponseMeta{ID: "resp_1", Model: "m", CreatedAt: time.Unix(1, 0)}
	cases := [][]string{
		{
			`{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"content":"a \"b\"\n"}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"refusal":"no"}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{\"a\":"}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"name":"g"}}]}}]}`,
			`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
			`{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`,
		},
		{
			`{"id":"d","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}`,
			`{"id":"d","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"u","function":{"name":"h","arguments":"{}"}}]}}]}`,
			`{"id":"d","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"x"}}]}}]}`,
		},
	}
	for i, chunks := range cases {
		escaped := make([]string, len(chunks))
		for j, c := range chunks {
			escaped[j] = escapeNames(c)
			if scanChunk([]byte(escaped[j]), &streamChunk{}) {
				t.Fatalf("scanned %s", escaped[j])
			}
		}
		for _, name := range []string{"messages", "responses"} {
			run := func(chunks []string) string {
				var s Stream
				if name == "messages" {
					s = ChatStreamToMessages(&chunkSource{chunks: chunks}, "m")
				} else {
					s = ChatStreamToResponses(&chunkSource{chunks: chunks}, r, meta)
				}
				var sb strings.Builder
				for {
					e, err := s.Next()
					if err != nil {
						fmt.Fprintf(&sb, "%v", err)
						return sb.String()
					}
					sb.Write(e)
					sb.WriteByte('\n')
				}
			}
			if got, want := run(escaped), run(chunks); got != want {
				t.Errorf("case %d, %s: decoded chunks give\n%s\nscanned ones\n%s", i, name, got, want)
			}
		}
	}
}

// escapeNames writes the first letter of every member name of a chunk
// as a \u escape, which encoding/json reads as the letter and scanChunk
// leaves to it.
func escapeNames(chunk string) string {
	var sb strings.Builder
	for i := 0; i < len(chunk); i++ {
		sb.WriteByte(chunk[i])
		if (chunk[i] == '{' || (chunk[i] == ',' && chunk[i+1] == '"')) && chunk[i+1] == '"' {
			i++
			fmt.Fprintf(&sb, `"\u%04x`, chunk[i+1])
			i++
		}
	}
	return sb.String()
}

// chunkSource gives its chunks one by one in a reused buffer, as the
// gateway's EventStream does.
type chunkSource struct {
	chunks []string
	buf    []byte
}

func (s *chunkSource) Next() ([]byte, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	s.buf = append(s.buf[:0], s.chunks[0]...)
	s.chunks = s.chunks[1:]
	return s.buf, nil
}

func (s *chunkSource) Close() error { return nil }
