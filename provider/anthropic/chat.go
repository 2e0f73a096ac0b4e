package anthropic

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// ChatCompletion serves a Chat Completions client from the Messages API:
// the request is translated (translate.ChatToMessages; its max_tokens
// defaults to the connection's default_max_tokens), sent like Messages,
// and the answer or stream translated back (with the usage chunk a
// stream must end with). A chat request that cannot be expressed in
// Messages is a 400 naming the field.
func (p *Provider) ChatCompletion(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	body, err := translate.ChatToMessages(req.Body, translate.MessagesOptions{
		Model: req.RemoteModel, Stream: req.Stream, DefaultMaxTokens: p.defaultMaxTokens,
	})
	if err != nil {
		var re *translate.RequestError
		if errors.As(err, &re) {
			return nil, llmproxy.BadRequest(re.Param, "%s", re.Message)
		}
		return nil, fmt.Errorf("translating a chat request for connection %q: %w", p.name, err)
	}
	res, err := p.send(ctx, llmproxy.EndpointChat, p.upstreamHeader(req.Header, req.Stream), body, req.Stream)
	if err != nil {
		return nil, err
	}
	if res.Stream != nil {
		res.Stream = &chatStream{name: p.name, src: translate.MessagesStreamToChat(res.Stream, req.Model)}
		return res, nil
	}
	if res.Body, err = translate.MessagesToChatResponse(res.Body, req.Model); err != nil {
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the answer of connection %q cannot be translated to a chat completion", p.name), err)
	}
	return res, nil
}

// chatStream is a translated stream whose errors are *llmproxy.Errors.
//
// It is deliberately neither a BufferedStream nor a ReadyStream: one
// Messages event becomes zero, one or several chunks, so "an event is
// buffered upstream" does not mean "Next will not wait" (a buffered ping
// yields no chunk, and Next then waits for the next event), and the
// Gateway must not hold a chunk back on that promise.
type chatStream struct {
	name string
	src  translate.Stream
}

// Next returns the next chat.completion.chunk.
func (s *chatStream) Next() ([]byte, error) {
	d, err := s.src.Next()
	if err == nil || err == io.EOF {
		return d, err
	}
	var le *llmproxy.Error
	if errors.As(err, &le) { // from the EventStream: an error event, a cut
		return nil, err
	}
	var ee *translate.EventError
	if errors.As(err, &ee) {
		return nil, typedError(s.name, ee.Type, ee.Message)
	}
	return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q cannot be translated to chat chunks", s.name), err)
}

// Close releases the upstream connection.
func (s *chatStream) Close() error { return s.src.Close() }
