package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fastSeeds are request bodies beyond the golden files, with what
// encoding/json reads in its own way, that the fast translation answers.
var fastSeeds = []string{
	`{"messages":[{"role":"user","content":"x"}],"system":"s"}`,
	`{"messages":[],"system":[{"type":"text","text":"s"}]}`,
	`{"messages":[{"role":"user","content":"x"}],"system":""}`,
	`{"messages":[{"role":"user","content":"a<b>&c \u2028 \u2029 \u00e9 \ud83d\ude00 \ud800 \udc00x \ud800\u0041 \/ \b\f\n\r\t\" \\ \u0000\u001f\u007f"}]}`,
	"{\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe utf8 \xed\xa0\x80 \xe2\x80\xa8 raw sep \xe2\x80\"}]}",
	"{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\xff\",\"name\":\"n<>\",\"input\":{ \"a\" : [1, 2.5e3, \"x \\\" \\\\ \\u2028 \xe2\x80\xa9 \xff <&>\"], \"b\":null }}]}]}",
	`{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":null},{"type":"text","text":""},{"type":"thinking","thinking":"x","signature":"s"}]}]}`,
	`{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":"str"},{"type":"tool_use","id":"u","name":"m"}]}]}`,
	`{"messages":[{"role":"assistant","content":[]},{"role":"assistant","content":""},{"role":"assistant","content":null},{"role":"assistant"}]}`,
	`{"messages":[{"role":"user","content":[]},{"role":"user","content":null},{"role":"user"}]}`,
	`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"x"}]},{"role":"user","content":[]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","is_error":true},{"type":"tool_result","tool_use_id":"b","is_error":null,"content":[{"type":"text","text":"1"},{"type":"text"},{"type":"document","source":{"type":"text","data":"d"}},{"type":"image","source":{"type":"url","url":"u"}}]},{"type":"text","text":"after"}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"},"title":"a<b"},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":""}}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","data":""}}]},{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc"}}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text"}]},{"role":"user","content":[{"type":"text","text":"a"},{"type":"thinking","thinking":"t"}]},{"role":"user","content":[{"type":"image","source":{"type":"url","url":"http://x/a.png?a=1&b=<2>"}}]}]}`,
	`{"messages":[{"role":"system","content":[{"type":"text","text":""},{"type":"text","text":"b"},{"type":"text","text":""},{"type":"text","text":"c"}]},{"role":"system","content":null},{"role":"system","content":""}]}`,
	`{"system":"","messages":[]}`,
	`{"system":null,"messages":[],"max_tokens":null,"temperature":null,"top_p":null,"top_k":null,"stream":null,"model":null,"metadata":null,"tools":null,"tool_choice":null,"stop_sequences":null}`,
	`{"system":[],"messages":[],"max_tokens":-0,"temperature":0.000000123,"top_p":1e21,"top_k":-5,"stream":false,"metadata":{"user_id":null},"stop_sequences":[]}`,
	`{"messages":[],"max_tokens":123456789012345678,"temperature":1.0,"top_p":-0.0}`,
	`{"messages":[],"stop_sequences":["<a>","\u2028"],"metadata":{"user_id":"<u>","other":1}}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"},"citations":null}]}]}`,
	`{"messages":[],"tools":[{"name":"f","description":"d<>","input_schema":{ "type" : "object" , "properties" : { "a b" : { "type":"string" } } }},{"type":"web_search_20250305","name":"web_search"},{"type":"custom","name":"g"},{"type":"","name":"h","input_schema":null}],"tool_choice":{"type":"tool","name":"f<","disable_parallel_tool_use":true}}`,
	`{"messages":[],"tools":[{"type":"bash_20250124","name":"bash"}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
	`{"messages":[],"tools":[{"name":"f"}],"tool_choice":{"type":"none","disable_parallel_tool_use":true}}`,
	`{"messages":[],"tools":[{"name":"f"}],"tool_choice":{"type":"auto","disable_parallel_tool_use":false}}`,
	` { "messages" : [ { "role" : "user" , "content" : [ { "type" : "text" , "text" : "x" } , { "type" : "text" , "text" : "y" } ] } ] } `,
	`{"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":5},"top_k":5,"service_tier":"auto","container":null}`,
}

// oddSeeds are request bodies that the fast translation may leave to
// encoding/json: repeated keys, keys in another case, escapes where
// the translation compares, refusals.
var oddSeeds = []string{
	`{"messages":[],"max_tokens":1234567890123456789}`,
	`{"messages":[],"top_k":12345678901234567890}`,
	`{"messages":[],"max_tokens":1e3}`,
	`{"messages":[],"temperature":1e400}`,
	`{"messages":[],"stop_sequences":["<a>","\u2028",null]}`,
	`{"Messages":[],"messages":[]}`,
	`{"messages":[],"messages":[{"role":"user","content":"x"}]}`,
	`{"messages":[{"role":"user","content":"x","ROLE":"assistant"}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a","Text":"b"}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"t\u0065xt","text":"a"}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a","signature":5}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA==","data":"BB=="}}]}]}`,
	`{"messages":[],"tools":[{"type":"\u0063ustom","name":"f"}]}`,
	`{"messages":[],"tools":[],"tool_choice":{"type":"maybe"}}`,
	`[]`, `null`, `{`, `{"messages":null}`, `{"messages":{}}`,
}

// FuzzFastMessagesToChat checks that whenever the fast translation
// answers, the decoding translation gives the same bytes.
func FuzzFastMessagesToChat(f *testing.F) {
	for _, body := range requestGoldens(f) {
		f.Add(body, true, false)
	}
	for _, s := range append(fastSeeds, oddSeeds...) {
		f.Add([]byte(s), false, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, stream, maxCompletion bool) {
		opts := ChatOptions{Model: "m<\u2028\xff", Stream: stream, MaxCompletionTokens: maxCompletion}
		fast, ok := fastMessagesToChat(body, opts)
		if !ok {
			return
		}
		want, err := decodedMessagesToChat(body, opts)
		if err != nil {
			t.Fatalf("fast translation of %s answered %s; encoding/json refuses it: %v", body, fast, err)
		}
		if !bytes.Equal(fast, want) {
			t.Fatalf("%s:\nfast    %s\ndecoded %s", body, fast, want)
		}
	})
}

// TestFastMessagesToChatAnswers checks that the fast translation answers
// (does not leave to encoding/json) the golden requests and fastSeeds,
// except refusals, with the bytes encoding/json gives.
func TestFastMessagesToChatAnswers(t *testing.T) {
	bodies := requestGoldens(t)
	for _, s := range fastSeeds {
		bodies = append(bodies, []byte(s))
	}
	for _, body := range bodies {
		want, err := decodedMessagesToChat(body, ChatOptions{Model: "m"})
		if err != nil {
			continue // a refusal
		}
		got, ok := fastMessagesToChat(body, ChatOptions{Model: "m"})
		switch {
		case !ok:
			t.Errorf("fast translation gave up on %s", body)
		case !bytes.Equal(got, want):
			t.Errorf("%s:\nfast    %s\ndecoded %s", body, got, want)
		}
	}
}

// requestGoldens returns the inputs of the request golden files.
func requestGoldens(tb testing.TB) [][]byte {
	files, err := filepath.Glob("testdata/tochat/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden files: %v", err)
	}
	var bodies [][]byte
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		var c struct {
			Direction string          `json:"direction"`
			Input     json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		if c.Direction != "request" {
			continue
		}
		bodies = append(bodies, c.Input)
		// and with its members in another order (system after
		// messages), as a client may send them
		var members map[string]json.RawMessage
		if json.Unmarshal(c.Input, &members) == nil {
			sorted, _ := json.Marshal(members)
			bodies = append(bodies, sorted)
		}
	}
	return bodies
}

// TestAppendLit compares the string re-encoding with json.Unmarshal
// followed by json.Marshal (html) or an Encoder without HTML escaping.
func TestAppendLit(t *testing.T) {
	var lits []string
	for c := range 0x80 {
		lits = append(lits, string(rune(c)))
	}
	lits = append(lits, "\u2028\u2029", "é😀", "\xff", "\xed\xa0\x80", "\xe2\x80", "\xf0\x9f\x98")
	var quoted []string
	for _, s := range lits {
		b, _ := json.Marshal(s)
		quoted = append(quoted, string(b))
		if s != `"` && s != `\` && (len(s) != 1 || s[0] >= 0x20) {
			quoted = append(quoted, `"`+s+`"`) // raw, bad UTF-8 and all
		}
	}
	quoted = append(quoted, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`, `"\/\b\f"`, `"\u00E9\u00e9"`, `""`, `"a\u003cb"`)
	for _, q := range quoted {
		if !json.Valid([]byte(q)) {
			continue
		}
		var s string
		if err := json.Unmarshal([]byte(q), &s); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		for _, html := range []bool{true, false} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(html)
			_ = enc.Encode(s)
			want := strings.TrimSuffix(buf.String(), "\n")
			if got := string(appendLit(nil, []byte(q), html)); got != want {
				t.Errorf("appendLit(%q, html %v) = %q; want %q", q, html, got, want)
			}
		}
	}
}

// TestAppendString compares appendGoString with encoding/json.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"plain", "<a&b>\"\\\b\f\n\r\t\x00\x1f\x7f", "\u2028\u2029é😀", "\xff\xed\xa0\x80\xe2\x80"} {
		for _, html := range []bool{true, false} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(html)
			_ = enc.Encode(s)
			if got, want := string(appendGoString(nil, s, html)), strings.TrimSuffix(buf.String(), "\n"); got != want {
				t.Errorf("appendGoString(%q, html %v) = %q; want %q", s, html, got, want)
			}
		}
	}
}
