package llmproxy

import (
	"context"
	"errors"
	"strconv"

	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// messages sends a Messages request to connection ce: natively when its
// provider speaks Messages for the model (anthropic, Bedrock's Anthropic
// models), so that thinking signatures and cache_control reach the
// upstream as the client sent them; otherwise translated to Chat
// Completions and the answer translated back.
func messages(ctx context.Context, ce *upstream, req *Request) (*Response, error) {
	if m, ok := ce.provider.(Messenger); ok && m.NativeMessages(req.RemoteModel) {
		return m.Messages(ctx, req)
	}
	body, err := translate.MessagesToChat(req.Body, translate.ChatOptions{
		Model:  req.RemoteModel,
		Stream: req.Stream,
		// OpenAI's reasoning models refuse max_tokens; the other
		// OpenAI-shaped servers do not all know its successor.
		MaxCompletionTokens: ce.Provider == KindOpenAI,
	})
	if err != nil {
		return nil, requestError(err)
	}
	chat := &Request{Body: body, Model: req.Model, RemoteModel: req.RemoteModel, Stream: req.Stream, Header: req.Header, Endpoint: EndpointChat}
	resp, err := ce.provider.ChatCompletion(ctx, chat)
	if err != nil {
		return nil, err
	}
	if resp.Stream != nil {
		resp.Stream = translate.ChatStreamToMessages(resp.Stream, req.Model)
		return resp, nil
	}
	if resp.Body, err = translate.ChatToMessagesResponse(resp.Body, req.Model); err != nil {
		return nil, UpstreamError("the upstream's answer could not be read as a chat completion", err)
	}
	return resp, nil
}

// countTokens answers a count_tokens request from connection ce's
// upstream when it can count, else with the gateway's estimate (documented
// in internal/translate), which errs on the high side: Claude Code
// compacts its context from this number.
func countTokens(ctx context.Context, ce *upstream, req *Request) (*Response, error) {
	var n int64
	err := error(ErrUnsupported)
	if tc, ok := ce.provider.(TokenCounter); ok {
		n, err = tc.CountTokens(ctx, req)
	}
	if errors.Is(err, ErrUnsupported) {
		if n, err = translate.EstimateInputTokens(req.Body); err != nil {
			return nil, requestError(err)
		}
	}
	if err != nil {
		return nil, err
	}
	body := strconv.AppendInt([]byte(`{"input_tokens":`), n, 10)
	return &Response{Body: append(body, '}')}, nil
}

// requestError turns a request the translation refused into a 400 naming
// the field.
func requestError(err error) error {
	var re *translate.RequestError
	if errors.As(err, &re) {
		return BadRequest(re.Param, "%s", re.Message)
	}
	return err
}
