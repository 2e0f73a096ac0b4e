package fakeopenai_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// The fake's Responses API, read by the real openai-go SDK: what the fake
// sends is what the SDK accepts (objects, events, errors), through a
// function-call round trip.

func sdkClient(s *fakeopenai.Server) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.BaseURL()+"/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// execThenText answers an exec_command call, then the command's output.
func execThenText(r *fakeopenai.ResponsesRequest) *fakeopenai.Turn {
	if out, _, ok := r.FunctionCallOutput(); ok {
		return &fakeopenai.Turn{Text: "The command printed " + out,
			Usage: &fakeopenai.ResponsesUsage{InputTokens: 40, CachedTokens: 32, OutputTokens: 12, ReasoningTokens: 7}}
	}
	return &fakeopenai.Turn{Calls: []fakeopenai.FunctionCall{{Name: "exec_command", Arguments: `{"cmd":"echo hi"}`}}}
}

var execTool = responses.ToolParamOfFunction("exec_command", map[string]any{"type": "object", "properties": map[string]any{"cmd": map[string]any{"type": "string"}}}, false)

func TestSDKResponsesNew(t *testing.T) {
	s := fakeopenai.New(t, key)
	s.Responses.SetHandler(execThenText)
	client := sdkClient(s)
	ctx := context.Background()
	first, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-test", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("say hi")},
		Tools: []responses.ToolUnionParam{execTool},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Output) != 1 || first.Output[0].Type != "function_call" {
		t.Fatalf("output %+v", first.Output)
	}
	fc := first.Output[0].AsFunctionCall()
	if fc.Name != "exec_command" || fc.Arguments != `{"cmd":"echo hi"}` || fc.CallID == "" {
		t.Fatalf("function call %+v", fc)
	}
	out := responses.ResponseInputItemParamOfFunctionCallOutput("hi\n")
	out.OfFunctionCallOutput.CallID = openai.String(fc.CallID)
	second, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-test", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{out}},
		Tools: []responses.ToolUnionParam{execTool},
	})
	if err != nil {
		t.Fatal(err)
	}
	if second.OutputText() != "The command printed hi\n" || second.Status != "completed" || second.PreviousResponseID != first.ID {
		t.Fatalf("second: %q %s %q", second.OutputText(), second.Status, second.PreviousResponseID)
	}
	u := second.Usage
	if u.InputTokens != 40 || u.InputTokensDetails.CachedTokens != 32 || u.OutputTokens != 12 || u.OutputTokensDetails.ReasoningTokens != 7 || u.TotalTokens != 52 {
		t.Fatalf("usage %+v", u)
	}

	got, err := client.Responses.Get(ctx, second.ID, responses.ResponseGetParams{})
	if err != nil || got.OutputText() != second.OutputText() {
		t.Fatalf("Get: %v %v", got, err)
	}
	page, err := client.Responses.InputItems.List(ctx, second.ID, responses.InputItemListParams{})
	if err != nil || len(page.Data) != 1 || page.Data[0].Type != "function_call_output" {
		t.Fatalf("InputItems.List: %+v %v", page, err)
	}
	if err := client.Responses.Delete(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	_, err = client.Responses.Get(ctx, second.ID, responses.ResponseGetParams{})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(apiErr.Message, second.ID) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestSDKResponsesStreaming(t *testing.T) {
	s := fakeopenai.New(t, key)
	s.Responses.SetHandler(execThenText)
	client := sdkClient(s)
	ctx := context.Background()

	stream := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model: "gpt-test", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("say hi")},
		Tools: []responses.ToolUnionParam{execTool}, Store: openai.Bool(false),
	})
	var args string
	var call responses.ResponseFunctionToolCall
	var seq []int64
	for stream.Next() {
		e := stream.Current()
		seq = append(seq, e.SequenceNumber)
		switch e.Type {
		case "response.function_call_arguments.delta":
			args += e.AsResponseFunctionCallArgumentsDelta().Delta
		case "response.output_item.done":
			call = e.AsResponseOutputItemDone().Item.AsFunctionCall()
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	for i, n := range seq {
		if n != int64(i) {
			t.Fatalf("sequence numbers %v", seq)
		}
	}
	if args != `{"cmd":"echo hi"}` || call.Name != "exec_command" {
		t.Fatalf("arguments %q, call %+v", args, call)
	}

	// Codex's way: store false, the whole history sent again.
	out := responses.ResponseInputItemParamOfFunctionCallOutput("hi\n")
	out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	stream = client.Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model: "gpt-test", Store: openai.Bool(false), Tools: []responses.ToolUnionParam{execTool},
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("say hi", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
			out,
		}},
	})
	var text string
	var done responses.Response
	for stream.Next() {
		switch e := stream.Current(); e.Type {
		case "response.output_text.delta":
			text += e.AsResponseOutputTextDelta().Delta
		case "response.completed":
			done = e.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text != "The command printed hi\n" || done.OutputText() != text || done.Usage.InputTokensDetails.CachedTokens != 32 || done.Usage.OutputTokensDetails.ReasoningTokens != 7 {
		t.Fatalf("text %q, completed %q %+v", text, done.OutputText(), done.Usage)
	}
}

// TestSDKResponsesStreamError: the SDK reads the fake's error event as an
// event of type "error" with the code and message.
func TestSDKResponsesStreamError(t *testing.T) {
	s := fakeopenai.New(t, key)
	s.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Text: "a b", ErrorAfter: 2, ErrorCode: "server_error", ErrorMessage: "the model broke"}
	})
	client := sdkClient(s)
	stream := client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "gpt-test", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("x")},
	})
	var last responses.ResponseStreamEventUnion
	for stream.Next() {
		last = stream.Current()
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if e := last.AsError(); last.Type != "error" || e.Message != "the model broke" || e.Code != "server_error" {
		t.Fatalf("last event %+v", last)
	}
}

// TestResponsesAnswer: a scripted Answer for SetAnswer carries the same
// response, its stream written with event: lines and no [DONE].
func TestResponsesAnswer(t *testing.T) {
	s := fakeopenai.New(t, key)
	s.SetAnswer(func(r fakeopenai.Request) *fakeopenai.Answer {
		return fakeopenai.ResponsesAnswer(r, &fakeopenai.Turn{Text: "scripted answer", ErrorAfter: 5, ErrorMessage: "late failure"})
	})
	client := sdkClient(s)
	ctx := context.Background()
	params := responses.ResponseNewParams{Model: "m", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("x")}}
	r, err := client.Responses.New(ctx, params)
	if err != nil || r.OutputText() != "scripted answer" {
		t.Fatalf("New: %v %v", r, err)
	}
	stream := client.Responses.NewStreaming(ctx, params)
	var types []string
	for stream.Next() {
		types = append(types, string(stream.Current().Type))
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(types) != 6 || types[0] != "response.created" || types[4] != "response.output_text.delta" || types[5] != "error" {
		t.Fatalf("events %v", types)
	}
}
