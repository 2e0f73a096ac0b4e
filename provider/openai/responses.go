package openai

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
)

var _ llmproxy.Responder = (*Passthrough)(nil)

// NativeResponses reports whether the upstream serves the Responses API
// (ServesResponses): then the Gateway calls Responses, else it translates
// through chat completions.
func (p *Passthrough) NativeResponses(string) bool { return p.ServesResponses }

// Responses forwards a Responses API request (req.Endpoint must be
// llmproxy.EndpointResponses) to URL(EndpointResponses, remote model):
// the client's body with only "model" changed, in one write. The answer
// is the upstream's: a response object as Body, or for a stream an
// EventStream (NewResponsesEventStream) that returns each event as it
// arrives. Error answers are mapped as for chat, except that a request
// error keeps the upstream's code.
func (p *Passthrough) Responses(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	if req.Endpoint != llmproxy.EndpointResponses {
		// UpstreamBody would treat the body as a chat request (a stream
		// would get stream_options, which the Responses API refuses).
		return nil, fmt.Errorf("openai: Responses called with a request for endpoint %q", req.Endpoint)
	}
	return p.do(ctx, llmproxy.EndpointResponses, req)
}

// ResponseResource forwards GET /responses/{id}, GET
// /responses/{id}/input_items or DELETE /responses/{id} (path is "{id}"
// or "{id}/input_items") with the client's query to the upstream, and
// returns its JSON answer as it is. A 404 (an unknown or deleted id) is
// returned as a 404 *llmproxy.Error with the upstream's message; other
// errors are mapped as for chat (the connection's key refused: 502).
// Streaming a stored response again (stream=true) is refused with a 400:
// the Gateway relays these answers as JSON.
func (p *Passthrough) ResponseResource(ctx context.Context, method, path, rawQuery string) (*llmproxy.Response, error) {
	id, sub, err := resourcePath(method, path)
	if err != nil {
		return nil, err
	}
	if q, err := url.ParseQuery(rawQuery); err != nil {
		return nil, llmproxy.BadRequest("", "the query string is malformed")
	} else if v := q.Get("stream"); v != "" && v != "false" {
		return nil, llmproxy.BadRequest("stream", "streaming a stored response again is not supported by the gateway; leave out stream")
	}
	base, err := p.url(llmproxy.EndpointResponses, "")
	if err != nil {
		return nil, llmproxy.UpstreamError(fmt.Sprintf("connection %q has an invalid endpoint", p.Name), err)
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + "/" + id + sub
	u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + "/" + url.PathEscape(id) + sub
	switch {
	case base.RawQuery == "":
		u.RawQuery = rawQuery
	case rawQuery != "":
		u.RawQuery = base.RawQuery + "&" + rawQuery
	}
	h := make(http.Header, 3)
	h["Accept"] = jsonType
	if p.SetHeaders != nil {
		p.SetHeaders(h)
	}
	return p.exchange(ctx, method, endpointResource, &u, h, nil, false)
}

// resourcePath splits the path of a response resource into the id and
// "" or "/input_items", refusing what is not one: an id that is empty or
// a dot segment (it would name another upstream path), another sub-path
// (404), a method other than GET and DELETE, or DELETE of input_items
// (405).
func resourcePath(method, path string) (id, sub string, err error) {
	id, rest, hasRest := strings.Cut(path, "/")
	if id == "" || id == "." || id == ".." || (hasRest && rest != "input_items") {
		return "", "", &llmproxy.Error{Status: http.StatusNotFound, Type: llmproxy.TypeInvalidRequest,
			Message: fmt.Sprintf("no such resource: /responses/%s", path)}
	}
	if hasRest {
		sub = "/input_items"
	}
	if method != http.MethodGet && (method != http.MethodDelete || hasRest) {
		return "", "", &llmproxy.Error{Status: http.StatusMethodNotAllowed, Type: llmproxy.TypeInvalidRequest,
			Message: fmt.Sprintf("%s is not allowed on /responses/%s", method, path)}
	}
	return id, sub, nil
}
