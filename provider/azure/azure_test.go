package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/azure"
	"github.com/go-llm-proxy/llmproxy/provider/azure/azuretest"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

var _ llmproxy.NewProviderFunc = azure.New

const (
	masterKey  = "master-key"
	deployment = "my-gpt4o.deploy"
)

// gateway serves the alias "gpt" from an Azure connection to the fake,
// through a real Gateway, and returns a go-openai client for it.
func gateway(t *testing.T, settings map[string]string) (*azuretest.Server, *goopenai.Client, string) {
	return gatewayWithKey(t, settings, "azure-test-key")
}

func gatewayWithKey(t *testing.T, settings map[string]string, key string) (*azuretest.Server, *goopenai.Client, string) {
	t.Helper()
	fake := azuretest.NewServer()
	t.Cleanup(fake.Close)
	ctx := context.Background()
	store := memory.New()
	conn := &llmproxy.Connection{Name: "azure", Provider: llmproxy.KindAzure, Endpoint: fake.URL + "/", Credentials: llmproxy.Credentials{APIKey: key}, Settings: settings}
	if err := store.CreateConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateModel(ctx, &llmproxy.Model{Name: "gpt", Remote: deployment, ConnectionID: conn.ID}); err != nil {
		t.Fatal(err)
	}
	gw, err := llmproxy.New(llmproxy.Config{
		Storage:   store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindAzure: azure.New},
		MasterKey: masterKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	cfg := goopenai.DefaultConfig(masterKey)
	cfg.BaseURL = srv.URL + "/v1"
	return fake, goopenai.NewClientWithConfig(cfg), srv.URL
}

func TestValidate(t *testing.T) {
	key := llmproxy.Credentials{APIKey: "k"}
	for _, tc := range []struct {
		name string
		conn llmproxy.Connection
		ok   bool
	}{
		{"ok", llmproxy.Connection{Endpoint: "https://r.openai.azure.com", Credentials: key}, true},
		{"preview version", llmproxy.Connection{Endpoint: "https://r.openai.azure.com", Credentials: key, Settings: map[string]string{azure.SettingAPIVersion: "2025-01-01-preview"}}, true},
		{"no endpoint", llmproxy.Connection{Credentials: key}, false},
		{"endpoint not a URL", llmproxy.Connection{Endpoint: "r.openai.azure.com", Credentials: key}, false},
		{"no key", llmproxy.Connection{Endpoint: "https://r.openai.azure.com"}, false},
		{"aws credentials", llmproxy.Connection{Endpoint: "https://r.openai.azure.com", Credentials: llmproxy.Credentials{APIKey: "k", AccessKeyID: "AKID"}}, false},
		{"bad version", llmproxy.Connection{Endpoint: "https://r.openai.azure.com", Credentials: key, Settings: map[string]string{azure.SettingAPIVersion: "latest"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.conn.Name = "a"
			err := azure.Validate(tc.conn)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, llmproxy.ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			if _, err := azure.New(tc.conn, llmproxy.ProviderOptions{}); (err == nil) != tc.ok {
				t.Errorf("New = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestChat(t *testing.T) {
	fake, client, _ := gateway(t, nil)
	res, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{
		Model:    "gpt",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hello azure"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Choices[0].Message.Content; got != "You said: hello azure" {
		t.Errorf("content %q", got)
	}
	if res.Usage.TotalTokens == 0 {
		t.Errorf("no usage: %+v", res.Usage)
	}
	c := fake.LastCall()
	if c.Deployment != deployment || c.Operation != "chat/completions" || c.APIVersion != azure.DefaultAPIVersion {
		t.Errorf("call %+v", c)
	}
	if c.Header.Get("Authorization") != "" || c.Header.Get("Api-Key") != fake.APIKey {
		t.Errorf("auth headers: Authorization=%q api-key=%q", c.Header.Get("Authorization"), c.Header.Get("Api-Key"))
	}
	var body struct{ Model string }
	json.Unmarshal(c.Body, &body)
	if body.Model != deployment {
		t.Errorf("model sent upstream = %q, want the deployment", body.Model)
	}
}

func TestAPIVersionSetting(t *testing.T) {
	fake, client, _ := gateway(t, map[string]string{azure.SettingAPIVersion: "2024-12-01-preview"})
	if _, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{
		Model: "gpt", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	}); err != nil {
		t.Fatal(err)
	}
	if v := fake.LastCall().APIVersion; v != "2024-12-01-preview" {
		t.Errorf("api-version %q", v)
	}
}

// TestStream: Azure's stream reaches the client with one id on every
// chunk (its prompt-filter chunk with an empty id is dropped), and usage
// is asked of Azure.
func TestStream(t *testing.T) {
	fake, client, _ := gateway(t, nil)
	st, err := client.CreateChatCompletionStream(context.Background(), goopenai.ChatCompletionRequest{
		Model:         "gpt",
		Messages:      []goopenai.ChatCompletionMessage{{Role: "user", Content: "stream me please"}},
		Stream:        true,
		StreamOptions: &goopenai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var text strings.Builder
	ids := map[string]bool{}
	var usage *goopenai.Usage
	for {
		chunk, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids[chunk.ID] = true
		for _, c := range chunk.Choices {
			text.WriteString(c.Delta.Content)
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
	}
	if text.String() != "You said: stream me please" {
		t.Errorf("text %q", text.String())
	}
	if len(ids) != 1 || ids[""] {
		t.Errorf("chunk ids %v, want one non-empty id", ids)
	}
	if usage == nil || usage.TotalTokens == 0 {
		t.Errorf("usage %+v", usage)
	}
	var body struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	json.Unmarshal(fake.LastCall().Body, &body)
	if !body.StreamOptions.IncludeUsage {
		t.Errorf("stream_options.include_usage not sent to Azure: %s", fake.LastCall().Body)
	}
}

func TestToolRoundTrip(t *testing.T) {
	_, client, _ := gateway(t, nil)
	tools := []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
		Name:       "get_weather",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
	}}}
	msgs := []goopenai.ChatCompletionMessage{{Role: "user", Content: "Weather in Paris?"}}
	res, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt", Messages: msgs, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Choices[0].Message
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Arguments != `{"city":"test"}` || res.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("first answer %+v", res.Choices[0])
	}
	msgs = append(msgs, m, goopenai.ChatCompletionMessage{Role: "tool", ToolCallID: m.ToolCalls[0].ID, Content: "18C"})
	res, err = client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{Model: "gpt", Messages: msgs, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Choices[0].Message.Content; got != "The tool said: 18C" {
		t.Errorf("final answer %q", got)
	}
}

func TestEmbeddings(t *testing.T) {
	fake, client, _ := gateway(t, nil)
	res, err := client.CreateEmbeddings(context.Background(), goopenai.EmbeddingRequestStrings{Model: "gpt", Input: []string{"a b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || res.Usage.PromptTokens != 3 {
		t.Errorf("answer %+v", res)
	}
	if c := fake.LastCall(); c.Operation != "embeddings" || c.Deployment != deployment {
		t.Errorf("call %+v", c)
	}
}

// TestUpstreamErrors: Azure's errors, as the client sees them.
func TestUpstreamErrors(t *testing.T) {
	fake, _, url := gateway(t, nil)
	for _, tc := range []struct {
		name       string
		reply      *azuretest.Reply
		status     int
		typ        string
		retryAfter string
		message    string
	}{
		{"bad key", azuretest.Error(401, "401", "Access denied due to invalid subscription key"), 502, llmproxy.TypeUpstream, "", ""},
		{"throttled", func() *azuretest.Reply {
			r := azuretest.Error(429, "429", "Requests to the ChatCompletions_Create Operation have exceeded call rate limit.")
			r.Header = http.Header{"Retry-After": {"7"}}
			return r
		}(), 429, llmproxy.TypeRateLimit, "7", "exceeded call rate limit"},
		{"content filter", azuretest.Error(400, "content_filter", "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."), 400, llmproxy.TypeInvalidRequest, "", "content management policy"},
		{"no deployment", azuretest.Error(404, "DeploymentNotFound", "The API deployment for this resource does not exist."), 502, llmproxy.TypeUpstream, "", ""},
		{"server error", azuretest.Error(500, "InternalServerError", "boom"), 502, llmproxy.TypeUpstream, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.Handler = func(*azuretest.Call) *azuretest.Reply { return tc.reply }
			for _, stream := range []bool{false, true} {
				body := `{"model":"gpt","messages":[{"role":"user","content":"hi"}]`
				if stream {
					body += `,"stream":true`
				}
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body+"}"))
				req.Header.Set("Authorization", "Bearer "+masterKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var env struct {
					Error struct{ Message, Type string }
				}
				json.NewDecoder(resp.Body).Decode(&env)
				resp.Body.Close()
				if resp.StatusCode != tc.status || env.Error.Type != tc.typ {
					t.Errorf("stream=%v: %d %s %q, want %d %s", stream, resp.StatusCode, env.Error.Type, env.Error.Message, tc.status, tc.typ)
				}
				if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("stream=%v: Retry-After %q, want %q", stream, got, tc.retryAfter)
				}
				if !strings.Contains(env.Error.Message, tc.message) || strings.Contains(env.Error.Message, fake.APIKey) {
					t.Errorf("stream=%v: message %q", stream, env.Error.Message)
				}
			}
		})
	}
	fake.Handler = nil
}

// TestWrongKeyAndVersion: the fake rejects what Azure rejects, and the
// client sees the gateway's fault, not its own.
func TestWrongKeyAndVersion(t *testing.T) {
	for _, tc := range []struct{ key, version string }{
		{"wrong-key", azure.DefaultAPIVersion},
		{"azure-test-key", "1999-01-01"},
	} {
		fake, client, _ := gatewayWithKey(t, map[string]string{azure.SettingAPIVersion: tc.version}, tc.key)
		_, err := client.CreateEmbeddings(context.Background(), goopenai.EmbeddingRequestStrings{Model: "gpt", Input: []string{"x"}})
		var apiErr *goopenai.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusBadGateway || strings.Contains(apiErr.Message, tc.key) {
			t.Errorf("key %q version %q: %v, want a 502 without the key", tc.key, tc.version, err)
		}
		if n := len(fake.Calls()); n != 0 {
			t.Errorf("%d rejected calls recorded", n)
		}
	}
}
