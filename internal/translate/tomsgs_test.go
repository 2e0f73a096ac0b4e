package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tomsgsUpdate reports the -update flag (defined in tochat_test.go, in
// the same test binary): rewrite the golden files.
func tomsgsUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// tomsgsCase is a file of testdata/tomsgs: an input of one direction and
// what it translates to. Output is {"error": "…"} when the translation
// fails; a stream's is {"chunks": […], "error": "…"}.
type tomsgsCase struct {
	Direction string           `json:"direction"` // request, response or stream
	Options   *MessagesOptions `json:"options,omitempty"`
	Model     string           `json:"model,omitempty"`
	Input     json.RawMessage  `json:"input"`
	Output    json.RawMessage  `json:"output,omitempty"`
}

func TestTomsgsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/tomsgs/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c tomsgsCase
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			got := runTomsgsCase(t, &c)
			if tomsgsUpdate() {
				c.Output = got
				if err := os.WriteFile(file, tomsgsIndent(t, &c), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if len(c.Output) == 0 {
				t.Fatalf("%s has no output: run go test -update", file)
			}
			if want := tomsgsNormalize(t, c.Output); !bytes.Equal(got, want) {
				t.Errorf("%s:\ngot  %s\nwant %s", file, got, want)
			}
		})
	}
}

// runTomsgsCase translates a case's input and returns the normalized
// result.
func runTomsgsCase(t *testing.T, c *tomsgsCase) []byte {
	t.Helper()
	switch c.Direction {
	case "request":
		if c.Options == nil {
			t.Fatal("a request case needs options")
		}
		out, err := ChatToMessages(c.Input, *c.Options)
		if err != nil {
			return tomsgsNormalize(t, tomsgsErrorOutput(err))
		}
		tomsgsCheckValid(t, out)
		return tomsgsNormalize(t, out)
	case "response":
		out, err := MessagesToChatResponse(c.Input, c.Model)
		if err != nil {
			return tomsgsNormalize(t, tomsgsErrorOutput(err))
		}
		tomsgsCheckValid(t, out)
		return tomsgsNormalize(t, out)
	case "stream":
		var events []json.RawMessage
		if err := json.Unmarshal(c.Input, &events); err != nil {
			t.Fatalf("a stream case's input is an array of events: %v", err)
		}
		chunks, err := readChatChunks(MessagesStreamToChat(newMsgEventSource(events), c.Model))
		checkChatChunks(t, chunks, err)
		out := struct {
			Chunks []json.RawMessage `json:"chunks"`
			Error  string            `json:"error,omitempty"`
		}{Chunks: chunks}
		if err != io.EOF {
			out.Error = err.Error()
		}
		b, _ := json.Marshal(out)
		return tomsgsNormalize(t, b)
	}
	t.Fatalf("unknown direction %q", c.Direction)
	return nil
}

func tomsgsErrorOutput(err error) []byte {
	out := map[string]any{"error": err.Error()}
	var re *RequestError
	if errors.As(err, &re) {
		out["param"] = re.Param
	}
	var ee *EventError
	if errors.As(err, &ee) {
		out["type"] = ee.Type
	}
	b, _ := json.Marshal(out)
	return b
}

// tomsgsNormalize indents b and zeroes every "created", the one field that
// changes from run to run.
func tomsgsNormalize(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	tomsgsZeroCreated(v)
	return tomsgsIndent(t, v)
}

func tomsgsZeroCreated(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "created" {
				v[k] = 0
			} else {
				tomsgsZeroCreated(e)
			}
		}
	case []any:
		for _, e := range v {
			tomsgsZeroCreated(e)
		}
	}
}

func tomsgsIndent(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tomsgsCheckValid(t testing.TB, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("output is not valid JSON: %s", b)
	}
}

// TestChatToMessagesErrors checks that every refusal and malformed field
// is a *RequestError naming the field.
func TestChatToMessagesErrors(t *testing.T) {
	const user = `{"role":"user","content":"hi"}`
	tests := []struct {
		body  string
		param string
	}{
		{`[]`, ""},
		{`{"messages":`, ""},
		{`{"messages":"hi"}`, "messages"},
		{`{"messages":[]}`, "messages"},
		{`{"messages":[{"role":"system","content":"only a system prompt"}]}`, "messages"},
		{`{"temperature":"hot","messages":[` + user + `]}`, "temperature"},
		{`{"n":2,"messages":[` + user + `]}`, "n"},
		{`{"logprobs":true,"messages":[` + user + `]}`, "logprobs"},
		{`{"top_logprobs":3,"messages":[` + user + `]}`, "top_logprobs"},
		{`{"response_format":{"type":"json_object"},"messages":[` + user + `]}`, "response_format"},
		{`{"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},"messages":[` + user + `]}`, "response_format"},
		{`{"response_format":"json","messages":[` + user + `]}`, "response_format"},
		{`{"audio":{"voice":"alloy","format":"wav"},"messages":[` + user + `]}`, "audio"},
		{`{"modalities":["text","audio"],"messages":[` + user + `]}`, "modalities"},
		{`{"functions":[{"name":"f"}],"messages":[` + user + `]}`, "functions"},
		{`{"function_call":"auto","messages":[` + user + `]}`, "function_call"},
		{`{"web_search_options":{},"messages":[` + user + `]}`, "web_search_options"},
		{`{"max_tokens":0,"messages":[` + user + `]}`, "max_tokens"},
		{`{"max_completion_tokens":-1,"messages":[` + user + `]}`, "max_completion_tokens"},
		{`{"stop":5,"messages":[` + user + `]}`, "stop"},
		{`{"tools":[{"type":"custom","custom":{"name":"x"}}],"messages":[` + user + `]}`, "tools[0].type"},
		{`{"tools":[{"type":"function","function":{"description":"no name"}}],"messages":[` + user + `]}`, "tools[0].function.name"},
		{`{"tools":[{"type":"function","function":{"name":"f","parameters":[1]}}],"messages":[` + user + `]}`, "tools[0].function.parameters"},
		{`{"tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + user + `]}`, "tool_choice"},
		{`{"tool_choice":"required","messages":[` + user + `]}`, "tool_choice"},
		{`{"tool_choice":{"type":"allowed_tools","allowed_tools":{}},"tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + user + `]}`, "tool_choice"},
		{`{"tool_choice":{"type":"function","function":{}},"tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + user + `]}`, "tool_choice.function.name"},
		{`{"messages":[{"role":"function","name":"f","content":"42"}]}`, "messages[0].role"},
		{`{"messages":[{"content":"no role"}]}`, "messages[0].role"},
		{`{"messages":[{"role":"robot","content":"beep"}]}`, "messages[0].role"},
		{`{"messages":[{"role":"user","content":""}]}`, "messages[0].content"},
		{`{"messages":[{"role":"user","content":null}]}`, "messages[0].content"},
		{`{"messages":[{"role":"user","content":42}]}`, "messages[0].content"},
		{`{"messages":[{"role":"user","content":[{"type":"text","text":7}]}]}`, "messages[0].content"},
		{`{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]}`, "messages[0].content[0].type"},
		{`{"messages":[{"role":"user","content":[{"type":"video"}]}]}`, "messages[0].content[0].type"},
		{`{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,rawbytes"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, "messages[0].content[0].file.file_id"},
		{`{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf"}}]}]}`, "messages[0].content[0].file.file_data"},
		{`{"messages":[{"role":"user","content":[{"type":"file"}]}]}`, "messages[0].content[0].file"},
		{`{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/zip;base64,UEs="}}]}]}`, "messages[0].content[0].file.file_data"},
		{`{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:text/plain;base64,//8="}}]}]}`, "messages[0].content[0].file.file_data"},
		{`{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},` + user + `]}`, "messages[0].content[0].type"},
		{`{"messages":[` + user + `,{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}}]}`, "messages[1].function_call"},
		{`{"messages":[` + user + `,{"role":"assistant","audio":{"id":"audio_1"}}]}`, "messages[1].audio"},
		{`{"messages":[` + user + `,{"role":"assistant","content":[{"type":"image_url"}]}]}`, "messages[1].content[0].type"},
		{`{"messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1,2]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{`{"messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{`{"messages":[` + user + `,{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "messages[1].tool_calls[0].id"},
		{`{"messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"arguments":"{}"}}]}]}`, "messages[1].tool_calls[0].function.name"},
		{`{"messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"c","type":"custom","function":{"name":"f"}}]}]}`, "messages[1].tool_calls[0].type"},
		{`{"messages":[` + user + `,{"role":"tool","content":"42"}]}`, "messages[1].tool_call_id"},
		{`{"messages":[` + user + `,{"role":"tool","tool_call_id":"c","content":[{"type":"image_url"}]}]}`, "messages[1].content[0].type"},
	}
	for _, tt := range tests {
		_, err := ChatToMessages([]byte(tt.body), MessagesOptions{Model: "m", DefaultMaxTokens: 100})
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: got %v, want a *RequestError", tt.body, err)
			continue
		}
		if re.Param != tt.param {
			t.Errorf("%s: param %q (%s), want %q", tt.body, re.Param, re.Message, tt.param)
		}
		if re.Message == "" || (tt.param != "" && !strings.HasPrefix(re.Message, tt.param+":")) {
			t.Errorf("%s: message %q does not start with the param", tt.body, re.Message)
		}
	}
}

func TestChatToMessagesNeedsMaxTokens(t *testing.T) {
	_, err := ChatToMessages([]byte(`{"messages":[{"role":"user","content":"hi"}]}`), MessagesOptions{Model: "m"})
	var re *RequestError
	if !errors.As(err, &re) || re.Param != "max_completion_tokens" {
		t.Fatalf("got %v, want a *RequestError for max_completion_tokens", err)
	}
}

// TestChatToMessagesToolChoiceWithoutTools: auto and none mean nothing
// without tools and are dropped, as parallel_tool_calls is.
func TestChatToMessagesToolChoiceWithoutTools(t *testing.T) {
	for _, choice := range []string{`"auto"`, `"none"`} {
		out, err := ChatToMessages([]byte(`{"tool_choice":`+choice+`,"parallel_tool_calls":false,"messages":[{"role":"user","content":"hi"}]}`), MessagesOptions{Model: "m", DefaultMaxTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte("tool_choice")) {
			t.Errorf("%s: %s", choice, out)
		}
	}
}

func TestMessagesToChatResponseErrors(t *testing.T) {
	_, err := MessagesToChatResponse([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "m")
	var ee *EventError
	if !errors.As(err, &ee) || ee.Type != "overloaded_error" || ee.Message != "Overloaded" {
		t.Errorf("error answer: got %v", err)
	}
	for _, body := range []string{`not json`, `{"type":"message","content":[]}`, `{"id":"m","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":}}]}`} {
		if _, err := MessagesToChatResponse([]byte(body), "m"); err == nil {
			t.Errorf("%s: no error", body)
		}
	}
}
