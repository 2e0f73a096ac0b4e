package llmproxy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseBodyErrors(t *testing.T) {
	tests := []struct {
		name, body, endpoint, param, want string
	}{
		{"empty", "", EndpointChat, "", "empty"},
		{"spaces", "  \n", EndpointChat, "", "empty"},
		{"malformed", `{"model":`, EndpointChat, "", "truncated"},
		{"garbage", `{model: x}`, EndpointChat, "", "not valid JSON"},
		{"array", `[1,2]`, EndpointChat, "", "JSON object"},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, EndpointChat, "model", "model parameter"},
		{"empty model", `{"model":"","messages":[1]}`, EndpointChat, "model", "model parameter"},
		{"model number", `{"model":42,"messages":[1]}`, EndpointChat, "model", "a number"},
		{"model object", `{"model":{"a":1},"messages":[1]}`, EndpointChat, "model", "an object"},
		{"stream string", `{"model":"m","messages":[1],"stream":"yes"}`, EndpointChat, "stream", "boolean"},
		{"no messages", `{"model":"m"}`, EndpointChat, "messages", "messages parameter"},
		{"messages string", `{"model":"m","messages":"hi"}`, EndpointChat, "messages", "array"},
		{"messages empty", `{"model":"m","messages":[ ]}`, EndpointChat, "messages", "empty"},
		{"message not an object", `{"model":"m","messages":[{"role":"user"}, "hi"]}`, EndpointChat, "messages[1]", "must be an object, got a string"},
		{"message without role", `{"model":"m","messages":[{"content":"hi"}]}`, EndpointChat, "messages[0].role", "must have a role"},
		{"message role not a string", `{"model":"m","messages":[{"role":"user"},{"role":"system"},{"role":7}]}`, EndpointChat, "messages[2].role", "must be a string, got a number"},
		{"message role null", `{"model":"m","messages":[{"role":null}]}`, EndpointChat, "messages[0].role", "got null"},
		{"max_tokens negative", `{"model":"m","messages":[1],"max_tokens":-1}`, EndpointChat, "max_tokens", "non-negative"},
		{"max_tokens float", `{"model":"m","messages":[1],"max_completion_tokens":1.5}`, EndpointChat, "max_completion_tokens", "integer"},
		{"duplicate model", `{"model":"a","model":"b","messages":[1]}`, EndpointChat, "model", "more than once"},
		{"escaped duplicate model", `{"model":"a","mod\u0065l":"b","messages":[1]}`, EndpointChat, "model", "more than once"},
		{"stream_options without stream", `{"model":"m","messages":[1],"stream_options":{"include_usage":true}}`, EndpointChat, "stream_options", "only allowed"},
		{"stream_options wrong", `{"model":"m","messages":[1],"stream":true,"stream_options":[]}`, EndpointChat, "stream_options", "object"},
		{"embeddings no input", `{"model":"m"}`, EndpointEmbeddings, "input", "input parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseBody([]byte(tt.body), tt.endpoint)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Status != 400 || e.Param != tt.param || !strings.Contains(e.Message, tt.want) {
				t.Errorf("got %d param=%q %q; want 400 param=%q containing %q", e.Status, e.Param, e.Message, tt.param, tt.want)
			}
		})
	}
}

func TestRewriteBody(t *testing.T) {
	tests := []struct {
		name, body, remote, want string
		includeUsage             bool
	}{
		{"plain", `{"model":"alias","messages":[{"role":"user","content":"hi"}],"x_custom":{"a":[1,2]}}`, "remote-1",
			`{"model":"remote-1","messages":[{"role":"user","content":"hi"}],"x_custom":{"a":[1,2]}}`, false},
		{"stream gets usage", `{ "messages":[{"role":"user"}], "stream":true, "model" : "a" }`, "r",
			`{ "messages":[{"role":"user"}], "stream":true, "model" : "r" ,"stream_options":{"include_usage":true}}`, false},
		{"stream_options kept", `{"model":"a","stream":true,"messages":[{"role":"user"}],"stream_options":{"include_usage":false,"x":1}}`, "r",
			`{"model":"r","stream":true,"messages":[{"role":"user"}],"stream_options":{"include_usage":true,"x":1}}`, false},
		{"stream_options before model", `{"stream_options":{"include_usage":true},"stream":true,"messages":[{"role":"user"}],"model":"a"}`, "r\"q",
			`{"stream_options":{"include_usage":true},"stream":true,"messages":[{"role":"user"}],"model":"r\"q"}`, true},
		{"stream false untouched", `{"model":"a","stream":false,"messages":[{"role":"user"}]}`, "b", `{"model":"b","stream":false,"messages":[{"role":"user"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseBody([]byte(tt.body), EndpointChat)
			if err != nil {
				t.Fatal(err)
			}
			if p.includeUsage != tt.includeUsage {
				t.Errorf("includeUsage = %v", p.includeUsage)
			}
			got := string(rewriteBody([]byte(tt.body), &p.fields, tt.remote, p.stream))
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Error("invalid JSON")
			}
		})
	}
}

// FuzzParseBody: the parser of every inference route (chat, embeddings,
// and Anthropic's messages and count_tokens) answers any body with a 400
// *Error or a parse whose rewrite is valid JSON with the remote model.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"a","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"a","messages":[1],"stream":true}`,
		`{"model":"a","messages":[1],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"a","input":"x"}`, `{"mod\u0065l":"a","messages":[1]}`, `{}`, `[`, ``,
		`{"model":"a","max_tokens":5,"system":[{"type":"text","text":"x"}],"messages":[{"role":"user","content":"hi"}],"tools":[]}`,
		`{"model":"a","max_tokens":0,"messages":[{"role":"user"}]}`,
	} {
		f.Add([]byte(s), uint8(0))
	}
	endpoints := []string{EndpointChat, EndpointEmbeddings, EndpointMessages, EndpointCountTokens}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		endpoint := endpoints[int(which)%len(endpoints)]
		p, err := parseBody(body, endpoint)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("error %v is not a 400 *Error", err)
			}
			return
		}
		var in map[string]any
		if json.Unmarshal(body, &in) == nil {
			if m, ok := in["model"].(string); ok && m != p.model {
				t.Fatalf("model %q, encoding/json reads %q from %q", p.model, m, body)
			}
		}
		out := rewriteBody(body, &p.fields, "remote", p.stream)
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("rewrite of %q is invalid: %q: %v", body, out, err)
		}
		if v["model"] != "remote" {
			t.Fatalf("model = %v in %q", v["model"], out)
		}
		if endpoint == EndpointMessages && p.maxTokens < 1 {
			t.Fatalf("a Messages body without a positive max_tokens passed: %q", body)
		}
		usageOf(body)
		isUsageOnly(body)
		var u Usage
		anthropicDialect.usage(body)
		anthropicDialect.eventUsage(body, &u, false)
	})
}

func TestIncludeUsageMatchesEncodingJSON(t *testing.T) {
	for _, c := range []string{`{}`, `{"include_usage":true}`, `{"include_usage":false}`, `{"include_usage":null}`,
		`{"include_usage":"yes"}`, `{"include_usage":1}`, `{"INCLUDE_USAGE":true}`, `{"Include_Usage":true}`,
		`{"include_usage":true,"include_usage":false}`, `{"include_usage":false,"include_usage":true}`,
		`{"include\u005fusage":true}`, `{"x":{"include_usage":true}}`, `{"x":[1,2],"include_usage":true}`,
		`{ "include_usage" : true , "y" : null }`, `[]`, `true`, `{"include_uſage":true}`, `{"include_usage":{}}`} {
		var so struct {
			IncludeUsage *bool `json:"include_usage"`
		}
		wantOK := c[0] == '{' && json.Unmarshal([]byte(c), &so) == nil
		want := wantOK && so.IncludeUsage != nil && *so.IncludeUsage
		got, ok := includeUsage([]byte(c))
		if ok != wantOK || got != want {
			t.Errorf("includeUsage(%s) = %v, %v; encoding/json: %v, %v", c, got, ok, want, wantOK)
		}
	}
}

// TestLiteralRequestUpstreamBody: a Request built as a literal (as a
// provider's tests build one) rewrites its body as one the Gateway built.
func TestLiteralRequestUpstreamBody(t *testing.T) {
	for _, c := range []struct {
		name, body string
		stream     bool
		want       string
	}{
		{"chat", `{"model":"alias","messages":[{"role":"user","content":"hi"}]}`, false,
			`{"model":"remote","messages":[{"role":"user","content":"hi"}]}`},
		{"stream", `{"model":"alias","stream":true,"messages":[]}`, true,
			`{"model":"remote","stream":true,"messages":[],"stream_options":{"include_usage":true}}`},
		{"no model", ` {"input":"x"}`, false, ` {"model":"remote","input":"x"}`},
		{"no model, stream", `{"stream":true}`, true, `{"model":"remote","stream":true,"stream_options":{"include_usage":true}}`},
		{"empty object", `{ }`, false, `{"model":"remote" }`},
		{"empty object, stream", `{}`, true, `{"model":"remote","stream_options":{"include_usage":true}}`},
		{"not JSON", `{"model":`, false, `{"model":`},
		{"not an object", `[1]`, false, `[1]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Request{Body: []byte(c.body), Model: "alias", RemoteModel: "remote", Stream: c.stream}
			got := r.UpstreamBody()
			if string(got) != c.want {
				t.Errorf("UpstreamBody = %s; want %s", got, c.want)
			}
			if string(r.Body) != c.body {
				t.Errorf("Body changed to %s", r.Body)
			}
		})
	}
}
