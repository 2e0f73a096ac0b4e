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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

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

// upstreamStatusError maps an upstream error answer to what the client
// sees. The upstream's message is shown for request errors; an upstream
// authentication failure is the gateway's problem, not the client's, so it
// is a 502.
func upstreamStatusError(name string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env struct {
		Error struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Param   json.RawMessage `json:"param"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	msg := ""
	// Some servers (Gemini) answer a list holding one error envelope.
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(trimmed, &list) == nil && len(list) > 0 {
			trimmed = list[0]
		}
	}
	if json.Unmarshal(trimmed, &env) == nil {
		msg = env.Error.Message
	}
	cause := fmt.Errorf("upstream %q answered %d: %.512s", name, resp.StatusCode, raw)
	e := &llmproxy.Error{Status: resp.StatusCode, Type: llmproxy.TypeUpstream, Code: "upstream_error", Err: cause}
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Status = http.StatusBadGateway
		e.Message = fmt.Sprintf("the upstream of connection %q rejected the gateway's credentials", name)
	case s == http.StatusTooManyRequests:
		e.Type, e.Code = llmproxy.TypeRateLimit, "rate_limit_exceeded"
		e.Message = "the upstream provider is rate limiting requests; retry later"
		if msg != "" {
			e.Message += ": " + msg
		}
		e.RetryAfter = retryAfter(resp.Header)
	case s >= 400 && s < 500 && s != http.StatusNotFound:
		e.Type, e.Code = llmproxy.TypeInvalidRequest, ""
		e.Message = msg
		if e.Message == "" {
			e.Message = fmt.Sprintf("the upstream rejected the request with status %d", s)
		}
		if env.Error.Param != nil {
			json.Unmarshal(env.Error.Param, &e.Param)
		}
	case s == http.StatusNotFound:
		e.Status = http.StatusBadGateway
		e.Message = fmt.Sprintf("the upstream of connection %q answered 404 (unknown remote model or endpoint)", name)
		if msg != "" {
			e.Message += ": " + msg
		}
	case s == http.StatusServiceUnavailable || s == http.StatusGatewayTimeout:
		e.Message = fmt.Sprintf("the upstream of connection %q is unavailable (%d)", name, s)
		e.RetryAfter = retryAfter(resp.Header)
	default:
		e.Status = http.StatusBadGateway
		e.Message = fmt.Sprintf("the upstream of connection %q failed (%d)", name, s)
	}
	return e
}

// retryAfter reads a Retry-After (seconds or HTTP date) or OpenAI's
// retry-after-ms header; it defaults to one second.
func retryAfter(h http.Header) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return time.Second
}

// EventStream relays an upstream's server-sent events. It implements
// llmproxy.EventStream over any OpenAI-style SSE body.
//
// It reads through a small buffer of its own (events are a few hundred
// bytes) and borrows a large pooled one only while a longer line is being
// read, so that an idle stream, blocked waiting for its next event, holds
// about 1 KiB rather than a large read buffer: 10,000 open streams stay
// cheap.
type EventStream struct {
	name     string
	body     io.ReadCloser
	buf      []byte  // buf[r:w] is read and not yet consumed
	r, w     int     // read and write offsets in buf
	small    []byte  // the stream's own buffer; buf is small or *big
	big      *[]byte // borrowed from bigPool while a long line needs it
	err      error   // the body's sticky read error
	data     []byte  // the current event's data, reused
	isError  bool    // the current event is "event: error"
	finished bool    // an event with a finish_reason was seen
	done     bool
	closed   bool
}

const smallBuffer = 1 << 10

var bigPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// NewEventStream reads events from body. name names the connection in
// errors.
func NewEventStream(name string, body io.ReadCloser) *EventStream {
	small := make([]byte, smallBuffer)
	return &EventStream{name: name, body: body, buf: small, small: small}
}

var (
	dataPrefix   = []byte("data:")
	eventPrefix  = []byte("event:")
	doneMarker   = []byte("[DONE]")
	finishMarker = []byte(`"finish_reason":"`)
	errorKey     = []byte(`"error"`)
)

// Next returns the next event's data.
func (s *EventStream) Next() ([]byte, error) {
	if s.done || s.closed {
		return nil, io.EOF
	}
	s.data = s.data[:0]
	s.isError = false
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				return s.event()
			}
			if err == io.EOF && s.finished {
				s.done = true // tolerate servers that omit [DONE] after a finished answer
				return nil, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q broke off", s.name), err)
		}
		switch {
		case len(line) == 0: // end of an event
			if hasData {
				return s.event()
			}
		case bytes.HasPrefix(line, dataPrefix):
			v := line[len(dataPrefix):]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, v...)
			hasData = true
		case bytes.HasPrefix(line, eventPrefix):
			s.isError = string(bytes.TrimSpace(line[len(eventPrefix):])) == "error"
		}
		// comments (":…"), id: and retry: lines are ignored
	}
}

func (s *EventStream) event() ([]byte, error) {
	d := s.data
	if bytes.Equal(d, doneMarker) {
		s.done = true
		return nil, io.EOF
	}
	if s.isError || (bytes.Contains(d, errorKey) && isErrorEvent(d)) {
		s.done = true
		return nil, streamError(s.name, d)
	}
	if !jsonscan.Valid(d) {
		s.done = true
		return nil, llmproxy.UpstreamError(fmt.Sprintf("the stream from connection %q carried malformed JSON", s.name), nil)
	}
	if bytes.Contains(d, finishMarker) {
		s.finished = true
	}
	return d, nil
}

// readLine returns the next line without its line ending, valid until the
// next call. A last line without a line ending is returned at the end of
// the body; then io.EOF. Any other read error is returned as it is.
func (s *EventStream) readLine() ([]byte, error) {
	for empty := 0; ; {
		if i := bytes.IndexByte(s.buf[s.r:s.w], '\n'); i >= 0 {
			line := s.buf[s.r : s.r+i]
			s.r += i + 1
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		if s.err != nil {
			if s.err == io.EOF && s.w > s.r {
				line := s.buf[s.r:s.w]
				s.r = s.w
				return bytes.TrimSuffix(line, []byte("\r")), nil
			}
			return nil, s.err
		}
		n := s.fill()
		if n == 0 && s.err == nil {
			if empty++; empty >= 100 {
				s.err = io.ErrNoProgress
			}
		}
	}
}

// fill reads more of the body into buf, making room first: consumed bytes
// are dropped, a drained borrowed buffer goes back to the pool (so a
// stream waiting for its next event holds only its small one), and a
// full buffer grows.
func (s *EventStream) fill() int {
	switch {
	case s.r == s.w:
		s.r, s.w = 0, 0
		s.release()
	case s.r > 0:
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	if s.big == nil && s.w == 0 && bodyBuffered(s.body) > len(s.buf) {
		// More has arrived than the small buffer holds: take it all in
		// one read (the data is there, so the read does not wait), and
		// the relay can send the events that came together in one write.
		s.big = bigPool.Get().(*[]byte)
		s.buf = *s.big
	}
	if s.w == len(s.buf) {
		var nb []byte
		if s.big == nil && len(s.buf) < 16<<10 {
			s.big = bigPool.Get().(*[]byte)
			nb = *s.big
		} else {
			// Longer than 16 KiB: grow on the heap; the borrowed
			// buffer goes back.
			nb = make([]byte, 2*len(s.buf))
		}
		copy(nb, s.buf[:s.w])
		if s.big != nil && &nb[0] != &(*s.big)[0] {
			bigPool.Put(s.big)
			s.big = nil
		}
		s.buf = nb
	}
	n, err := s.body.Read(s.buf[s.w:])
	s.w += n
	if err != nil {
		s.err = err
	}
	return n
}

// bodyBuffered is how many bytes body holds that it can return without
// waiting, when it can tell (internal/h1client's bodies can).
func bodyBuffered(body io.Reader) int {
	if b, ok := body.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

// release goes back to the small buffer once buf is drained.
func (s *EventStream) release() {
	if s.big != nil {
		bigPool.Put(s.big)
		s.big = nil
	}
	s.buf = s.small
}

// isErrorEvent reports whether d is an error envelope rather than a chunk
// that merely mentions "error" in its text.
func isErrorEvent(d []byte) bool {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(d, &env) == nil && len(env.Error) > 0 && string(env.Error) != "null"
}

func streamError(name string, d []byte) error {
	var env struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(d, &env)
	msg := env.Error.Message
	if msg == "" {
		msg = "the upstream reported an error mid-stream"
	}
	return &llmproxy.Error{Status: http.StatusBadGateway, Type: llmproxy.TypeUpstream, Code: "upstream_error", Message: msg,
		Err: errors.New("mid-stream error from connection " + strconv.Quote(name))}
}

var (
	_ llmproxy.BufferedStream = (*EventStream)(nil)
	_ llmproxy.ReadyStream    = (*EventStream)(nil)
)

// Buffered reports how many bytes of the events still to come have
// arrived: what this stream holds, plus what the body holds if it can
// tell (see llmproxy.BufferedStream).
func (s *EventStream) Buffered() int {
	if s.closed {
		return 0
	}
	return s.w - s.r + bodyBuffered(s.body)
}

// Ready reports whether Next would return without reading from the
// upstream: a whole event (or the stream's end) is already buffered.
func (s *EventStream) Ready() bool {
	if s.done || s.closed || s.err != nil {
		return true
	}
	b := s.buf[s.r:s.w]
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}

// Close releases the upstream connection.
func (s *EventStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.big != nil {
		bigPool.Put(s.big)
		s.big = nil
	}
	s.buf, s.r, s.w = nil, 0, 0
	return s.body.Close()
}
