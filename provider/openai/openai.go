// Package openai is the provider for OpenAI, Gemini's OpenAI-compatible
// endpoint, and any other OpenAI-compatible server. Requests are passed
// through faithfully: the client's body is forwarded with only "model"
// rewritten (and chat stream usage requested), and streams are relayed
// event by event as they arrive. That holds for chat completions,
// embeddings and, where the upstream serves it (SettingResponses), the
// Responses API: POST /responses and GET or DELETE /responses/{id}.
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

// Settings: the keys of Connection.Settings an OpenAI, Google or
// compatible connection reads.
//
//   - "responses" (SettingResponses): whether the upstream serves the
//     Responses API itself. "native": Responses requests are forwarded to
//     {endpoint}/responses (NativeResponses is true); "translate": the
//     gateway serves them through chat completions; "auto" or unset:
//     native for openai connections, translate for compatible ones (few
//     OpenAI-compatible servers have the Responses API) and google ones
//     (Gemini's OpenAI-compatible endpoint has none, so "native" is
//     refused there).
const SettingResponses = "responses"

// Values of SettingResponses.
const (
	ResponsesAuto      = "auto"
	ResponsesNative    = "native"
	ResponsesTranslate = "translate"
)

// NativeResponsesSetting reads conn's SettingResponses: whether its
// Responses requests go to the upstream as they are, with def for "auto"
// or unset. A value other than auto, native or translate is an error
// naming the setting, wrapping llmproxy.ErrInvalid.
func NativeResponsesSetting(conn llmproxy.Connection, def bool) (bool, error) {
	switch v := conn.Settings[SettingResponses]; v {
	case "", ResponsesAuto:
		return def, nil
	case ResponsesNative:
		return true, nil
	case ResponsesTranslate:
		return false, nil
	default:
		return false, fmt.Errorf("%w: connection %q: %s must be auto, native or translate, got %q",
			llmproxy.ErrInvalid, conn.Name, SettingResponses, v)
	}
}

// New builds the provider of an OpenAI, Google or compatible connection.
// Requests go to Endpoint + "/chat/completions" (or "/embeddings",
// "/responses") with "Authorization: Bearer <api key>" when the
// connection has a key. A bad setting is an error wrapping
// llmproxy.ErrInvalid.
func New(conn llmproxy.Connection, opts llmproxy.ProviderOptions) (llmproxy.Provider, error) {
	native, err := NativeResponsesSetting(conn, conn.Provider == llmproxy.KindOpenAI)
	if err != nil {
		return nil, err
	}
	if native && conn.Provider == llmproxy.KindGoogle {
		return nil, fmt.Errorf("%w: google connection %q: %s=%s: Gemini's OpenAI-compatible endpoint has no Responses API",
			llmproxy.ErrInvalid, conn.Name, SettingResponses, ResponsesNative)
	}
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
	chatURL, embeddingsURL, responsesURL := base+"/chat/completions", base+"/embeddings", base+"/responses"
	var auth []string
	if conn.Credentials.APIKey != "" {
		auth = []string{"Bearer " + conn.Credentials.APIKey}
	}
	return &Passthrough{
		Name:            conn.Name,
		Client:          opts.HTTPClient,
		ServesResponses: native,
		URL: func(endpoint, _ string) string {
			switch endpoint {
			case llmproxy.EndpointEmbeddings:
				return embeddingsURL
			case llmproxy.EndpointResponses:
				return responsesURL
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
	// URL returns the upstream URL for an endpoint (llmproxy.EndpointChat,
	// llmproxy.EndpointEmbeddings or llmproxy.EndpointResponses) and
	// remote model. A response's resources are under the Responses URL
	// (with the remote model ""): {URL}/{id}, {URL}/{id}/input_items,
	// with the URL's query, if any, before the client's.
	URL func(endpoint, remoteModel string) string
	// SetHeaders adds authentication (and any other fixed headers) to an
	// upstream request.
	SetHeaders func(h http.Header)
	// ServesResponses reports that the upstream serves the Responses API
	// (NativeResponses returns it).
	ServesResponses bool

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
func send(ctx context.Context, client *http.Client, method string, u *url.URL, h http.Header, body []byte) (*http.Response, error) {
	direct := client.Transport != nil && client.Timeout == 0 && client.Jar == nil && client.CheckRedirect == nil
	if direct {
		resp, err := client.Transport.RoundTrip(newRequest(ctx, method, u, h, body))
		if err != nil || !isRedirect(resp) {
			return resp, err
		}
		resp.Body.Close()
	}
	return client.Do(newRequest(ctx, method, u, h, body))
}

// newRequest builds a request; a nil body (GET, DELETE) is none.
func newRequest(ctx context.Context, method string, u *url.URL, h http.Header, body []byte) *http.Request {
	r := http.Request{
		Method: method, URL: u, Host: u.Host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if body != nil {
		r.Body, r.ContentLength = newBodyReader(body), int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return newBodyReader(body), nil }
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
	return p.exchange(ctx, http.MethodPost, endpoint, u, h, body, req.Stream)
}

// exchange sends one upstream request and reads its answer: an error
// status as an *llmproxy.Error (upstreamStatusError), a stream (when
// stream is set) as an EventStream for endpoint's API, any other answer
// as a JSON Body.
func (p *Passthrough) exchange(ctx context.Context, method, endpoint string, u *url.URL, h http.Header, body []byte, stream bool) (*llmproxy.Response, error) {
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := send(ctx, client, method, u, h, body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, llmproxy.UpstreamError(fmt.Sprintf("cannot reach the upstream of connection %q", p.Name), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, upstreamStatusError(p.Name, endpoint, resp)
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
	if stream {
		ct := resp.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, "text/event-stream") {
			resp.Body.Close()
			return nil, llmproxy.UpstreamError(fmt.Sprintf("the upstream of connection %q answered a stream request with %q instead of an event stream", p.Name, ct), nil)
		}
		if endpoint == llmproxy.EndpointResponses {
			out.Stream = NewResponsesEventStream(p.Name, resp.Body)
		} else {
			out.Stream = NewEventStream(p.Name, resp.Body)
		}
		return out, nil
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

// readBody reads a whole response body, sized by Content-Length when known.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n < 64<<20 {
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}
