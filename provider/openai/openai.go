// Package openai is the provider for OpenAI, Gemini's OpenAI-compatible
// endpoint, and any other OpenAI-compatible server. Requests are passed
// through faithfully: the client's body is forwarded with only "model"
// rewritten (and stream usage requested), and streams are relayed event by
// event as they arrive.
//
// Its Passthrough type is the reusable core for other providers that speak
// OpenAI's wire format at a different URL or with different auth (Azure).
package openai

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// Default endpoints by provider kind.
const (
	DefaultOpenAIEndpoint = "https://api.openai.com/v1"
	DefaultGoogleEndpoint = "https://generativelanguage.googleapis.com/v1beta/openai"
)

// New builds the provider of an OpenAI, Google or compatible connection.
// Requests go to Endpoint + "/chat/completions" (or "/embeddings") with
// "Authorization: Bearer <api key>" when the connection has a key.
func New(conn llmproxy.Connection, opts llmproxy.ProviderOptions) (llmproxy.Provider, error) {
	base := conn.Endpoint
	if base == "" {
		switch conn.Provider {
		case llmproxy.KindGoogle:
			base = DefaultGoogleEndpoint
		case llmproxy.KindOpenAI:
			base = DefaultOpenAIEndpoint
		default:
			return nil, fmt.Errorf("connection %q (%s) has no endpoint", conn.Name, conn.Provider)
		}
	}
	base = strings.TrimRight(base, "/")
	// Built once: a request allocates neither its URL nor its header.
	chatURL, embeddingsURL := base+"/chat/completions", base+"/embeddings"
	var auth []string
	if conn.Credentials.APIKey != "" {
		auth = []string{"Bearer " + conn.Credentials.APIKey}
	}
	return &Passthrough{
		Name:   conn.Name,
		Client: opts.HTTPClient,
		URL: func(endpoint, _ string) string {
			if endpoint == llmproxy.EndpointEmbeddings {
				return embeddingsURL
			}
			return chatURL
		},
		SetHeaders: func(h http.Header) {
			if auth != nil {
				h["Authorization"] = auth
			}
		},
	}, nil
}

// Passthrough forwards OpenAI-shaped requests to an OpenAI-compatible
// upstream. Its fields must be set before first use and not changed after.
type Passthrough struct {
	// Name names the connection in error messages (never a secret).
	Name string
	// Client sends the upstream requests; nil means http.DefaultClient.
	Client *http.Client
	// URL returns the upstream URL for an endpoint (llmproxy.EndpointChat
	// or llmproxy.EndpointEmbeddings) and remote model.
	URL func(endpoint, remoteModel string) string
	// SetHeaders adds authentication (and any other fixed headers) to an
	// upstream request.
	SetHeaders func(h http.Header)

	urlsMu sync.RWMutex
	urls   map[[2]string]*url.URL // parsed results of URL
}

// url returns the parsed upstream URL of an endpoint and remote model,
// parsed once and then shared by every request to it (nothing modifies a
// request's URL).
func (p *Passthrough) url(endpoint, remoteModel string) (*url.URL, error) {
	k := [2]string{endpoint, remoteModel}
	p.urlsMu.RLock()
	u := p.urls[k]
	p.urlsMu.RUnlock()
	if u != nil {
		return u, nil
	}
	u, err := url.Parse(p.URL(endpoint, remoteModel))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("unsupported URL %q", u.Redacted())
	}
	p.urlsMu.Lock()
	if p.urls == nil {
		p.urls = make(map[[2]string]*url.URL)
	}
	if len(p.urls) < 4096 { // remote models come from the configuration: few
		p.urls[k] = u
	}
	p.urlsMu.Unlock()
	return u, nil
}

// send POSTs body to u. A client with nothing to do between the call and
// its transport (no timeout, cookie jar or redirect policy) has its
// transport called directly: that skips the copies http.Client makes to
// follow redirects, which an API upstream rarely sends; one that does is
// then asked again through the client, which follows it.
func send(ctx context.Context, client *http.Client, u *url.URL, h http.Header, body []byte) (*http.Response, error) {
	direct := client.Transport != nil && client.Timeout == 0 && client.Jar == nil && client.CheckRedirect == nil
	if direct {
		resp, err := client.Transport.RoundTrip(newRequest(ctx, u, h, body))
		if err != nil || !isRedirect(resp) {
			return resp, err
		}
		resp.Body.Close()
	}
	return client.Do(newRequest(ctx, u, h, body))
}

func newRequest(ctx context.Context, u *url.URL, h http.Header, body []byte) *http.Request {
	r := http.Request{
		Method: http.MethodPost, URL: u, Host: u.Host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: newBodyReader(body), ContentLength: int64(len(body)),
		GetBody: func() (io.ReadCloser, error) { return newBodyReader(body), nil },
	}
	return r.WithContext(ctx)
}

func isRedirect(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return resp.Header.Get("Location") != ""
	}
	return false
}

// newBodyReader returns body as a request body. It must be
// io.NopCloser(*bytes.Reader): net/http's Transport writes the head and
// such a body in one write, where it flushes the head alone before a body
// of any other type, costing a second write and the upstream a second
// wake-up per call.
func newBodyReader(body []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(body)) }

var (
	_ llmproxy.Provider = (*Passthrough)(nil)
	_ llmproxy.Embedder = (*Passthrough)(nil)
)

// ChatCompletion forwards a chat completion.
func (p *Passthrough) ChatCompletion(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	return p.do(ctx, llmproxy.EndpointChat, req)
}

// Embeddings forwards an embeddings request.
func (p *Passthrough) Embeddings(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	return p.do(ctx, llmproxy.EndpointEmbeddings, req)
}

// Header values shared by every upstream request; nothing appends to or
// edits a request's header values in place.
var (
	jsonType        = []string{"application/json"}
	eventStreamType = []string{"text/event-stream"}
)

// passHeaders are upstream response headers worth showing the client.
var passHeaders = []string{"Openai-Processing-Ms", "Openai-Version", "X-Request-Id"}

func (p *Passthrough) do(ctx context.Context, endpoint string, req *llmproxy.Request) (*llmproxy.Response, error) {
	u, err := p.url(endpoint, req.RemoteModel)
	if err != nil {
		return nil, llmproxy.UpstreamError(fmt.Sprintf("connection %q has an invalid endpoint", p.Name), err)
	}
	body := req.UpstreamBody()
	h := make(http.Header, 4)
	h["Content-Type"] = jsonType
	if req.Stream {
		h["Accept"] = eventStreamType
	} else {
		h["Accept"] = jsonType
	}
	if p.SetHeaders != nil {
		p.SetHeaders(h)
	}
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := send(ctx, client, u, h, body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, llmproxy.UpstreamError(fmt.Sprintf("cannot reach the upstream of connection %q", p.Name), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, upstreamStatusError(p.Name, resp)
	}
	out := &llmproxy.Response{StatusCode: resp.StatusCode}
	for _, k := range passHeaders {
		if v := resp.Header[k]; len(v) > 0 {
			if out.Header == nil {
				out.Header = make(http.Header, len(passHeaders))
			}
			out.Header[k] = v
		}
	}
	if req.Stream {
		ct := resp.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, "text/event-stream") {
			resp.Body.Close()
			return nil, llmproxy.UpstreamError(fmt.Sprintf("the upstream of connection %q answered a stream request with %q instead of an event stream", p.Name, ct), nil)
		}
		return out, setStream(out, p.Name, resp.Body)
	}
	defer resp.Body.Close()
	out.Body, err = readBody(resp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, llmproxy.UpstreamError(fmt.Sprintf("reading the answer of connection %q failed", p.Name), err)
	}
	if !jsonscan.Valid(out.Body) {
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the upstream of connection %q answered with malformed JSON", p.Name), nil)
	}
	return out, nil
}

func setStream(out *llmproxy.Response, name string, body io.ReadCloser) error {
	out.Stream = NewEventStream(name, body)
	return nil
}

// readBody reads a whole response body, sized by Content-Length when known.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n < 64<<20 {
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}
