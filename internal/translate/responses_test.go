package translate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// responsesCase is one file of testdata/responses: an input, how to
// translate it, and the expected output ({"error": MESSAGE} for a
// refusal).
//
//	request:  input is a Responses request; output is {"chat", "input",
//	          "dropped_tools", "response"}, response being the answer to
//	          it made of a fixed chat.completion (it shows the echo)
//	response: input is a chat.completion; request (default {"input":"hi"})
//	          the Responses request it answers; output the response object
//	stream:   input is an array of chat.completion.chunk (an element
//	          {"error": M} is an upstream error); output the events, an
//	          error ending them as {"error": M}
type responsesCase struct {
	Comment   string           `json:"comment,omitempty"`
	Direction string           `json:"direction"`
	Options   *responsesOpts   `json:"options,omitempty"`
	Model     string           `json:"model,omitempty"`
	Request   *json.RawMessage `json:"request,omitempty"`
	Input     json.RawMessage  `json:"input"`
	Output    json.RawMessage  `json:"output"`
}

// responsesOpts is ResponsesOptions as a golden file writes it.
type responsesOpts struct {
	Model               string          `json:"model,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	MaxCompletionTokens bool            `json:"max_completion_tokens,omitempty"`
	History             json.RawMessage `json:"history,omitempty"`
}

func (o *responsesOpts) options() translate.ResponsesOptions {
	if o == nil {
		return translate.ResponsesOptions{Model: "remote-model"}
	}
	return translate.ResponsesOptions{Model: o.Model, Stream: o.Stream, MaxCompletionTokens: o.MaxCompletionTokens, History: o.History}
}

// testMeta is the ResponseMeta of every golden case.
func testMeta(model string) translate.ResponseMeta {
	if model == "" {
		model = "alias"
	}
	return translate.ResponseMeta{ID: "resp_test1", Model: model, CreatedAt: time.Unix(1767225600, 0)}
}

// TestResponsesGolden runs every case in testdata/responses; -update
// rewrites their outputs from what the code produces now.
func TestResponsesGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/responses/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			c := readResponsesCase(t, file)
			got := runResponsesCase(t, c)
			if *update {
				c.Output = got
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(c); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
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

func readResponsesCase(t testing.TB, file string) responsesCase {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c responsesCase
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c
}

// fixedAnswer is the chat.completion request cases are answered with.
const fixedAnswer = `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}`

// runResponsesCase translates a case's input and returns the output as
// JSON.
func runResponsesCase(t *testing.T, c responsesCase) json.RawMessage {
	t.Helper()
	var out []byte
	var err error
	switch c.Direction {
	case "request":
		out, err = requestOutput(c.Input, c.Options.options(), c.Model)
	case "response", "stream":
		body := []byte(`{"input":"hi"}`)
		if c.Request != nil {
			body = *c.Request
		}
		r, rerr := translate.ResponsesToChat(body, c.Options.options())
		if rerr != nil {
			t.Fatalf("request: %v", rerr)
		}
		if c.Direction == "response" {
			out, err = translate.ChatToResponsesResponse(c.Input, r, testMeta(c.Model))
		} else {
			out, err = responsesStreamEvents(t, c.Input, r, testMeta(c.Model))
		}
	default:
		t.Fatalf("unknown direction %q", c.Direction)
	}
	if err != nil {
		out, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	if !json.Valid(out) {
		t.Fatalf("output is not JSON: %s", out)
	}
	return out
}

// requestOutput translates a request and shows what came of it.
func requestOutput(body []byte, opts translate.ResponsesOptions, model string) ([]byte, error) {
	r, err := translate.ResponsesToChat(body, opts)
	if err != nil {
		return nil, err
	}
	resp, err := translate.ChatToResponsesResponse([]byte(fixedAnswer), r, testMeta(model))
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Chat         json.RawMessage `json:"chat"`
		Input        json.RawMessage `json:"input"`
		DroppedTools []string        `json:"dropped_tools"`
		Response     json.RawMessage `json:"response"`
	}{r.Chat, r.Input, r.DroppedTools, resp})
}

// responsesStreamEvents translates a JSON array of chunks and returns the
// events as a JSON array; an error from the stream becomes a last element
// {"error": M}. A stream that ended must pass CheckResponsesEvents.
func responsesStreamEvents(t testing.TB, chunks json.RawMessage, r *translate.ResponsesRequest, m translate.ResponseMeta) ([]byte, error) {
	src, err := newSliceStream(chunks)
	if err != nil {
		return nil, err
	}
	events, out, ended := drainEvents(t, translate.ChatStreamToResponses(src, r, m), src)
	if ended {
		if err := translate.CheckResponsesEvents(events); err != nil {
			t.Fatalf("CheckResponsesEvents: %v", err)
		}
	}
	return out, nil
}

// TestResponsesToChatRefuses checks that what cannot be translated is a
// RequestError naming the field.
func TestResponsesToChatRefuses(t *testing.T) {
	checkRefusals(t, []refusal{
		{`{`, ""},
		{`[]`, ""},
		{`{"input":"hi"} {}`, ""},
		{`{}`, "input"},
		{`{"input":[]}`, "input"},
		{`{"input":5}`, "input"},
		{`{"input":"hi","conversation":"conv_1"}`, "conversation"},
		{`{"input":"hi","prompt":{"id":"pmpt_1"}}`, "prompt"},
		{`{"input":"hi","background":true}`, "background"},
		{`{"input":"hi","truncation":"sometimes"}`, "truncation"},
		{`{"input":"hi","top_logprobs":3}`, "top_logprobs"},
		{`{"input":"hi","temperature":"hot"}`, "temperature"},
		{`{"input":"hi","instructions":["x"]}`, "instructions"},
		{`{"input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0].type"},
		{`{"input":[{"role":"user","content":"a"},{"type":"web_search_call","id":"ws_1","action":{"query":5}}]}`, "input[1].type"},
		{`{"input":[{"type":"message","role":"tool","content":"x"}]}`, "input[0].role"},
		{`{"input":[{"type":"message","content":"x"}]}`, "input[0].role"},
		{`{"input":[{"role":"user","content":5}]}`, "input[0].content"},
		{`{"input":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input[0].content[0].type"},
		{`{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`, "input[0].content[0].file_id"},
		{`{"input":[{"role":"user","content":[{"type":"input_image"}]}]}`, "input[0].content[0].image_url"},
		{`{"input":[{"role":"user","content":[{"type":"input_file","file_url":"https://x/a.pdf"}]}]}`, "input[0].content[0].file_url"},
		{`{"input":[{"role":"user","content":[{"type":"input_text","text":5}]}]}`, "input[0].content[0].text"},
		{`{"input":[{"role":"system","content":[{"type":"input_image","image_url":"u"}]}]}`, "input[0].content[0].type"},
		{`{"input":[{"type":"function_call","name":"f","arguments":"{}"}]}`, "input[0].call_id"},
		{`{"input":[{"type":"function_call","call_id":"c","arguments":"{}"}]}`, "input[0].name"},
		{`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":{}}]}`, "input[0].arguments"},
		{`{"input":[{"type":"function_call_output","output":"x"}]}`, "input[0].call_id"},
		{`{"input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_file","file_id":"f"}]}]}`, "input[0].output[0].file_id"},
		{`{"input":"hi","tools":[{"type":"function"}]}`, "tools[0].name"},
		{`{"input":"hi","tools":[{"name":"f"}]}`, "tools[0].type"},
		{`{"input":"hi","tools":{}}`, "tools"},
		{`{"input":"hi","tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search"}}`, "tool_choice"},
		{`{"input":"hi","tools":[{"type":"web_search"}],"tool_choice":"required"}`, "tool_choice"},
		{`{"input":"hi","tool_choice":"sometimes"}`, "tool_choice"},
		{`{"input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`, "tool_choice.name"},
		{`{"input":"hi","tools":[{"type":"namespace","name":"ns","tools":[{"type":"function","name":"g"}]}],"tool_choice":{"type":"function","name":"g"}}`, "tool_choice.name"},
		{`{"input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"web_search"}]}}`, "tool_choice"},
		{`{"input":"hi","tool_choice":{"type":"allowed_tools","mode":"maybe","tools":[]}}`, "tool_choice.mode"},
		{`{"input":"hi","text":{"format":{"type":"xml"}}}`, "text.format.type"},
		{`{"input":"hi","text":{"format":{"type":"json_schema","schema":{}}}}`, "text.format.name"},
		{`{"input":"hi","text":{"format":{"type":"json_schema","name":"n"}}}`, "text.format.schema"},
		{`{"input":"hi","reasoning":{"effort":5}}`, "reasoning.effort"},
	}, func(body []byte) error {
		_, err := translate.ResponsesToChat(body, translate.ResponsesOptions{Model: "m"})
		return err
	})
}

// TestResponsesToChatHistoryErrors checks that a stored conversation that
// is no array of items is the gateway's error, not the client's.
func TestResponsesToChatHistoryErrors(t *testing.T) {
	_, err := translate.ResponsesToChat([]byte(`{"input":"hi"}`), translate.ResponsesOptions{History: []byte(`{"not":"items"}`)})
	var re *translate.RequestError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("err = %v; want an error that is no RequestError", err)
	}
}

// TestChatToResponsesResponseRefuses checks upstream answers that are no
// chat.completion.
func TestChatToResponsesResponseRefuses(t *testing.T) {
	r, err := translate.ResponsesToChat([]byte(`{"input":"hi"}`), translate.ResponsesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{`, `{"choices":[]}`, `{"choices":[{"finish_reason":"stop"}]}`, `{"choices":[{"message":{"content":5}}]}`} {
		if out, err := translate.ChatToResponsesResponse([]byte(body), r, testMeta("")); err == nil {
			t.Errorf("%s: no error, %s", body, out)
		}
	}
}

// FuzzResponsesToChat checks that any body gives a RequestError or a chat
// request with messages, an Input that is a JSON array, and an answer
// that is JSON; never a panic.
func FuzzResponsesToChat(f *testing.F) {
	files, _ := filepath.Glob("testdata/responses/request_*.json")
	for _, file := range files {
		c := readResponsesCase(f, file)
		f.Add([]byte(c.Input))
	}
	f.Add([]byte(`{"input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"data:image/png;base64,AA=="}]},{"role":"user","content":"x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := translate.ResponsesToChat(body, translate.ResponsesOptions{Model: "m", Stream: true})
		if err != nil {
			var re *translate.RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("not a *RequestError with a message: %#v", err)
			}
			return
		}
		var req struct {
			Model    string            `json:"model"`
			Messages []json.RawMessage `json:"messages"`
		}
		if err := json.Unmarshal(r.Chat, &req); err != nil || req.Model != "m" || len(req.Messages) == 0 {
			t.Fatalf("chat %s: %v", r.Chat, err)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(r.Input, &items); err != nil {
			t.Fatalf("input %s: %v", r.Input, err)
		}
		resp, err := translate.ChatToResponsesResponse([]byte(fixedAnswer), r, testMeta(""))
		if err != nil || !json.Valid(resp) || bytes.ContainsAny(resp, "\r\n") {
			t.Fatalf("response %q: %v", resp, err)
		}
	})
}

// codexBody returns a Codex request of about size bytes: the realistic
// golden case with its conversation repeated, as a long session grows.
func codexBody(tb testing.TB, size int) []byte {
	c := readResponsesCase(tb, "testdata/responses/request_codex_round_trip.json")
	var req map[string]json.RawMessage
	if err := json.Unmarshal(c.Input, &req); err != nil {
		tb.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(req["input"], &items); err != nil {
		tb.Fatal(err)
	}
	grown := items
	for len(c.Input)+len(grown)*300 < size && len(grown) < 10000 {
		grown = append(grown, items[2:]...)
	}
	req["input"], _ = json.Marshal(grown)
	body, _ := json.Marshal(req)
	return body
}

func BenchmarkResponsesToChat(b *testing.B) {
	body := codexBody(b, 50_000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := translate.ResponsesToChat(body, translate.ResponsesOptions{Model: "gemini-2.5-pro", Stream: true}); err != nil {
			b.Fatal(err)
		}
	}
}
