// Package anthropic is the provider for Anthropic's Messages API
// (api.anthropic.com, or any server that speaks it).
//
// Messages clients (Claude Code, the Anthropic SDKs) are served natively:
// the client's body is forwarded byte for byte with only "model"
// rewritten, so thinking blocks, their signatures, cache_control marks and
// fields this gateway does not know reach the upstream as the client sent
// them, and streams are relayed event by event as they arrive.
// count_tokens is forwarded too. Chat Completions clients are served
// through internal/translate (Chat → Messages and back, streams included).
//
// Upstream requests carry:
//   - x-api-key: the connection's key (never the client's);
//   - anthropic-version: the client's, else DefaultVersion;
//   - anthropic-beta: the client's, when it sent one;
//   - Content-Type and Accept. No other client header is forwarded (as
//     provider/openai forwards none).
//
// Answers pass on one upstream header: request-id, as X-Request-Id, which
// the Gateway shows the client as X-Upstream-Request-Id. The
// anthropic-ratelimit-* headers are withheld: they describe the
// connection's whole account, which every virtual key on it shares, not
// the client's own limits (the Gateway's, which it reports itself).
package anthropic

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
)

// DefaultEndpoint is where a connection without an endpoint goes.
const DefaultEndpoint = "https://api.anthropic.com"

// DefaultVersion is the anthropic-version sent when the client sent none.
const DefaultVersion = "2023-06-01"

// Settings: the keys of Connection.Settings that an anthropic connection
// reads, and how its other fields are used. Validate checks them.
//
//   - "default_max_tokens" (SettingDefaultMaxTokens): the max_tokens of a
//     Chat Completions request that sets neither max_tokens nor
//     max_completion_tokens (Messages requires one; Chat does not); a
//     positive integer, default DefaultMaxTokens. Messages requests carry
//     their own and are not touched.
//   - Endpoint: the base URL, with or without a trailing /v1; default
//     DefaultEndpoint.
//   - Credentials.APIKey: sent as x-api-key. Required by Validate;
//     New accepts a connection without one (a local server may not
//     check keys).
const SettingDefaultMaxTokens = "default_max_tokens"

// DefaultMaxTokens is the default of SettingDefaultMaxTokens.
const DefaultMaxTokens = 4096

// Validate reports, with a message fit for the user who configures conn,
// what makes conn unusable as an anthropic connection. Errors wrap
// llmproxy.ErrInvalid.
func Validate(conn llmproxy.Connection) error {
	c := conn.Credentials
	switch {
	case c.APIKey == "":
		return invalidf("anthropic connection %q needs an API key (sent as x-api-key)", conn.Name)
	case c.AccessKeyID != "" || c.SecretAccessKey != "" || c.SessionToken != "":
		return invalidf("anthropic connection %q: access keys and session tokens are AWS credentials; Anthropic uses an API key", conn.Name)
	}
	_, err := parseSettings(conn)
	return err
}

// config is what New reads from a Connection.
type config struct {
	base             string // without a trailing "/" or "/v1"
	defaultMaxTokens int64
}

func parseSettings(conn llmproxy.Connection) (config, error) {
	cfg := config{base: conn.Endpoint, defaultMaxTokens: DefaultMaxTokens}
	if cfg.base == "" {
		cfg.base = DefaultEndpoint
	}
	cfg.base = strings.TrimSuffix(strings.TrimRight(cfg.base, "/"), "/v1")
	u, err := url.Parse(cfg.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, invalidf("anthropic connection %q: the endpoint must be an http(s) URL such as %s, got %q", conn.Name, DefaultEndpoint, conn.Endpoint)
	}
	if v, ok := conn.Settings[SettingDefaultMaxTokens]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return cfg, invalidf("anthropic connection %q: %s must be a positive integer, got %q", conn.Name, SettingDefaultMaxTokens, v)
		}
		cfg.defaultMaxTokens = n
	}
	return cfg, nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{llmproxy.ErrInvalid}, args...)...)
}

// Provider serves one anthropic connection. It is safe for concurrent
// use.
type Provider struct {
	name             string
	client           *http.Client
	messagesURL      *url.URL // {base}/v1/messages
	countURL         *url.URL // {base}/v1/messages/count_tokens
	apiKey           []string // the x-api-key value, or nil
	defaultMaxTokens int64
}

var (
	_ llmproxy.Provider     = (*Provider)(nil)
	_ llmproxy.Messenger    = (*Provider)(nil)
	_ llmproxy.TokenCounter = (*Provider)(nil)
)

// New builds the provider of an anthropic connection (see the Settings
// for what it reads). It does no network I/O.
func New(conn llmproxy.Connection, opts llmproxy.ProviderOptions) (llmproxy.Provider, error) {
	cfg, err := parseSettings(conn)
	if err != nil {
		return nil, err
	}
	p := &Provider{name: conn.Name, client: opts.HTTPClient, defaultMaxTokens: cfg.defaultMaxTokens}
	if p.client == nil {
		p.client = http.DefaultClient
	}
	// Parsed once: nothing modifies a request's URL, so every request
	// shares them.
	p.messagesURL, _ = url.Parse(cfg.base + "/v1/messages")
	p.countURL, _ = url.Parse(cfg.base + "/v1/messages/count_tokens")
	if k := conn.Credentials.APIKey; k != "" {
		p.apiKey = []string{k}
	}
	return p, nil
}

// NativeMessages reports that every model of the connection is served
// natively.
func (p *Provider) NativeMessages(string) bool { return true }

// Header values shared by every upstream request; nothing appends to or
// edits a request's header values in place.
var (
	jsonType        = []string{"application/json"}
	eventStreamType = []string{"text/event-stream"}
	defaultVersion  = []string{DefaultVersion}
)

// upstreamHeader is the header of an upstream request for the client's
// header h (see the package documentation).
func (p *Provider) upstreamHeader(h http.Header, stream bool) http.Header {
	out := make(http.Header, 6)
	out["Content-Type"] = jsonType
	if stream {
		out["Accept"] = eventStreamType
	} else {
		out["Accept"] = jsonType
	}
	if p.apiKey != nil {
		out["X-Api-Key"] = p.apiKey
	}
	out["Anthropic-Version"] = defaultVersion
	if v := h.Values("Anthropic-Version"); len(v) > 0 {
		out["Anthropic-Version"] = v
	}
	if v := h.Values("Anthropic-Beta"); len(v) > 0 {
		out["Anthropic-Beta"] = v
	}
	return out
}

// post sends body to u and returns the upstream's answer if it is a
// success; an error answer is returned as the *llmproxy.Error the client
// should see (see statusError), with the body closed.
func (p *Provider) post(ctx context.Context, u *url.URL, endpoint string, h http.Header, body []byte) (*http.Response, error) {
	resp, err := p.client.Do(newRequest(ctx, u, h, body))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, llmproxy.UpstreamError(fmt.Sprintf("cannot reach the upstream of connection %q", p.name), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, statusError(p.name, endpoint, resp)
	}
	return resp, nil
}

// newRequest builds a POST of body whose head and body net/http writes in
// one write: it does so for an io.NopCloser(*bytes.Reader) body (see
// provider/openai's newBodyReader), and flushes the head alone before a
// body of any other type.
func newRequest(ctx context.Context, u *url.URL, h http.Header, body []byte) *http.Request {
	r := http.Request{
		Method: http.MethodPost, URL: u, Host: u.Host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		GetBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
	}
	return r.WithContext(ctx)
}

// answerHeader is what the client sees of an upstream answer's header:
// its request id, as X-Request-Id (see the package documentation).
func answerHeader(h http.Header) http.Header {
	id := h.Values("Request-Id")
	if len(id) == 0 {
		id = h.Values("X-Request-Id") // servers that speak the API with OpenAI's habits
	}
	if len(id) == 0 {
		return nil
	}
	return http.Header{"X-Request-Id": id}
}

// readBody reads a whole answer body, sized by Content-Length when known.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n < 64<<20 {
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}
