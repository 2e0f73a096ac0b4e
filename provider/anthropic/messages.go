package anthropic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// Messages forwards a Messages request: req.UpstreamBody() (the client's
// body with only "model" changed) to {base}/v1/messages. A non-streaming
// answer is the upstream's Message JSON, unchanged; a stream is an
// *EventStream of the upstream's events.
func (p *Provider) Messages(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	h := p.upstreamHeader(req.Header, req.Stream)
	return p.send(ctx, llmproxy.EndpointMessages, h, req.UpstreamBody(), req.Stream)
}

// send POSTs a Messages body and returns the upstream's answer as it is:
// a Message as Body, or for a stream an *EventStream.
func (p *Provider) send(ctx context.Context, endpoint string, h http.Header, body []byte, stream bool) (*llmproxy.Response, error) {
	resp, err := p.post(ctx, p.messagesURL, endpoint, h, body)
	if err != nil {
		return nil, err
	}
	out := &llmproxy.Response{Header: answerHeader(resp.Header)}
	if stream {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			resp.Body.Close()
			return nil, llmproxy.UpstreamError(fmt.Sprintf("the upstream of connection %q answered a stream request with %q instead of an event stream", p.name, ct), nil)
		}
		out.Stream = NewEventStream(p.name, resp.Body)
		return out, nil
	}
	defer resp.Body.Close()
	if out.Body, err = p.readJSON(ctx, resp); err != nil {
		return nil, err
	}
	return out, nil
}

// readJSON reads a successful answer's JSON body.
func (p *Provider) readJSON(ctx context.Context, resp *http.Response) ([]byte, error) {
	b, err := readBody(resp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, llmproxy.UpstreamError(fmt.Sprintf("reading the answer of connection %q failed", p.name), err)
	}
	if !jsonscan.Valid(b) {
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the upstream of connection %q answered with malformed JSON", p.name), nil)
	}
	return b, nil
}

// CountTokens forwards a count_tokens request (req.UpstreamBody(), the
// model rewritten) to {base}/v1/messages/count_tokens and returns the
// upstream's input_tokens. An upstream that answers 404 (a server that
// speaks Messages without count_tokens) yields an error wrapping
// llmproxy.ErrUnsupported, so that the Gateway answers its estimate.
func (p *Provider) CountTokens(ctx context.Context, req *llmproxy.Request) (int64, error) {
	h := p.upstreamHeader(req.Header, false)
	resp, err := p.post(ctx, p.countURL, llmproxy.EndpointCountTokens, h, req.UpstreamBody())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := p.readJSON(ctx, resp)
	if err != nil {
		return 0, err
	}
	n, ok := jsonscan.Count(jsonscan.Field(b, "input_tokens"))
	if !ok {
		return 0, llmproxy.UpstreamError(fmt.Sprintf("the count_tokens answer of connection %q has no input_tokens", p.name),
			errors.New("answer: "+truncate(b, 200)))
	}
	return n, nil
}

// truncate returns b as a string of at most n bytes, for error causes.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
