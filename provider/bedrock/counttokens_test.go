package bedrock_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

func countRequest(body, model string) *llmproxy.Request {
	r := messagesRequest(body, false, "claude-code-20250219,interleaved-thinking-2025-05-14")
	r.RemoteModel, r.Endpoint = model, llmproxy.EndpointCountTokens
	return r
}

// TestCountTokens: an inference profile is counted with its model id,
// with the body Messages sends plus the max_tokens Bedrock requires.
func TestCountTokens(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	var got *bedrocktest.MessagesCall
	srv.Messages = func(c *bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		got = c
		return &bedrocktest.MessagesReply{InputTokens: 1234}
	}
	for _, tc := range []struct{ body, model, wantModel, wantBody string }{
		{`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`, claudeProfile, "anthropic.claude-sonnet-4-5-20250929-v1:0",
			`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["interleaved-thinking-2025-05-14"],"max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`},
		{`{"model":"claude","thinking":{"type":"enabled","budget_tokens":2048},"messages":[]}`, "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0",
			`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["interleaved-thinking-2025-05-14"],"max_tokens":2049,"thinking":{"type":"enabled","budget_tokens":2048},"messages":[]}`},
		{`{"model":"claude","max_tokens":77,"messages":[]}`, "anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0",
			`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["interleaved-thinking-2025-05-14"],"max_tokens":77,"messages":[]}`},
	} {
		n, err := p.CountTokens(context.Background(), countRequest(tc.body, tc.model))
		if err != nil || n != 1234 {
			t.Fatalf("%s: CountTokens = %d, %v", tc.model, n, err)
		}
		if got.Operation != bedrocktest.OpCountTokens || got.ModelID != tc.wantModel || string(got.Anthropic) != tc.wantBody {
			t.Errorf("%s: Bedrock got %s on %s:\n%s\nwant %s", tc.model, got.Operation, got.ModelID, got.Anthropic, tc.wantBody)
		}
	}
}

// TestCountTokensEcho: the default fake counts words.
func TestCountTokensEcho(t *testing.T) {
	_, p := newMessagesFake(t, nil)
	n, err := p.CountTokens(context.Background(), countRequest(`{"system":"be brief","messages":[{"role":"user","content":"one two three"}]}`, claudeProfile))
	if err != nil || n != 5 {
		t.Fatalf("CountTokens = %d, %v, want 5", n, err)
	}
}

// TestCountTokensUnsupported: what Bedrock cannot count is
// ErrUnsupported, for the gateway to estimate; other errors are not.
func TestCountTokensUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name        string
		model       string
		settings    map[string]string
		reply       *bedrocktest.Reply
		unsupported bool
		calls       int
	}{
		{"not anthropic", "amazon.nova-pro-v1:0", nil, nil, true, 0},
		{"translate", claudeProfile, map[string]string{bedrock.SettingMessages: bedrock.MessagesTranslate}, nil, true, 0},
		{"application profile", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", map[string]string{bedrock.SettingMessages: bedrock.MessagesNative}, nil, true, 0},
		{"model cannot count", claudeProfile, nil, bedrocktest.Error(400, "ValidationException", "The provided model doesn't support counting tokens."), true, 1},
		{"no permission", claudeProfile, nil, bedrocktest.Error(403, "AccessDeniedException", "User: arn:aws:iam::1:user/gw is not authorized to perform: bedrock:CountTokens"), true, 1},
		{"unknown operation", claudeProfile, nil, bedrocktest.Error(404, "UnknownOperationException", ""), true, 1},
		{"throttled", claudeProfile, nil, bedrocktest.Error(429, "ThrottlingException", "slow down"), false, 1},
		{"bad body", claudeProfile, nil, bedrocktest.Error(400, "ValidationException", "messages: roles must alternate"), false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := newMessagesFake(t, tc.settings)
			srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
				return &bedrocktest.MessagesReply{Error: tc.reply}
			}
			_, err := p.CountTokens(context.Background(), countRequest(`{"messages":[{"role":"user","content":"hi"}]}`, tc.model))
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, llmproxy.ErrUnsupported) != tc.unsupported {
				t.Errorf("err = %v, want ErrUnsupported %v", err, tc.unsupported)
			}
			if n := len(srv.Calls()); n != tc.calls {
				t.Errorf("%d calls to Bedrock, want %d", n, tc.calls)
			}
			var e *llmproxy.Error
			if !tc.unsupported && (!errors.As(err, &e) || e.Status == http.StatusOK) {
				t.Errorf("err = %v, want an *llmproxy.Error", err)
			}
		})
	}
}
