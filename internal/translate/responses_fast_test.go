package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// respFastSeeds are Responses request bodies beyond the golden files,
// with what encoding/json reads in its own way, that the fast
// translation answers.
var respFastSeeds = []string{
	`{"input":"hi"}`,
	`{"input":""}`,
	` { "input" : [ { "role" : "user" , "content" : [ { "type" : "input_text" , "text" : "x" } , { "type" : "input_text" , "text" : "y" } ] } ] , "metadata" : { "a" : [ 1 , 2 ] } } `,
	`{"input":"a<b>&c \u2028 \u2029 \u00e9 \ud83d\ude00 \ud800 \udc00x \ud800\u0041 \/ \b\f\n\r\t\" \\ \u0000\u001f\u007f","instructions":"<i>&\u2028"}`,
	"{\"input\":\"bad \xff\xfe utf8 \xed\xa0\x80 \xe2\x80\xa8 raw sep \xe2\x80\",\"user\":\"u\xe2\x80\xa8<>\"}",
	`{"input":[],"instructions":"only instructions"}`,
	`{"input":null,"instructions":"x","tools":null,"tool_choice":null,"text":null,"reasoning":null,"metadata":null,"model":null,"stream":null,"store":null,"user":null,"safety_identifier":null,"previous_response_id":null,"truncation":null,"background":null,"top_logprobs":null,"max_output_tokens":null,"max_tool_calls":null,"parallel_tool_calls":null,"temperature":null,"top_p":null,"frequency_penalty":null,"presence_penalty":null,"include":null,"prompt_cache_key":null,"prompt_cache_retention":null,"client_metadata":null,"service_tier":null,"stream_options":null}`,
	`{"input":"x","model":{"any":"thing"},"stream":false,"store":false,"background":false,"truncation":"disabled","top_logprobs":-0,"max_output_tokens":-0,"max_tool_calls":123456789012345678,"temperature":0.000000123,"top_p":1e21,"frequency_penalty":-0.0,"presence_penalty":1.50,"include":["x"],"prompt_cache_key":"k<>","prompt_cache_retention":"24h","client_metadata":{"a":1},"service_tier":"flex","stream_options":{"include_obfuscation":false},"previous_response_id":"resp_1","parallel_tool_calls":false}`,
	`{"input":"x","user":"","safety_identifier":"sid"}`,
	`{"input":"x","user":"u","safety_identifier":"sid"}`,
	`{"input":"x","safety_identifier":""}`,
	`{"input":"x","reasoning":{"effort":null,"summary":"auto","generate_summary":"concise"}}`,
	`{"input":"x","reasoning":{"effort":"high","generate_summary":"detailed","other":[1]}}`,
	`{"input":"x","reasoning":{}}`,
	`{"input":"x","text":{"format":{"type":"text"},"verbosity":"low"}}`,
	`{"input":"x","text":{"verbosity":null,"format":null,"other":1}}`,
	`{"input":"x","text":{"format":{"type":"json_schema","name":"n<>","schema":{ "type" : "object" },"strict":null,"description":""}}}`,
	`{"input":"x","text":{"format":{"type":"json_schema","name":"n","schema":"weird","strict":false,"description":"d\u2028"}}}`,
	`{"input":[{"role":"user"},{"role":"user","content":null},{"role":"user","content":[]},{"type":"message","role":"user","content":[{"type":"input_text"}]}]}`,
	`{"input":[{"role":"user","content":[{"type":"input_image","image_url":"http://x/a.png?a=1&b=<2>","detail":"auto"},{"type":"input_image","image_url":"u","detail":"low"},{"type":"input_image","image_url":"u","detail":""},{"type":"input_file","file_data":"data:application/pdf;base64,JVBE","filename":"a<b>.pdf"},{"type":"input_file","file_data":"d","filename":""},{"type":"output_text","text":""}]}]}`,
	`{"input":[{"role":"system","content":[{"type":"input_text","text":""},{"type":"input_text","text":"b"},{"type":"output_text","text":""},{"type":"input_text","text":"c"}]},{"role":"developer","content":null},{"role":"developer","content":""},{"role":"developer","content":[]}]}`,
	`{"input":[{"role":"assistant","content":[{"type":"output_text","text":""},{"type":"refusal","refusal":"no"}]},{"type":"reasoning","summary":[],"content":5,"encrypted_content":"x"},{"role":"assistant","content":"more"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\": 1}"},{"role":"assistant","content":""},{"type":"function_call","call_id":"c2","name":"g","arguments":""},{"type":"function_call","call_id":"c3","name":"h","arguments":"   "},{"type":"function_call","call_id":"c4","name":"i"},{"type":"function_call","call_id":"c5","name":"j","arguments":"ls -l"}]}`,
	`{"input":[{"role":"assistant","content":null},{"role":"assistant"},{"role":"user","content":"u"},{"role":"assistant","content":[]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}","id":"fc_1","status":"completed"}]}`,
	`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"a"},{"type":"input_text","text":""},{"type":"output_text","text":"b"},{"type":"input_image","image_url":"data:image/png;base64,AA==","detail":"high"},{"type":"input_file","file_data":"f"}]},{"type":"function_call_output","call_id":"d","output":null},{"type":"function_call_output","call_id":"e","output":[{"type":"input_image","image_url":"u2"}]},{"role":"user","content":"after"}]}`,
	`{"input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":""},{"type":"input_text","text":"x"},{"type":"input_image","image_url":"u"}]},{"role":"system","content":"flushes"},{"type":"function_call_output","call_id":"d","output":[{"type":"input_image","image_url":"v"}]},{"role":"assistant","content":"flushes too"},{"type":"function_call_output","call_id":"e","output":[{"type":"input_file","file_data":"w"}]},{"role":"user","content":[{"type":"input_text","text":"t"}]},{"type":"function_call_output","call_id":"f","output":[{"type":"input_image","image_url":"z"}]},{"role":"user"},{"type":"function_call_output","call_id":"g","output":[{"type":"input_image","image_url":"end"}]}]}`,
	`{"input":"x","tools":[{"type":"function","name":"f<>","description":"d<>","parameters":{ "type" : "object" , "properties" : { "a b" : { "type":"string" } } },"strict":true,"defer_loading":true},{"type":"function","name":"g","parameters":null,"strict":null,"description":""},{"type":"web_search","external_web_access":true},{"type":"namespace","name":"ns","tools":[{"type":"function","name":"x"}]},{"type":"custom","name":null},{"type":"custom","name":"apply_patch","format":{"type":"grammar"}}],"parallel_tool_calls":true,"tool_choice":"auto"}`,
	`{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":"none","parallel_tool_calls":false}`,
	`{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":"required"}`,
	`{"input":"x","tools":[{"type":"web_search"}],"tool_choice":"auto","parallel_tool_calls":true}`,
	`{"input":"x","tools":[{"type":"function","name":"f"},{"type":"function","name":"g"}],"tool_choice":{"type":"function","name":"g","mode":"ignored","tools":[{"type":"function","name":"f"}]}}`,
	`{"input":"x","tools":[{"type":"function","name":"f"},{"type":"function","name":"g"},{"type":"function","name":"h"}],"tool_choice":{"type":"allowed_tools","mode":"required","tools":[{"type":"function","name":"h"},null,{"type":"web_search"},{"type":"function","name":"f"},{"type":"function"}]}}`,
	`{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"g"}]},"parallel_tool_calls":true}`,
	`{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"auto","tools":null,"name":"f"}}`,
	`{"input":"x","tools":[]}`,
	`{"input":[{"role":"user","content":"u"}],"instructions":"late <b>"}`,
	`{"input":null,"instructions":"late"}`,
	`{"tools":[{"type":"function","name":"f"}],"instructions":"no input at all","metadata":{}}`,
}

// respHistory is a stored conversation the tests put before bodies.
const respHistory = `[{"role":"user","content":"q"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"u"}]}]`

// respOddSeeds are bodies the fast translation may leave to
// encoding/json: repeated keys, keys in another case, escapes where the
// translation compares, numbers it does not read, refusals.
var respOddSeeds = []string{
	`{"input":"x","Input":"y"}`,
	`{"input":"x","input":"y"}`,
	`{"input":"x","\u0069nstructions":"y"}`,
	`{"input":[{"role":"user","content":"x","ROLE":"assistant"}]}`,
	`{"input":[{"role":"user","content":"x","role":"assistant"}]}`,
	`{"input":[{"type":"\u006dessage","role":"user","content":"x"}]}`,
	`{"input":[{"role":"\u0075ser","content":"x"}]}`,
	`{"input":[{"role":"user","content":[{"type":"input_image","image_url":"u","detail":"\u0061uto"}]}]}`,
	`{"input":[{"role":"user","content":[{"type":"input_text","text":"a","text":"b"}]}]}`,
	`{"input":[{"role":"user","content":[{"type":"input_text","text":"a","file_id":5}]}]}`,
	`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"\n\t"}]}`,
	`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"\u00a0"}]}`,
	`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"\u0041"}]}`,
	"{\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"\xc2\xa0\"}]}",
	`{"input":[{"type":"reasoning","name":5}]}`,
	`{"input":[null]}`,
	`{"input":[{"role":"user","content":[null]}]}`,
	`{"input":"x","tools":[{"type":"\u0066unction","name":"f"}]}`,
	`{"input":"x","tools":[{"type":"function","name":"f"},{"type":"function","name":"\u0066"}],"tool_choice":{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"f"}]}}`,
	"{\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"\xff\"}],\"tool_choice\":{\"type\":\"allowed_tools\",\"mode\":\"auto\",\"tools\":[{\"type\":\"function\",\"name\":\"\xfe\"}]}}",
	`{"input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"auto","tools":[{"type":"\u0066unction","name":"f"}]}}`,
	`{"input":"x","tools":[{"type":"function","name":"\u0066"}],"tool_choice":{"type":"function","name":"f"}}`,
	`{"input":"x","tools":[{"type":"custom","name":"\u0066"},{"type":"w\u0065b"}]}`,
	`{"input":"x","tools":[null]}`,
	`{"input":"x","tools":[{"type":"function","name":"f","strict":1}]}`,
	`{"input":"x","tool_choice":"\u0061uto"}`,
	`{"input":"x","truncation":"\u0061uto"}`,
	`{"input":"x","user":"\u0041"}`,
	`{"input":"x","reasoning":{"effort":"\u0041"}}`,
	`{"input":"x","reasoning":{"effort":"high","effort":"low"}}`,
	`{"input":"x","text":{"format":{"type":"json_schema","name":"n","schema":{}},"format":null}}`,
	`{"input":"x","max_output_tokens":1e3}`,
	`{"input":"x","max_output_tokens":1234567890123456789}`,
	`{"input":"x","temperature":1e400}`,
	`{"input":"x","top_logprobs":0.0}`,
	`{"input":"x","instructions":5}`,
	`{"input":"x","metadata":{"a":1}} `,
	`[]`, `null`, `{`, `{"input":{}}`, `{"input":5}`, `{}`, `{"input":[]}`,
}

// FuzzFastResponsesToChat checks that whenever the fast translation
// answers, the decoding translation succeeds with the same result.
func FuzzFastResponsesToChat(f *testing.F) {
	for _, c := range respRequestGoldens(f) {
		f.Add(c.body, []byte(c.history), true, c.maxCompletion)
	}
	for _, s := range append(respFastSeeds, respOddSeeds...) {
		f.Add([]byte(s), []byte(nil), false, true)
	}
	f.Add([]byte(`{"input":"next"}`), []byte(respHistory), false, false)
	f.Add([]byte(`{"input":[],"instructions":"late"}`), []byte(respHistory), false, false)
	f.Add([]byte(`{"instructions":"only"}`), []byte(respHistory), false, false)
	f.Add([]byte(`{"input":[{"role":"assistant","content":"a"}]}`), []byte(` [ {"role":"assistant","content":"h"} ] `), false, false)
	f.Add([]byte(`{"input":"x"}`), []byte(`{"not":"items"}`), false, false)
	f.Add([]byte(`{"input":"x"}`), []byte(`null`), false, false)
	f.Fuzz(func(t *testing.T, body, history []byte, stream, maxCompletion bool) {
		opts := ResponsesOptions{Model: "m<\u2028\xff", Stream: stream, MaxCompletionTokens: maxCompletion, History: history}
		fast, ok := fastResponsesToChat(body, opts)
		if !ok {
			return
		}
		want, err := decodedResponsesToChat(body, opts)
		if err != nil {
			t.Fatalf("fast translation of %s (history %s) answered %s; encoding/json refuses it: %v", body, history, fast.Chat, err)
		}
		compareResponsesRequests(t, body, fast, want)
	})
}

// compareResponsesRequests fails t unless the fast result is the
// decoded one.
func compareResponsesRequests(t *testing.T, body []byte, fast, want *ResponsesRequest) {
	t.Helper()
	if reflect.DeepEqual(fast, want) {
		return
	}
	t.Errorf("%s:\nfast    chat %s\ndecoded chat %s\nfast    input %s\ndecoded input %s\nfast    dropped %q\ndecoded dropped %q\nfast    echo %s\ndecoded echo %s",
		body, fast.Chat, want.Chat, fast.Input, want.Input, fast.DroppedTools, want.DroppedTools, fast.echo, want.echo)
}

// TestFastResponsesToChatAnswers checks that the fast translation
// answers (does not leave to encoding/json) the golden requests, with
// their keys reordered, and respFastSeeds, except refusals, with what
// encoding/json gives.
func TestFastResponsesToChatAnswers(t *testing.T) {
	cases := respRequestGoldens(t)
	for _, s := range respFastSeeds {
		cases = append(cases, respGolden{body: []byte(s)}, respGolden{body: []byte(s), history: json.RawMessage(respHistory)})
	}
	for _, c := range cases {
		for _, stream := range []bool{false, true} {
			opts := ResponsesOptions{Model: "m", Stream: stream, MaxCompletionTokens: c.maxCompletion, History: c.history}
			want, err := decodedResponsesToChat(c.body, opts)
			if err != nil {
				continue // a refusal
			}
			got, ok := fastResponsesToChat(c.body, opts)
			if !ok {
				t.Errorf("fast translation gave up on %s", c.body)
				continue
			}
			compareResponsesRequests(t, c.body, got, want)
		}
	}
}

// respGolden is the input of a request golden file of testdata/responses.
type respGolden struct {
	body          []byte
	history       json.RawMessage
	maxCompletion bool
}

// respRequestGoldens returns the inputs of the request golden files, each
// also with its members in another order: its top-level keys sorted, and
// all of its keys sorted with its strings re-encoded by json.Marshal
// (<, > and & escaped).
func respRequestGoldens(tb testing.TB) []respGolden {
	files, err := filepath.Glob("testdata/responses/request_*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden files: %v", err)
	}
	var out []respGolden
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		var c struct {
			Options *struct {
				MaxCompletionTokens bool            `json:"max_completion_tokens"`
				History             json.RawMessage `json:"history"`
			} `json:"options"`
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			tb.Fatalf("%s: %v", file, err)
		}
		g := respGolden{body: c.Input}
		if c.Options != nil {
			g.history, g.maxCompletion = c.Options.History, c.Options.MaxCompletionTokens
		}
		out = append(out, g)
		var members map[string]json.RawMessage
		if json.Unmarshal(c.Input, &members) == nil {
			g.body, _ = json.Marshal(members)
			out = append(out, g)
		}
		var all any
		if json.Unmarshal(c.Input, &all) == nil {
			g.body, _ = json.Marshal(all)
			out = append(out, g)
		}
	}
	return out
}

// TestFastResponsesToChatGivesUp checks a few bodies the fast
// translation must leave to encoding/json, since reading them byte by
// byte would answer differently.
func TestFastResponsesToChatGivesUp(t *testing.T) {
	for _, body := range []string{
		`{"input":"x","input":"y"}`,
		`{"input":[{"role":"user","content":[{"type":"input_image","image_url":"u","detail":"\u0061uto"}]}]}`,
		`{"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"\u00a0"}]}`,
		`{"input":"x","tools":[{"type":"function","name":"f"},{"type":"function","name":"\u0066"}],"tool_choice":{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"f"}]}}`,
		`{"input":"x","user":"\u0041"}`,
	} {
		if r, ok := fastResponsesToChat([]byte(body), ResponsesOptions{Model: "m"}); ok {
			t.Errorf("%s: answered %s", body, r.Chat)
		}
	}
}

// TestBlankLit compares blankLit with strings.TrimSpace of the decoded
// string wherever it answers.
func TestBlankLit(t *testing.T) {
	for _, lit := range []string{`""`, `" "`, `"   "`, `"x"`, `" {} "`, `"\n"`, `"\u00a0"`, `"\u0041"`, `"\\"`, "\"\xc2\xa0\"", `"\" "`, `"é"`} {
		var s string
		if err := json.Unmarshal([]byte(lit), &s); err != nil {
			t.Fatal(err)
		}
		blank, ok := blankLit([]byte(lit))
		if ok && blank != (len(bytes.TrimSpace([]byte(s))) == 0) {
			t.Errorf("blankLit(%s) = %v", lit, blank)
		}
	}
}
