package bedrock_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	goopenai "github.com/sashabaranov/go-openai"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const masterKey = "master-key"

// gateway serves the alias "claude" (a Bedrock model id with ':') and
// "titan" from a Bedrock connection to the fake, through a real Gateway.
func gateway(t *testing.T) (*bedrocktest.Server, string) {
	t.Helper()
	fake := bedrocktest.NewServer()
	fake.SecretAccessKey = "fake-secret"
	t.Cleanup(fake.Close)
	ctx := context.Background()
	store := memory.New()
	conn := &llmproxy.Connection{Name: "bedrock", Provider: llmproxy.KindBedrock, Endpoint: fake.URL,
		Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "fake-secret"},
		Settings:    map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"}}
	if err := store.CreateConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	for alias, remote := range map[string]string{"claude": testModel, "titan": "amazon.titan-embed-text-v2:0"} {
		if err := store.CreateModel(ctx, &llmproxy.Model{Name: alias, Remote: remote, ConnectionID: conn.ID}); err != nil {
			t.Fatal(err)
		}
	}
	gw, err := llmproxy.New(llmproxy.Config{
		Storage:   store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindBedrock: bedrock.New},
		MasterKey: masterKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return fake, srv.URL
}

var weatherTool = shared.FunctionDefinitionParam{
	Name:       "get_weather",
	Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
}

// TestOpenAIGoClient: the official Go SDK through the gateway to Bedrock:
// plain, streaming with the accumulator, and a streamed tool round trip.
func TestOpenAIGoClient(t *testing.T) {
	_, url := gateway(t)
	ctx := context.Background()
	c := oai.NewClient(option.WithBaseURL(url+"/v1"), option.WithAPIKey(masterKey), option.WithMaxRetries(0))

	resp, err := c.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
		Model:    "claude",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.SystemMessage("Be brief."), oai.UserMessage("hello bedrock")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: hello bedrock" || resp.Model != "claude" || resp.Usage.TotalTokens == 0 {
		t.Errorf("answer %q model %q usage %+v", got, resp.Model, resp.Usage)
	}

	stream := c.Chat.Completions.NewStreaming(ctx, oai.ChatCompletionNewParams{
		Model:         "claude",
		Messages:      []oai.ChatCompletionMessageParamUnion{oai.UserMessage("stream it please")},
		StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)},
	})
	var acc oai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "You said: stream it please" || acc.Usage.TotalTokens == 0 {
		t.Errorf("streamed %q, usage %+v", got, acc.Usage)
	}

	// Tool round trip, streamed: call, tool result, final answer.
	params := oai.ChatCompletionNewParams{
		Model:    "claude",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("weather in Paris?")},
		Tools:    []oai.ChatCompletionToolUnionParam{oai.ChatCompletionFunctionTool(weatherTool)},
	}
	stream = c.Chat.Completions.NewStreaming(ctx, params)
	acc = oai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	calls := acc.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].Function.Arguments != `{"city":"test"}` || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("tool call %+v", acc.Choices[0])
	}
	params.Messages = append(params.Messages, acc.Choices[0].Message.ToParam(), oai.ToolMessage("18C and sunny", calls[0].ID))
	resp, err = c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "The tool said: 18C and sunny" {
		t.Errorf("final answer %q", got)
	}
}

// TestGoOpenAIClient: sashabaranov/go-openai, streaming with tools, and
// embeddings from Titan.
func TestGoOpenAIClient(t *testing.T) {
	fake, url := gateway(t)
	cfg := goopenai.DefaultConfig(masterKey)
	cfg.BaseURL = url + "/v1"
	c := goopenai.NewClientWithConfig(cfg)
	ctx := context.Background()
	st, err := c.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
		Model:    "claude",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "weather?"}},
		Tools: []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}},
		Stream: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var id, name, args string
	for {
		chunk, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Usage != nil {
			t.Errorf("usage chunk shown to a client that did not ask for it")
		}
		for _, ch := range chunk.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index != 0 {
					t.Errorf("tool call index %v", tc.Index)
				}
				id += tc.ID
				name += tc.Function.Name
				args += tc.Function.Arguments
			}
		}
	}
	st.Close()
	if id == "" || name != "get_weather" || args != `{"city":"test"}` {
		t.Errorf("tool call %q %q %q", id, name, args)
	}

	emb, err := c.CreateEmbeddings(ctx, goopenai.EmbeddingRequestStrings{Model: "titan", Input: []string{"hello world", "bye"}, Dimensions: 256})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 2 || len(emb.Data[0].Embedding) != 256 || emb.Usage.PromptTokens != 3 {
		t.Errorf("embeddings: %d items, usage %+v", len(emb.Data), emb.Usage)
	}
	if c := fake.LastCall(); c.Operation != bedrocktest.OpInvoke {
		t.Errorf("last call %+v", c)
	}
}

// TestMidStreamError: a Bedrock exception in the middle of a stream ends
// the client's stream with an SSE error event.
func TestMidStreamError(t *testing.T) {
	fake, url := gateway(t)
	fake.Handler = func(*bedrocktest.Call) *bedrocktest.Reply {
		return &bedrocktest.Reply{Events: []bedrocktest.Event{
			{Type: "messageStart", Payload: json.RawMessage(`{"role":"assistant"}`)},
			{Type: "contentBlockDelta", Payload: json.RawMessage(`{"contentBlockIndex":0,"delta":{"text":"Hel"}}`)},
			{Type: "throttlingException", Exception: true, Payload: json.RawMessage(`{"message":"Too many tokens"}`)},
		}}
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(`{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+masterKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	if len(events) < 3 || !strings.Contains(events[1], `"content":"Hel"`) {
		t.Fatalf("events %q", events)
	}
	last := events[len(events)-1]
	if last == "[DONE]" {
		last = events[len(events)-2]
	}
	if !strings.Contains(last, `"error"`) || !strings.Contains(last, "throttling") {
		t.Errorf("the stream did not end with an error event: %q", events)
	}
}
