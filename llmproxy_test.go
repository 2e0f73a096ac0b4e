package llmproxy_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	goopenai "github.com/sashabaranov/go-openai"
	"github.com/sashabaranov/go-openai/jsonschema"
)

// The official Go SDK against the gateway: plain, streaming (with the
// accumulator), and a tool-calling round trip.
func TestOpenAIGoClient(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	ctx := context.Background()
	c := oai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey(keyConn), option.WithMaxRetries(0))

	resp, err := c.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
		Model:    "gpt-alias",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hello")},
	})
	must(t, err)
	if got, want := resp.Choices[0].Message.Content, fakeopenai.Reply("remote-model-1", "hello"); got != want {
		t.Errorf("content %q, want %q", got, want)
	}
	if resp.Usage.TotalTokens == 0 {
		t.Error("no usage")
	}

	stream := c.Chat.Completions.NewStreaming(ctx, oai.ChatCompletionNewParams{
		Model:         "gpt-alias",
		Messages:      []oai.ChatCompletionMessageParamUnion{oai.UserMessage("stream it")},
		StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)},
	})
	var acc oai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	must(t, stream.Err())
	if got, want := acc.Choices[0].Message.Content, fakeopenai.Reply("remote-model-1", "stream it"); got != want {
		t.Errorf("streamed %q, want %q", got, want)
	}
	if acc.Usage.CompletionTokens != 7 {
		t.Errorf("stream usage %+v", acc.Usage)
	}

	// Tool round trip: the model calls a tool, the client answers it.
	params := oai.ChatCompletionNewParams{
		Model:    "gpt-alias",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("weather in Paris?")},
		Tools: []oai.ChatCompletionToolUnionParam{oai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:       "get_weather",
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
		})},
	}
	for _, streamed := range []bool{false, true} {
		var msg oai.ChatCompletionMessage
		if streamed {
			st := c.Chat.Completions.NewStreaming(ctx, params)
			var acc oai.ChatCompletionAccumulator
			for st.Next() {
				acc.AddChunk(st.Current())
			}
			must(t, st.Err())
			msg = acc.Choices[0].Message
		} else {
			r, err := c.Chat.Completions.New(ctx, params)
			must(t, err)
			msg = r.Choices[0].Message
		}
		if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" || msg.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` {
			t.Fatalf("streamed=%v tool calls %+v", streamed, msg.ToolCalls)
		}
		next := params
		next.Messages = append(append([]oai.ChatCompletionMessageParamUnion{}, params.Messages...), msg.ToParam(), oai.ToolMessage("sunny", msg.ToolCalls[0].ID))
		r, err := c.Chat.Completions.New(ctx, next)
		must(t, err)
		if r.Choices[0].Message.Content != "The tool said: sunny" {
			t.Errorf("final answer %q", r.Choices[0].Message.Content)
		}
	}
}

// go-openai against the gateway: plain, and a streamed tool call.
func TestGoOpenAIClientTools(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	c := goClient(e, keyConn)
	ctx := context.Background()
	req := goopenai.ChatCompletionRequest{
		Model:    "gpt-alias",
		Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "weather?"}},
		Tools: []goopenai.Tool{{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: "get_weather", Parameters: jsonschema.Definition{Type: jsonschema.Object, Properties: map[string]jsonschema.Definition{"city": {Type: jsonschema.String}}},
		}}},
	}
	resp, err := c.CreateChatCompletion(ctx, req)
	must(t, err)
	tc := resp.Choices[0].Message.ToolCalls
	if len(tc) != 1 || tc[0].Function.Name != "get_weather" || resp.Choices[0].FinishReason != goopenai.FinishReasonToolCalls {
		t.Fatalf("tool calls %+v", resp.Choices[0])
	}
	req.Stream = true
	st, err := c.CreateChatCompletionStream(ctx, req)
	must(t, err)
	args := ""
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		for _, ch := range r.Choices {
			for _, call := range ch.Delta.ToolCalls {
				args += call.Function.Arguments
			}
		}
	}
	st.Close()
	if args != `{"city":"Paris"}` {
		t.Errorf("streamed arguments %q", args)
	}
	req.Stream = false
	req.Messages = append(req.Messages, resp.Choices[0].Message, goopenai.ChatCompletionMessage{Role: "tool", ToolCallID: tc[0].ID, Content: "rainy"})
	resp, err = c.CreateChatCompletion(ctx, req)
	must(t, err)
	if resp.Choices[0].Message.Content != "The tool said: rainy" {
		t.Errorf("final %q", resp.Choices[0].Message.Content)
	}
	// Embeddings pass through too.
	emb, err := c.CreateEmbeddings(ctx, goopenai.EmbeddingRequestStrings{Model: "gpt-alias", Input: []string{"a", "b"}})
	must(t, err)
	if len(emb.Data) != 2 || emb.Usage.TotalTokens != 6 {
		t.Errorf("embeddings %+v", emb)
	}
}
