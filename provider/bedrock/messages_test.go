package bedrock_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

const claudeProfile = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

// messenger is what a Bedrock provider is for the Messages API.
type messenger interface {
	llmproxy.Messenger
	llmproxy.TokenCounter
}

// newMessagesFake starts a fake Bedrock that verifies signatures, and a
// provider with settings (besides region and max_attempts) talking to it
// through the real bedrockruntime client.
func newMessagesFake(t testing.TB, settings map[string]string) (*bedrocktest.Server, messenger) {
	t.Helper()
	srv := bedrocktest.NewServer()
	srv.SecretAccessKey = "fake-secret"
	t.Cleanup(srv.Close)
	s := map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"}
	for k, v := range settings {
		s[k] = v
	}
	p, err := bedrock.New(llmproxy.Connection{
		Name: "bedrock-test", Provider: llmproxy.KindBedrock, Endpoint: srv.URL,
		Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "fake-secret"},
		Settings:    s,
	}, llmproxy.ProviderOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return srv, p.(messenger)
}

func messagesRequest(body string, stream bool, betas ...string) *llmproxy.Request {
	h := http.Header{"Anthropic-Version": {"2023-06-01"}}
	for _, b := range betas {
		h.Add("Anthropic-Beta", b)
	}
	return &llmproxy.Request{Body: []byte(body), Model: "claude", RemoteModel: claudeProfile, Stream: stream,
		Header: h, Endpoint: llmproxy.EndpointMessages}
}

func TestNativeMessages(t *testing.T) {
	models := map[string]bool{
		"anthropic.claude-3-haiku-20240307-v1:0":                                                      true,
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0":                                                true,
		"global.anthropic.claude-opus-4-6-v1":                                                         true,
		"us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0":                                            true,
		"apac.anthropic.claude-sonnet-4-20250514-v1:0":                                                true,
		"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0":          true,
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-v1:0": true,
		"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123":                 false,
		"arn:aws:bedrock:us-east-1:123456789012:provisioned-model/xyz":                                false,
		"amazon.nova-pro-v1:0":                 false,
		"us.amazon.nova-pro-v1:0":              false,
		"meta.llama3-70b-instruct-v1:0":        false,
		"mistral.anthropic-lookalike-v1":       false,
		"us.meta.anthropic.claude-v1":          false,
		"US.anthropic.claude-3-haiku-v1:0":     false, // Bedrock's ids are lowercase
		"claude-3-haiku-20240307":              false, // Anthropic's name, not Bedrock's
		"anthropicx.claude-3-haiku-20240307":   false,
		"cohere.command-r-plus-v1:0":           false,
		"deepseek.r1-v1:0":                     false,
		"us.deepseek.r1-v1:0":                  false,
		"openai.gpt-oss-120b-1:0":              false,
		"twelvelabs.pegasus-1-2-v1:0":          false,
		"arn:aws:bedrock:us-east-1:1:nonsense": false,
	}
	_, p := newMessagesFake(t, nil)
	for m, want := range models {
		if got := p.NativeMessages(m); got != want {
			t.Errorf("NativeMessages(%q) = %v, want %v", m, got, want)
		}
	}
	_, native := newMessagesFake(t, map[string]string{bedrock.SettingMessages: bedrock.MessagesNative})
	_, translate := newMessagesFake(t, map[string]string{bedrock.SettingMessages: bedrock.MessagesTranslate})
	for m := range models {
		if !native.NativeMessages(m) || translate.NativeMessages(m) {
			t.Errorf("%q: messages=native gives %v, messages=translate %v", m, native.NativeMessages(m), translate.NativeMessages(m))
		}
	}
}

// clientMembers are the members of a Claude Code-like body that must
// reach Bedrock byte for byte: a thinking block with its signature,
// cache_control marks, a tool, escapes and odd spacing, and fields the
// gateway does not know.
var clientMembers = []string{
	`"max_tokens" : 32000`,
	`"system":[{"type":"text","text":"You are Claude Code.\u00e9","cache_control":{"type":"ephemeral"}}]`,
	`"messages":[{"role":"user","content":"Read main.go"},{"role":"assistant","content":[{"type":"thinking","thinking":"I should read it.","signature":"EqQBCkYIBxgCKkD1+/sig=="},{"type":"tool_use","id":"toolu_01","name":"Read","input":{"file_path":"/tmp/main.go"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"package main","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]`,
	`"tools":[{"name":"Read","description":"Reads a file","input_schema":{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]}}]`,
	`"thinking":{"type":"enabled","budget_tokens":1024}`,
	`"metadata":{"user_id":"user_abc"}`,
	`"x_future_field":{"nested":[1,2.50,true,null]}`,
}

// TestMessagesBody: Bedrock gets the client's body without model and
// stream, with anthropic_version and the forwarded betas first, every
// other member byte for byte; the answer is Bedrock's Message as it is.
func TestMessagesBody(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	srv.Messages = func(c *bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		return &bedrocktest.MessagesReply{Message: bedrocktest.TextMessage("It is a main package.", 40, 6)}
	}
	body := "{\n  " + `"model":"claude",` + strings.Join(clientMembers[:3], ",") + `,"stream":false,` + strings.Join(clientMembers[3:], ",") + "\n}"
	req := messagesRequest(body, false,
		"claude-code-20250219,interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14",
		"context-1m-2025-08-07", "interleaved-thinking-2025-05-14")
	res, err := p.Messages(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["interleaved-thinking-2025-05-14","context-1m-2025-08-07"],` +
		strings.Join(clientMembers, ",") + `}`
	c := srv.LastCall()
	if c.Operation != bedrocktest.OpInvoke || c.ModelID != claudeProfile {
		t.Errorf("call = %s %s, want invoke %s", c.Operation, c.ModelID, claudeProfile)
	}
	if string(c.Body) != want {
		t.Errorf("Bedrock got\n%s\nwant\n%s", c.Body, want)
	}
	if !strings.HasPrefix(c.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") {
		t.Errorf("Authorization = %q, want SigV4 (the fake verified it)", c.Header.Get("Authorization"))
	}
	if c.Header.Get("Anthropic-Beta") != "" || c.Header.Get("Anthropic-Version") != "" {
		t.Errorf("Anthropic's headers reached Bedrock: %v", c.Header)
	}
	if string(res.Body) != string(bedrocktest.TextMessage("It is a main package.", 40, 6)) {
		t.Errorf("answer = %s, want Bedrock's Message unchanged", res.Body)
	}
	if res.Header.Get("X-Request-Id") != "fake-request-id" || res.Stream != nil {
		t.Errorf("header = %v, stream = %v", res.Header, res.Stream)
	}
}

// TestMessagesBodyKeeps: an anthropic_version in the body is the
// client's to set; anthropic_beta in the body joins the header's; no
// flag left means no anthropic_beta.
func TestMessagesBodyKeeps(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	for _, tc := range []struct {
		body  string
		betas []string
		want  string
	}{
		{`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}`, nil,
			`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}`},
		{`{"max_tokens":5,"anthropic_beta":["context-1m-2025-08-07","mcp-servers-2025-12-04"],"messages":[]}`, []string{"effort-2025-11-24,context-1m-2025-08-07"},
			`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["effort-2025-11-24","context-1m-2025-08-07"],"max_tokens":5,"messages":[]}`},
		{`{"model":"claude","max_tokens":5,"messages":[]}`, []string{"claude-code-20250219"},
			`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}`},
		{`{"max_tokens":5,"messages":[],"model":"claude"}`, nil,
			`{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}`},
	} {
		if _, err := p.Messages(context.Background(), messagesRequest(tc.body, false, tc.betas...)); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if got := string(srv.LastCall().Body); got != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.body, got, tc.want)
		}
	}
}

// TestMessagesBetaSettings: anthropic_beta_allow extends the forwarded
// flags ("*": all of them), anthropic_beta_deny removes some ("*": all).
func TestMessagesBetaSettings(t *testing.T) {
	const sent = "claude-code-20250219,interleaved-thinking-2025-05-14,new-flag-2027-01-01,effort-2025-11-24"
	for _, tc := range []struct {
		name     string
		settings map[string]string
		want     string // the anthropic_beta Bedrock gets, "" for none
	}{
		{"default", nil, `["interleaved-thinking-2025-05-14","effort-2025-11-24"]`},
		{"allow", map[string]string{bedrock.SettingBetaAllow: "new-flag-2027-01-01, other-2027"}, `["interleaved-thinking-2025-05-14","new-flag-2027-01-01","effort-2025-11-24"]`},
		{"allow all", map[string]string{bedrock.SettingBetaAllow: "*"}, `["claude-code-20250219","interleaved-thinking-2025-05-14","new-flag-2027-01-01","effort-2025-11-24"]`},
		{"deny", map[string]string{bedrock.SettingBetaDeny: "effort-2025-11-24"}, `["interleaved-thinking-2025-05-14"]`},
		{"deny wins", map[string]string{bedrock.SettingBetaAllow: "*", bedrock.SettingBetaDeny: "claude-code-20250219,effort-2025-11-24"}, `["interleaved-thinking-2025-05-14","new-flag-2027-01-01"]`},
		{"deny all", map[string]string{bedrock.SettingBetaDeny: "*"}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := newMessagesFake(t, tc.settings)
			srv.Betas = append([]string{"claude-code-20250219", "new-flag-2027-01-01"}, bedrocktest.KnownBetas...)
			if _, err := p.Messages(context.Background(), messagesRequest(`{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, false, sent)); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Beta json.RawMessage `json:"anthropic_beta"`
			}
			json.Unmarshal(srv.LastCall().Body, &got)
			if string(got.Beta) != tc.want {
				t.Errorf("anthropic_beta = %s, want %s", got.Beta, tc.want)
			}
		})
	}
}

// TestInvalidBetaFlag: a flag Bedrock does not know, forwarded with
// anthropic_beta_allow=*, gets Bedrock's 400 as invalid_request_error.
func TestInvalidBetaFlag(t *testing.T) {
	_, p := newMessagesFake(t, map[string]string{bedrock.SettingBetaAllow: "*"})
	_, err := p.Messages(context.Background(), messagesRequest(`{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, false, "claude-code-20250219"))
	var e *llmproxy.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Type != "invalid_request_error" || !strings.Contains(e.Message, "invalid beta flag") {
		t.Fatalf("err = %#v, want 400 invalid_request_error: invalid beta flag", err)
	}
}

func TestMessagesBadBody(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	for body, param := range map[string]string{
		`[1,2]`:                       "",
		`{"max_tokens":5`:             "",
		`{"anthropic_beta":"x"}`:      "anthropic_beta",
		`{"anthropic_beta":[1]}`:      "anthropic_beta",
		`{"anthropic_beta":null}`:     "anthropic_beta",
		`{"anthropic_beta":{"a":[]}}`: "anthropic_beta",
	} {
		_, err := p.Messages(context.Background(), messagesRequest(body, false))
		var e *llmproxy.Error
		if !errors.As(err, &e) || e.Status != 400 || e.Param != param {
			t.Errorf("%s: err = %v, want a 400 naming %q", body, err, param)
		}
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d bad bodies reached Bedrock", n)
	}
}

// TestMessagesHTTPErrors: Bedrock's HTTP errors get Anthropic's types.
func TestMessagesHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		status     int
		exception  string
		wantStatus int
		wantType   string
	}{
		{400, "ValidationException", 400, "invalid_request_error"},
		{429, "ThrottlingException", 429, "rate_limit_error"},
		{503, "ServiceUnavailableException", 529, "overloaded_error"},
		{429, "ModelNotReadyException", 529, "overloaded_error"},
		{500, "InternalServerException", 502, "api_error"},
		{408, "ModelTimeoutException", 504, "api_error"},
		{403, "AccessDeniedException", 502, "api_error"},
		{404, "ResourceNotFoundException", 502, "api_error"},
	} {
		for _, stream := range []bool{false, true} {
			srv, p := newMessagesFake(t, nil)
			srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
				return &bedrocktest.MessagesReply{Error: bedrocktest.Error(tc.status, tc.exception, "the message")}
			}
			_, err := p.Messages(context.Background(), messagesRequest(`{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, stream))
			var e *llmproxy.Error
			if !errors.As(err, &e) || e.Status != tc.wantStatus || e.Type != tc.wantType {
				t.Errorf("%s (stream %v): err = %#v, want %d %s", tc.exception, stream, err, tc.wantStatus, tc.wantType)
			}
		}
	}
}

func TestValidateMessagesSettings(t *testing.T) {
	for settings, ok := range map[[2]string]bool{
		{bedrock.SettingMessages, "auto"}:                            true,
		{bedrock.SettingMessages, "native"}:                          true,
		{bedrock.SettingMessages, "translate"}:                       true,
		{bedrock.SettingMessages, "yes"}:                             false,
		{bedrock.SettingBetaAllow, "*"}:                              true,
		{bedrock.SettingBetaAllow, "a-2025-01-01, b-2026-02-02"}:     true,
		{bedrock.SettingBetaAllow, "a-2025-01-01,,b"}:                false,
		{bedrock.SettingBetaDeny, "Interleaved-Thinking"}:            false,
		{bedrock.SettingBetaDeny, "interleaved-thinking-2025-05-14"}: true,
	} {
		conn := llmproxy.Connection{Name: "b", Settings: map[string]string{bedrock.SettingRegion: "us-east-1", settings[0]: settings[1]}}
		err := bedrock.Validate(conn)
		if (err == nil) != ok {
			t.Errorf("%s=%q: Validate = %v, want ok=%v", settings[0], settings[1], err, ok)
		}
		if err != nil && (!errors.Is(err, llmproxy.ErrInvalid) || !strings.Contains(err.Error(), settings[0])) {
			t.Errorf("%s=%q: error %v does not wrap ErrInvalid or name the setting", settings[0], settings[1], err)
		}
	}
}
