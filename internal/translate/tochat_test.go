package translate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

var update = flag.Bool("update", false, "rewrite the outputs of the golden files in testdata/tochat")

// goldenCase is one file of testdata/tochat: an input, how to translate
// it, and the expected output ({"error": MESSAGE} for a refusal).
type goldenCase struct {
	Comment   string                 `json:"comment,omitempty"`
	Direction string                 `json:"direction"` // request, response or stream
	Options   *translate.ChatOptions `json:"options,omitempty"`
	Model     string                 `json:"model,omitempty"`
	Input     json.RawMessage        `json:"input"`
	Output    json.RawMessage        `json:"output"`
}

// TestGolden runs every case in testdata/tochat; -update rewrites their
// outputs from what the code produces now.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/tochat/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c goldenCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			got := runCase(t, c)
			if *update {
				c.Output = got
				out, err := json.MarshalIndent(c, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := compact(t, c.Output); !bytes.Equal(compact(t, got), want) {
				t.Errorf("%s:\n got %s\nwant %s", file, compact(t, got), want)
			}
		})
	}
}

// runCase translates a case's input and returns the output as JSON.
func runCase(t *testing.T, c goldenCase) json.RawMessage {
	t.Helper()
	var out []byte
	var err error
	switch c.Direction {
	case "request":
		var opts translate.ChatOptions
		if c.Options != nil {
			opts = *c.Options
		}
		out, err = translate.MessagesToChat(c.Input, opts)
	case "response":
		out, err = translate.ChatToMessagesResponse(c.Input, c.Model)
	case "stream":
		out, err = streamEvents(t, c.Input, c.Model)
	default:
		t.Fatalf("unknown direction %q", c.Direction)
	}
	if err != nil {
		out, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	if !json.Valid(out) {
		t.Fatalf("output is not JSON: %s", out)
	}
	return randomID.ReplaceAll(out, []byte("${1}gwRANDOM"))
}

// randomID matches the ids made for answers without an upstream id.
var randomID = regexp.MustCompile(`(msg_|toolu_)gw[0-9a-f]{24}`)

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %s: %v", b, err)
	}
	return buf.Bytes()
}

// TestMessagesToChatRefuses checks that what cannot be translated is a
// RequestError naming the field.
func TestMessagesToChatRefuses(t *testing.T) {
	checkRefusals(t, []refusal{
		{`{`, ""},
		{`[]`, ""},
		{`{"model":"m","max_tokens":5}`, "messages"},
		{`{"messages":"hi"}`, "messages"},
		{`{"messages":[{"role":"tool","content":"x"}]}`, "messages[0].role"},
		{`{"messages":[{"role":"user","content":5}]}`, "messages[0].content"},
		{`{"messages":[{"role":"user","content":[{"type":"search_result"}]}]}`, "messages[0].content[0].type"},
		{`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages[0].content[0].source.type"},
		{`{"messages":[{"role":"user","content":[{"type":"image"}]}]}`, "messages[0].content[0].source"},
		{`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"AA=="}}]}]}`, "messages[0].content[0].source"},
		{`{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}`, "messages[0].content[0].source"},
		{`{"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`, "messages[0].content[0].tool_use_id"},
		{`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"search_result"}]}]}]}`, "messages[0].content[0].content[0].type"},
		{`{"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"n","input":{}}]}]}`, "messages[0].content[0].type"},
		{`{"messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}`, "messages[0].content[0].type"},
		{`{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","input":{}}]}]}`, "messages[0].content[0].name"},
		{`{"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"n","input":{}}]}]}`, "messages[0].content[0].id"},
		{`{"system":[{"type":"image"}],"messages":[]}`, "system[0].type"},
		{`{"system":5,"messages":[]}`, "system"},
		{`{"messages":[],"tools":[{"input_schema":{}}]}`, "tools[0].name"},
		{`{"messages":[],"tool_choice":{"type":"maybe"}}`, "tool_choice.type"},
		{`{"messages":[],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"tool"}}`, "tool_choice.name"},
		{`{"messages":[],"max_tokens":"ten"}`, "max_tokens"},
		{`{"messages":[],"stop_sequences":"x"}`, "stop_sequences"},
	}, func(body []byte) error {
		_, err := translate.MessagesToChat(body, translate.ChatOptions{Model: "m"})
		return err
	})
}

// refusal is a request body a translation must refuse, and the param
// its RequestError must name.
type refusal struct{ body, param string }

// checkRefusals checks that translating each body gives a RequestError
// naming its param.
func checkRefusals(t *testing.T, cases []refusal, translateBody func([]byte) error) {
	t.Helper()
	for _, c := range cases {
		err := translateBody([]byte(c.body))
		var re *translate.RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: err = %v; want a *RequestError", c.body, err)
			continue
		}
		if re.Param != c.param {
			t.Errorf("%s: param = %q (%v); want %q", c.body, re.Param, err, c.param)
		}
	}
}

// TestChatToMessagesResponseRefuses checks upstream answers that are no
// chat.completion.
func TestChatToMessagesResponseRefuses(t *testing.T) {
	for _, body := range []string{`{`, `{"choices":[]}`, `{"choices":[{"finish_reason":"stop"}]}`, `{"choices":[{"message":{"content":5}}]}`} {
		if out, err := translate.ChatToMessagesResponse([]byte(body), "a"); err == nil {
			t.Errorf("%s: no error, %s", body, out)
		}
	}
}

// FuzzMessagesToChat checks that any input gives valid JSON or a
// RequestError, never a panic, and that the output is a chat request.
func FuzzMessagesToChat(f *testing.F) {
	files, _ := filepath.Glob("testdata/tochat/*.json")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		var c goldenCase
		if json.Unmarshal(raw, &c) == nil && c.Direction == "request" {
			f.Add([]byte(c.Input))
		}
	}
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := translate.MessagesToChat(body, translate.ChatOptions{Model: "m", Stream: true})
		if err != nil {
			var re *translate.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is no RequestError", err)
			}
			return
		}
		var req struct {
			Model    string            `json:"model"`
			Messages []json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(out, &req); err != nil || req.Model != "m" || req.Messages == nil {
			t.Fatalf("output %s: %v", out, err)
		}
	})
}

// claudeCodeBody returns a Claude Code-like request of about size bytes:
// the realistic golden case with its conversation repeated.
func claudeCodeBody(tb testing.TB, size int) []byte {
	raw, err := os.ReadFile("testdata/tochat/request_claude_code.json")
	if err != nil {
		tb.Fatal(err)
	}
	var c goldenCase
	if err := json.Unmarshal(raw, &c); err != nil {
		tb.Fatal(err)
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(c.Input, &req); err != nil {
		tb.Fatal(err)
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(req["messages"], &msgs); err != nil {
		tb.Fatal(err)
	}
	grown := msgs
	for i := 0; len(c.Input)+len(grown)*200 < size && i < 1000; i++ {
		grown = append(grown, msgs[1:]...)
		b, _ := json.Marshal(grown)
		if len(c.Input)+len(b) >= size {
			break
		}
	}
	req["messages"], _ = json.Marshal(grown)
	body, _ := json.Marshal(req)
	return body
}

func BenchmarkMessagesToChat(b *testing.B) {
	body := claudeCodeBody(b, 50_000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := translate.MessagesToChat(body, translate.ChatOptions{Model: "gpt-5", Stream: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessagesToChatUnescaped is BenchmarkMessagesToChat on a body
// written as JavaScript's JSON.stringify writes it (Claude Code's): <, >
// and & unescaped, which the translation escapes in message content.
func BenchmarkMessagesToChatUnescaped(b *testing.B) {
	body := claudeCodeBody(b, 50_000)
	body = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(body)))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := translate.MessagesToChat(body, translate.ChatOptions{Model: "gpt-5", Stream: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// sliceStream is a Stream over fixed events; an element {"error": M}
// is returned as an error.
type sliceStream struct {
	events [][]byte
	closed bool
}

func (s *sliceStream) Next() ([]byte, error) {
	if len(s.events) == 0 {
		return nil, io.EOF
	}
	e := s.events[0]
	s.events = s.events[1:]
	var probe struct {
		Error *string `json:"error"`
	}
	if json.Unmarshal(e, &probe) == nil && probe.Error != nil {
		return nil, errors.New(*probe.Error)
	}
	return e, nil
}

func (s *sliceStream) Close() error { s.closed = true; return nil }

// newSliceStream is a sliceStream over a JSON array of chunks.
func newSliceStream(chunks json.RawMessage) (*sliceStream, error) {
	var in []json.RawMessage
	if err := json.Unmarshal(chunks, &in); err != nil {
		return nil, fmt.Errorf("input is no array of chunks: %w", err)
	}
	src := &sliceStream{}
	for _, c := range in {
		src.events = append(src.events, c)
	}
	return src, nil
}

// drainEvents reads s, a translation of src, to its end, checking that
// every event is one line of JSON and that Close closes src. It returns
// the events, and the same as a JSON array in which an error from the
// stream is a last element {"error": M}; ended is whether s ended
// without an error.
func drainEvents(t testing.TB, s translate.Stream, src *sliceStream) (events [][]byte, out []byte, ended bool) {
	var all []json.RawMessage
	for {
		ev, err := s.Next()
		if err == io.EOF {
			ended = true
			break
		}
		if err != nil {
			e, _ := json.Marshal(map[string]string{"error": err.Error()})
			all = append(all, e)
			break
		}
		if !json.Valid(ev) || bytes.ContainsAny(ev, "\r\n") {
			t.Fatalf("event is not one line of JSON: %q", ev)
		}
		ev = append([]byte(nil), ev...)
		events = append(events, ev)
		all = append(all, ev)
	}
	if err := s.Close(); err != nil || !src.closed {
		t.Fatalf("Close: %v, upstream closed %v", err, src.closed)
	}
	out, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return events, out, ended
}

// streamEvents translates a JSON array of chunks and returns the events
// as a JSON array; an error from the stream becomes a last element
// {"error": M}.
func streamEvents(t testing.TB, chunks json.RawMessage, model string) ([]byte, error) {
	src, err := newSliceStream(chunks)
	if err != nil {
		return nil, err
	}
	_, out, _ := drainEvents(t, translate.ChatStreamToMessages(src, model), src)
	return out, nil
}
