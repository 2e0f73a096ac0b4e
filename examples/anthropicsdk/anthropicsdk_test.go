// Package anthropicsdk_test runs Anthropic's official Go SDK
// (github.com/anthropics/anthropic-sdk-go/v2) against a real Gateway
// serving the Messages API, through each kind of upstream: an anthropic
// connection (passed through), an OpenAI-compatible one (translated to
// Chat Completions and back) and Bedrock (InvokeModel, natively).
package anthropicsdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	anthropicprovider "github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const (
	key         = "sk-proxy-go-sdk"
	upstreamKey = "sk-upstream-go-sdk"
)

// A route is a connection kind and the alias of a model on it.
type route struct {
	name, alias string
	// countForwarded: the upstream counts tokens itself (elsewhere the
	// Gateway estimates them).
	countForwarded bool
}

var routes = []route{
	{name: "anthropic", alias: "claude", countForwarded: true},
	{name: "translated", alias: "gpt"},
	{name: "bedrock", alias: "claude-bedrock", countForwarded: true},
}

// fakes are the routes' upstreams.
type fakes struct {
	anthropic *anthropictest.Server
	openai    *fakeopenai.Server
	bedrock   *bedrocktest.Server
}

// calls returns how many calls the route's fake has received.
func (f *fakes) calls(rt route) int {
	switch rt.name {
	case "anthropic":
		return len(f.anthropic.Calls())
	case "translated":
		return len(f.openai.Requests())
	}
	return len(f.bedrock.Calls())
}

// gateway starts a Gateway with one connection per route, and key
// allowed on all of them. It returns the Gateway's root URL.
func gateway(t *testing.T) (string, *fakes) {
	t.Helper()
	ctx := context.Background()
	f := &fakes{anthropic: anthropictest.New(t), openai: fakeopenai.New(t, upstreamKey), bedrock: bedrocktest.NewServer()}
	f.anthropic.Handle(model)
	f.bedrock.SecretAccessKey = "fake-secret" // the fake checks SigV4 signatures
	f.bedrock.Latency = 5 * time.Millisecond
	t.Cleanup(f.bedrock.Close)

	store := memory.New()
	svc := &admin.Service{Storage: store}
	conns := []struct {
		conn          llmproxy.Connection
		alias, remote string
	}{
		{llmproxy.Connection{Name: "anthropic", Provider: llmproxy.KindAnthropic, Endpoint: f.anthropic.URL,
			Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}}, "claude", "claude-sonnet-4-5"},
		{llmproxy.Connection{Name: "compat", Provider: llmproxy.KindCompatible, Endpoint: f.openai.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: upstreamKey}}, "gpt", "gpt-4o"},
		{llmproxy.Connection{Name: "bedrock", Provider: llmproxy.KindBedrock, Endpoint: f.bedrock.URL,
			Credentials: llmproxy.Credentials{AccessKeyID: f.bedrock.AccessKeyID, SecretAccessKey: "fake-secret"},
			Settings:    map[string]string{bedrock.SettingRegion: f.bedrock.Region, bedrock.SettingMaxAttempts: "1"}},
			"claude-bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"},
	}
	var assignments []llmproxy.Assignment
	for _, c := range conns {
		conn := c.conn
		if err := svc.AddConnection(ctx, &conn); err != nil {
			t.Fatal(err)
		}
		if err := svc.AddModel(ctx, &llmproxy.Model{Name: c.alias, Remote: c.remote, ConnectionID: conn.ID}); err != nil {
			t.Fatal(err)
		}
		assignments = append(assignments, llmproxy.Assignment{ConnectionID: conn.ID})
	}
	if _, err := svc.AddKey(ctx, &llmproxy.VirtualKey{Name: "go-sdk", Assignments: assignments}, key); err != nil {
		t.Fatal(err)
	}
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{
		llmproxy.KindAnthropic: anthropicprovider.New, llmproxy.KindCompatible: openai.New, llmproxy.KindBedrock: bedrock.New}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return srv.URL, f
}

// model is the anthropic fake's model, as the other fakes' default
// ones: offered tools, it calls the first with {"city":"Paris"}; given
// tool results it answers "The tool said: …"; otherwise "You said: …".
func model(c *anthropictest.Call) anthropictest.Answer {
	var body struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	json.Unmarshal(c.Body, &body)
	if len(body.Tools) > 0 && len(c.ToolResults()) == 0 && !c.CountTokens() {
		return anthropictest.ToolUse("toolu_go_1", body.Tools[0].Name, map[string]any{"city": "Paris"})
	}
	return anthropictest.Echo(c)
}

var weatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name:        "get_weather",
	Description: anthropic.String("The current weather in a city"),
	InputSchema: anthropic.ToolInputSchemaParam{
		Properties: map[string]any{"city": map[string]any{"type": "string"}},
		Required:   []string{"city"},
	},
}}

// weather is the tool's answer, which only the test knows.
func weather(input json.RawMessage) (string, error) {
	var in struct {
		City string `json:"city"`
	}
	if err := json.Unmarshal(input, &in); err != nil || in.City == "" {
		return "", err
	}
	return "Sunny, 22 C in " + in.City, nil
}

// text joins a message's text blocks.
func text(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// stream sends params as a stream and returns the accumulated message
// and the text of its text_delta events.
func stream(ctx context.Context, client anthropic.Client, params anthropic.MessageNewParams) (*anthropic.Message, string, error) {
	s := client.Messages.NewStreaming(ctx, params)
	defer s.Close()
	var msg anthropic.Message
	var deltas strings.Builder
	for s.Next() {
		ev := s.Current()
		if err := msg.Accumulate(ev); err != nil {
			return nil, "", err
		}
		if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
			deltas.WriteString(ev.Delta.Text)
		}
	}
	return &msg, deltas.String(), s.Err()
}

func TestGoSDK(t *testing.T) {
	base, f := gateway(t)
	ctx := context.Background()
	hello := []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			client := anthropic.NewClient(option.WithBaseURL(base), option.WithAPIKey(key), option.WithMaxRetries(0))
			params := anthropic.MessageNewParams{Model: anthropic.Model(rt.alias), MaxTokens: 100, Messages: hello}
			before := f.calls(rt)

			t.Run("plain", func(t *testing.T) {
				msg, err := client.Messages.New(ctx, params)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(text(msg), "Say hello") || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens < 1 || msg.Usage.OutputTokens < 1 {
					t.Errorf("got %q, stop %q, usage %+v", text(msg), msg.StopReason, msg.Usage)
				}
			})
			t.Run("stream", func(t *testing.T) {
				msg, deltas, err := stream(ctx, client, params)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(deltas, "Say hello") || deltas != text(msg) || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens < 1 || msg.Usage.OutputTokens < 1 {
					t.Errorf("deltas %q, message %q, stop %q, usage %+v", deltas, text(msg), msg.StopReason, msg.Usage)
				}
			})
			for _, streaming := range []bool{false, true} {
				name := map[bool]string{false: "tool", true: "tool-stream"}[streaming]
				t.Run(name, func(t *testing.T) {
					send := func(p anthropic.MessageNewParams) (*anthropic.Message, error) {
						if streaming {
							m, _, err := stream(ctx, client, p)
							return m, err
						}
						return client.Messages.New(ctx, p)
					}
					p := anthropic.MessageNewParams{Model: anthropic.Model(rt.alias), MaxTokens: 200, Tools: []anthropic.ToolUnionParam{weatherTool},
						Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What is the weather in Paris?"))}}
					first, err := send(p)
					if err != nil {
						t.Fatal(err)
					}
					var use *anthropic.ContentBlockUnion
					for i := range first.Content {
						if first.Content[i].Type == "tool_use" {
							use = &first.Content[i]
						}
					}
					if use == nil || use.Name != "get_weather" || first.StopReason != anthropic.StopReasonToolUse {
						t.Fatalf("want a get_weather call, got %+v", first)
					}
					answer, err := weather(use.Input)
					if err != nil {
						t.Fatalf("tool input %s: %v", use.Input, err)
					}
					p.Messages = append(p.Messages, first.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, answer, false)))
					second, err := send(p)
					if err != nil {
						t.Fatal(err)
					}
					if got, want := text(second), "The tool said: "+answer; got != want || second.StopReason != anthropic.StopReasonEndTurn {
						t.Errorf("after the tool: %q (stop %q), want %q", got, second.StopReason, want)
					}
				})
			}
			t.Run("count_tokens", func(t *testing.T) {
				n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: anthropic.Model(rt.alias), Messages: hello})
				if err != nil {
					t.Fatal(err)
				}
				if n.InputTokens < 1 {
					t.Errorf("input_tokens %d", n.InputTokens)
				}
			})
			want := 6
			if rt.countForwarded {
				want = 7
			}
			if got := f.calls(rt) - before; got != want && !t.Failed() {
				t.Errorf("the upstream got %d calls, want %d", got, want)
			}
			if rt.name == "bedrock" {
				// Natively: InvokeModel and CountTokens, never Converse.
				for _, c := range f.bedrock.Calls()[before:] {
					if c.Operation != bedrocktest.OpInvoke && c.Operation != bedrocktest.OpInvokeStream && c.Operation != bedrocktest.OpCountTokens {
						t.Errorf("Bedrock got a %s call", c.Operation)
					}
				}
			}
		})
	}
}

// The key as x-api-key (older SDKs, curl) and as a bearer token
// (WithAuthToken) both work; a wrong key is an authentication_error.
func TestGoSDKKeys(t *testing.T) {
	base, _ := gateway(t)
	params := anthropic.MessageNewParams{Model: "claude", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))}}
	for _, tc := range []struct {
		name string
		opt  option.RequestOption
		ok   bool
	}{
		{"x-api-key", option.WithHeader("x-api-key", key), true},
		{"auth token", option.WithAuthToken(key), true},
		{"wrong key", option.WithAPIKey("sk-wrong"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := anthropic.NewClient(option.WithBaseURL(base), tc.opt, option.WithMaxRetries(0))
			msg, err := client.Messages.New(context.Background(), params)
			if tc.ok {
				if err != nil || !strings.Contains(text(msg), "Say hello") {
					t.Errorf("got %v, %v", msg, err)
				}
				return
			}
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || !strings.Contains(apiErr.RawJSON(), `"authentication_error"`) {
				t.Errorf("want a 401 authentication_error, got %v", err)
			}
		})
	}
}
