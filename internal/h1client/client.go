// Package h1client is a lean HTTP/1.1 client for plain-HTTP upstreams.
//
// net/http's Transport runs every call through two goroutines per
// connection (a reader and a writer) and hands the request and the answer
// between them and the caller over channels; on a loaded two-core machine
// those handoffs, and the thread wake-ups they cause, cost more than the
// gateway's own work. This client does the whole exchange on the calling
// goroutine: it writes the request with one system call, reads the answer
// from the same connection, and puts the connection back in its pool when
// the body has been read to the end. It keeps no goroutine per connection
// (an idle connection is checked for a close by the server when it is
// taken from the pool), and it allocates little.
//
// It takes only what it can do exactly (see Takes); everything else (TLS,
// proxies, bodies of unknown length, upgrades, 100-continue) is left to
// net/http.
//
// It is an opt-in (llmproxy.HTTP1Transport), not the gateway's default,
// because of what it does not do that net/http's Transport does: it has
// only the settings of Client (no per-host connection limit, no response
// header timeout, a fixed 1 MiB header limit); it checks an idle
// connection for a close by the server before reuse on Linux only; it
// drops an answer's trailers; and it calls no net/http/httptrace hooks.
package h1client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Client is a pool of keep-alive HTTP/1.1 connections and the code to use
// them. Its fields must be set before first use and not changed after.
// It is safe for concurrent use.
type Client struct {
	// DialContext opens connections; nil means a net.Dialer with a 30s
	// timeout and TCP keep-alive.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Proxy says which requests go through a proxy (as
	// http.Transport.Proxy); those are not taken. Nil means none.
	Proxy func(*http.Request) (*url.URL, error)
	// MaxIdlePerHost bounds the idle connections kept per host; zero
	// means 1024.
	MaxIdlePerHost int
	// IdleTimeout closes connections idle for longer; zero means 90s.
	IdleTimeout time.Duration

	mu      sync.Mutex
	hosts   map[string]*host
	sweeper *time.Timer // armed while some connection is idle
	closed  bool
}

// host is the pool of one host:port.
type host struct {
	idle    []*conn // most recently used last
	proxied bool    // Proxy sends this host's requests through a proxy
}

// Takes reports whether RoundTrip can send req exactly as net/http would:
// plain http, a known body length, no proxy, no upgrade or 100-continue.
func (c *Client) Takes(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.User != nil || u.Opaque != "" {
		return false
	}
	if req.ContentLength < 0 || (req.ContentLength == 0 && req.Body != nil && req.Body != http.NoBody) ||
		len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 || req.Method == http.MethodConnect {
		return false
	}
	h := req.Header
	if len(h["Expect"]) > 0 || len(h["Upgrade"]) > 0 || len(h["Connection"]) > 0 || len(h["Transfer-Encoding"]) > 0 {
		return false
	}
	return !c.host(req).proxied
}

// host returns the pool of req's host, creating it on first use.
func (c *Client) host(req *http.Request) *host {
	key := req.URL.Host
	c.mu.Lock()
	h := c.hosts[key]
	c.mu.Unlock()
	if h != nil {
		return h
	}
	h = &host{}
	if c.Proxy != nil {
		// The decision depends on the URL's scheme and host only.
		p, err := c.Proxy(req)
		h.proxied = err != nil || p != nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts == nil {
		c.hosts = make(map[string]*host)
	}
	if old := c.hosts[key]; old != nil {
		return old
	}
	c.hosts[key] = h
	return h
}

// errNotTaken is returned for a request Takes refuses.
var errNotTaken = errors.New("h1client: request not supported (use net/http)")

// RoundTrip sends req and returns its answer, whose Body must be read to
// the end or closed. It implements http.RoundTripper for the requests
// Takes accepts and always closes req.Body.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if !c.Takes(req) {
		closeBody(req)
		return nil, errNotTaken
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	bp := getBuf()
	defer putBuf(bp)
	msg, rest, err := encode((*bp)[:0], req)
	*bp = msg
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if rest == nil {
		closeBody(req)
	}
	addr := req.URL.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "80")
	}
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.get(ctx, req, addr)
		if err != nil {
			if rest != nil {
				rest.Close()
			}
			return nil, err
		}
		resp, err := cn.roundTrip(ctx, req, msg, rest)
		if err == nil {
			return resp, nil
		}
		cn.close()
		var re *retryable
		if !reused || attempt > 0 || !errors.As(err, &re) || rest != nil || ctx.Err() != nil {
			if rest != nil {
				rest.Close()
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w (%v)", context.Cause(ctx), err)
			}
			return nil, err
		}
		// The server closed a kept-alive connection before it read the
		// request: nothing was processed, so send it on a new one.
	}
}

// closeBody closes a request body, as a RoundTripper must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// retryable marks a failure on a reused connection before the server can
// have acted on the request.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// maxInline is the largest body copied into the request's buffer so that
// head and body go out in one write.
const maxInline = 256 << 10

// encode appends req's head (and its body when small) to b. rest is the
// body still to send, nil when it is in b.
func encode(b []byte, req *http.Request) (msg []byte, rest io.ReadCloser, err error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validToken(method) {
		return b, nil, fmt.Errorf("h1client: invalid method %q", method)
	}
	b = append(b, method...)
	b = append(b, ' ')
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b = append(b, path...)
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		if containsCTL(req.URL.RawQuery) {
			// As net/http: the query must not end the request line.
			return b, nil, errors.New("h1client: control character in the URL's query")
		}
		b = append(b, '?')
		b = append(b, req.URL.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	hostHeader := req.Host
	if hostHeader == "" {
		hostHeader = req.URL.Host
	}
	if !validValue(hostHeader) {
		return b, nil, fmt.Errorf("h1client: invalid Host %q", hostHeader)
	}
	b = append(b, hostHeader...)
	b = append(b, "\r\n"...)
	if _, ok := req.Header["User-Agent"]; !ok {
		b = append(b, "User-Agent: Go-http-client/1.1\r\n"...)
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written by the client from the request's fields
		}
		if !validToken(k) {
			return b, nil, fmt.Errorf("h1client: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !validValue(v) {
				return b, nil, fmt.Errorf("h1client: invalid header field value for %q", k)
			}
			if k == "User-Agent" && v == "" {
				continue
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, strings.Trim(v, " \t")...)
			b = append(b, "\r\n"...)
		}
	}
	n := req.ContentLength
	if n > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, "\r\n"...)
	}
	if req.Close {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if n == 0 {
		return b, nil, nil
	}
	if req.Body == nil {
		// As net/http: a length with nothing to send is the caller's bug.
		return b, nil, fmt.Errorf("h1client: ContentLength=%d with nil Body", n)
	}
	if n > maxInline {
		return b, req.Body, nil
	}
	head := len(b)
	b = append(b, make([]byte, n)...)
	if _, err := io.ReadFull(req.Body, b[head:]); err != nil {
		return b, nil, fmt.Errorf("h1client: reading the request body: %w", err)
	}
	return b, nil, nil
}

// validToken reports whether s is an HTTP token (a method or field name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

// containsCTL reports whether s has an ASCII control character.
func containsCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// validValue reports whether s may be sent as a field value: no control
// characters other than tab (so no header can be smuggled in).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// conn is one pooled connection. Its reader comes from a pool while the
// connection is in use and goes back to it while the connection is idle,
// so idle connections hold no buffer.
type conn struct {
	c         *Client
	key       string
	nc        net.Conn
	raw       syscall.RawConn // for the liveness check; nil if unavailable
	br        *bufio.Reader
	idleSince time.Time
	abort     func() // setPastDeadline, made once
	// for the liveness check (alive)
	peek    func(fd uintptr) bool
	peekOK  bool
	peekBuf [1]byte
}

// get returns an idle connection to addr, or a new one.
func (c *Client) get(ctx context.Context, req *http.Request, addr string) (cn *conn, reused bool, err error) {
	key := req.URL.Host
	now := time.Now()
	idleTimeout := c.idleTimeout()
	for {
		c.mu.Lock()
		h := c.hosts[key]
		if h == nil || len(h.idle) == 0 {
			c.mu.Unlock()
			break
		}
		cn = h.idle[len(h.idle)-1]
		h.idle[len(h.idle)-1] = nil
		h.idle = h.idle[:len(h.idle)-1]
		c.mu.Unlock()
		if now.Sub(cn.idleSince) < idleTimeout && cn.alive() {
			cn.br = readerPool.Get().(*bufio.Reader)
			cn.br.Reset(cn.nc)
			return cn, true, nil
		}
		cn.nc.Close()
	}
	dial := c.DialContext
	if dial == nil {
		dial = defaultDialer.DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	cn = &conn{c: c, key: key, nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		cn.raw, _ = sc.SyscallConn()
	}
	cn.br = readerPool.Get().(*bufio.Reader)
	cn.br.Reset(nc)
	return cn, false, nil
}

var defaultDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

func (c *Client) idleTimeout() time.Duration {
	if c.IdleTimeout > 0 {
		return c.IdleTimeout
	}
	return 90 * time.Second
}

// put returns a connection whose answer was read to the end to the pool.
func (cn *conn) put() {
	cn.releaseReader()
	c := cn.c
	limit := c.MaxIdlePerHost
	if limit <= 0 {
		limit = 1024
	}
	cn.idleSince = time.Now()
	c.mu.Lock()
	h := c.hosts[cn.key]
	if c.closed || h == nil || len(h.idle) >= limit {
		c.mu.Unlock()
		cn.nc.Close()
		return
	}
	h.idle = append(h.idle, cn)
	if c.sweeper == nil {
		c.sweeper = time.AfterFunc(c.idleTimeout(), c.sweep)
	}
	c.mu.Unlock()
}

// releaseReader gives the connection's reader back to the pool.
func (cn *conn) releaseReader() {
	if cn.br != nil {
		cn.br.Reset(nil)
		readerPool.Put(cn.br)
		cn.br = nil
	}
}

// close closes a connection that is not in the pool.
func (cn *conn) close() {
	cn.releaseReader()
	cn.nc.Close()
}

// sweep closes the connections idle for longer than the idle timeout,
// and runs again while some remain idle.
func (c *Client) sweep() {
	timeout := c.idleTimeout()
	cutoff := time.Now().Add(-timeout)
	var stale []*conn
	c.mu.Lock()
	idleLeft := false
	for _, h := range c.hosts {
		keep := h.idle[:0]
		for _, cn := range h.idle {
			if cn.idleSince.Before(cutoff) {
				stale = append(stale, cn)
			} else {
				keep = append(keep, cn)
			}
		}
		clear(h.idle[len(keep):])
		h.idle = keep
		idleLeft = idleLeft || len(keep) > 0
	}
	if idleLeft && !c.closed {
		c.sweeper = time.AfterFunc(timeout/2, c.sweep)
	} else {
		c.sweeper = nil
	}
	c.mu.Unlock()
	for _, cn := range stale {
		cn.nc.Close()
	}
}

// CloseIdleConnections closes the pooled connections; connections in use
// are closed when their answers are done.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	var idle []*conn
	for _, h := range c.hosts {
		idle = append(idle, h.idle...)
		clear(h.idle)
		h.idle = h.idle[:0]
	}
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
	}
}

// aLongTimeAgo is a deadline in the past: setting it makes a blocked read
// or write on the connection return at once.
var aLongTimeAgo = time.Unix(1, 0)

func (cn *conn) setPastDeadline() { cn.nc.SetDeadline(aLongTimeAgo) }

// roundTrip writes msg (and rest) on the connection and reads the answer's
// head. On error the caller closes the connection.
func (cn *conn) roundTrip(ctx context.Context, req *http.Request, msg []byte, rest io.ReadCloser) (*http.Response, error) {
	// A cancelled context unblocks the connection; the connection is then
	// not reused.
	if cn.abort == nil {
		cn.abort = cn.setPastDeadline // one closure per connection, not per call
	}
	stop := context.AfterFunc(ctx, cn.abort)
	if _, err := cn.nc.Write(msg); err != nil {
		stop()
		return nil, &retryable{err}
	}
	if rest != nil {
		_, err := io.CopyN(cn.nc, rest, req.ContentLength)
		rest.Close()
		if err != nil {
			stop()
			return nil, err
		}
	}
	resp, err := cn.readResponse(req)
	if err != nil {
		stop()
		return nil, err
	}
	b := resp.Body.(*body)
	b.stop = stop
	b.ctx = ctx
	if b.done {
		// No body: the connection is free already.
		b.finish(nil)
	}
	return resp, nil
}

// errHeaderTooLarge limits what an upstream can make the client buffer.
var errHeaderTooLarge = errors.New("h1client: response header too large")

const maxHeaderBytes = 1 << 20

// readResponse reads the status line and header of the answer to req,
// skipping 1xx informational answers, and sets up its body.
func (cn *conn) readResponse(req *http.Request) (*http.Response, error) {
	total := 0
	var scratch []byte
	line := func() ([]byte, error) {
		l, err := cn.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			scratch = append(scratch[:0], l...)
			for err == bufio.ErrBufferFull {
				if len(scratch) > maxHeaderBytes {
					return nil, errHeaderTooLarge
				}
				l, err = cn.br.ReadSlice('\n')
				scratch = append(scratch, l...)
			}
			l = scratch
		}
		total += len(l)
		if total > maxHeaderBytes {
			return nil, errHeaderTooLarge
		}
		if err != nil {
			return nil, err
		}
		return bytes.TrimRight(l, "\r\n"), nil
	}
	for first := true; ; first = false {
		l, err := line()
		if err != nil {
			if first && total == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) && idempotent(req) {
				return nil, &retryable{err}
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("h1client: reading the response: %w", err)
		}
		resp, err := parseStatus(l)
		if err != nil {
			return nil, err
		}
		hdr, err := cn.readHeader(line)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return nil, errors.New("h1client: unexpected 101 Switching Protocols")
			}
			continue // 100 Continue, 103 Early Hints: the answer follows
		}
		resp.Header = hdr
		resp.Request = req
		if err := cn.setBody(resp, req); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// idempotent reports whether req may be sent again when a kept-alive
// connection turns out closed after it was written (net/http's rule).
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// parseStatus parses "HTTP/1.1 200 OK".
func parseStatus(l []byte) (*http.Response, error) {
	bad := func() (*http.Response, error) {
		return nil, fmt.Errorf("h1client: malformed status line %q", truncate(l))
	}
	if len(l) < 12 || !bytes.HasPrefix(l, []byte("HTTP/1.")) || (l[7] != '0' && l[7] != '1') || l[8] != ' ' {
		return bad()
	}
	code := 0
	for _, c := range l[9:12] {
		if c < '0' || c > '9' {
			return bad()
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || (len(l) > 12 && l[12] != ' ') {
		return bad()
	}
	// The answer and its body are allocated together.
	ab := &answer{resp: http.Response{StatusCode: code, ProtoMajor: 1, ProtoMinor: int(l[7] - '0')}}
	resp := &ab.resp
	resp.Body = &ab.body
	if resp.ProtoMinor == 1 {
		resp.Proto = "HTTP/1.1"
	} else {
		resp.Proto = "HTTP/1.0"
	}
	if code == 200 && string(l[9:]) == "200 OK" {
		resp.Status = "200 OK"
	} else {
		resp.Status = string(l[9:])
	}
	return resp, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// readHeader reads header lines up to the empty line. Values share one
// string and one slice, so a header costs a few allocations in all.
func (cn *conn) readHeader(line func() ([]byte, error)) (http.Header, error) {
	type field struct {
		key        string
		start, end int // in vals
	}
	var fieldsArr [24]field
	fields := fieldsArr[:0]
	var valsArr [1024]byte
	vals := valsArr[:0]
	for {
		l, err := line()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("h1client: reading the response header: %w", err)
		}
		if len(l) == 0 {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			// An obsolete folded line continues the previous value.
			if len(fields) == 0 {
				return nil, fmt.Errorf("h1client: malformed header line %q", truncate(l))
			}
			vals = append(vals, ' ')
			vals = append(vals, bytes.TrimSpace(l)...)
			fields[len(fields)-1].end = len(vals)
			continue
		}
		i := bytes.IndexByte(l, ':')
		if i <= 0 || !validToken(string(l[:i])) {
			return nil, fmt.Errorf("h1client: malformed header line %q", truncate(l))
		}
		start := len(vals)
		vals = append(vals, bytes.TrimSpace(l[i+1:])...)
		fields = append(fields, field{key: canonicalKey(l[:i]), start: start, end: len(vals)})
	}
	h := make(http.Header, len(fields))
	all := string(vals)
	values := make([]string, len(fields))
	for i, f := range fields {
		values[i] = all[f.start:f.end]
		if prev, ok := h[f.key]; ok {
			h[f.key] = append(prev, values[i])
			continue
		}
		h[f.key] = values[i : i+1 : i+1]
	}
	return h, nil
}

// commonKeys are header names interned so that reading them allocates
// nothing.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "Date", "Server",
		"Cache-Control", "Keep-Alive", "Vary", "Content-Encoding", "X-Request-Id", "Openai-Processing-Ms",
		"Openai-Version", "Openai-Organization", "Openai-Model", "X-Ratelimit-Limit-Requests",
		"X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Remaining-Tokens",
		"X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens", "Retry-After", "Access-Control-Allow-Origin",
		"Strict-Transport-Security", "Alt-Svc", "Set-Cookie", "Cf-Ray", "Cf-Cache-Status", "Apim-Request-Id",
		"Azureml-Model-Session", "X-Ms-Region", "X-Content-Type-Options", "X-Amzn-Requestid", "X-Amzn-Bedrock-Invocation-Latency",
		"X-Amzn-Bedrock-Input-Token-Count", "X-Amzn-Bedrock-Output-Token-Count", "X-Accel-Buffering", "Trailer",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey is textproto.CanonicalMIMEHeaderKey on bytes, allocating
// only for names outside commonKeys.
func canonicalKey(b []byte) string {
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

// answer is a response and its body in one allocation.
type answer struct {
	resp http.Response
	body body
}

// setBody frames the answer's body from its header (RFC 9112 §6.3).
func (cn *conn) setBody(resp *http.Response, req *http.Request) error {
	h := resp.Header
	b := resp.Body.(*body)
	b.cn, b.keepAlive = cn, keepAlive(resp, req)
	b.live.Store(cn)
	resp.Close = !b.keepAlive
	if req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		b.done = true
		resp.ContentLength = 0
		if cl := h["Content-Length"]; req.Method == http.MethodHead && len(cl) == 1 {
			resp.ContentLength, _ = strconv.ParseInt(cl[0], 10, 64)
		}
		return nil
	}
	if te := h["Transfer-Encoding"]; len(te) > 0 {
		if len(te) != 1 || !asciiEqualFold(te[0], "chunked") {
			return fmt.Errorf("h1client: unsupported Transfer-Encoding %q", te)
		}
		delete(h, "Content-Length") // chunked wins (RFC 9112 §6.3)
		if resp.ProtoMinor == 0 {
			// Faulty framing from an HTTP/1.0 server: read it, but do
			// not trust the connection after (RFC 9112 §6.1).
			b.keepAlive, resp.Close = false, true
		}
		resp.TransferEncoding = []string{"chunked"}
		resp.ContentLength = -1
		b.chunked = httputil.NewChunkedReader(cn.br)
		b.remaining = -1
		return nil
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		for _, v := range cl[1:] {
			if v != cl[0] {
				return fmt.Errorf("h1client: conflicting Content-Length values %q", cl)
			}
		}
		// Digits only, as net/http (ParseInt would take a sign).
		u, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return fmt.Errorf("h1client: invalid Content-Length %q", cl[0])
		}
		n := int64(u)
		resp.ContentLength, b.remaining = n, n
		if n == 0 {
			b.done = true
		}
		return nil
	}
	// Delimited by the connection's close.
	resp.ContentLength, b.remaining = -1, -1
	b.keepAlive = false
	resp.Close = true
	return nil
}

// keepAlive reports whether the connection may carry another request
// after this answer.
func keepAlive(resp *http.Response, req *http.Request) bool {
	if req.Close {
		return false
	}
	conn := resp.Header["Connection"]
	for _, v := range conn {
		if hasToken(v, "close") {
			return false
		}
	}
	if resp.ProtoMinor == 0 {
		for _, v := range conn {
			if hasToken(v, "keep-alive") {
				return true
			}
		}
		return false
	}
	return true
}

func hasToken(v, token string) bool {
	for len(v) > 0 {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if asciiEqualFold(strings.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// body is an answer's body. Read to its end, it puts the connection back
// in the pool; closed early, it closes the connection. After either, it
// holds no reference to the connection, so a late Read cannot see the
// next answer on it.
type body struct {
	mu sync.Mutex // Read and Close may come from different goroutines
	cn *conn
	// live is cn while the body holds the connection, for a Close that
	// must interrupt a blocked Read; closing tells finish not to pool a
	// connection that such a Close may be touching.
	live      atomic.Pointer[conn]
	closing   atomic.Bool
	remaining int64     // bytes left for a Content-Length body; -1 otherwise
	chunked   io.Reader // the chunked decoder, or nil
	keepAlive bool
	done      bool        // the whole body has been read
	stop      func() bool // stops the context watch
	// ctx is the request's, to tell why a Read failed after the watch
	// set a deadline.
	ctx context.Context
	err error // what Read returns once finished
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cn := b.cn
	if cn == nil {
		if b.err == nil {
			return 0, io.EOF
		}
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	switch {
	case b.chunked != nil:
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			err = cn.skipTrailer()
			if err == nil {
				b.done = true
				b.finish(nil)
				return n, io.EOF
			}
		}
	case b.remaining >= 0:
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = cn.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.done = true
			b.finish(nil)
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	default: // until the connection closes
		n, err = cn.br.Read(p)
		if err == io.EOF {
			b.done = true
			b.finish(nil)
			return n, io.EOF
		}
	}
	if err != nil {
		err = b.cause(err)
		b.finish(err)
	}
	return n, err
}

// cause explains a failed Read: when a Close from another goroutine or
// the request's context ended it (by setting a deadline), the caller
// sees that rather than a timeout, as with net/http.
func (b *body) cause(err error) error {
	if b.closing.Load() {
		return errClosed
	}
	if b.ctx != nil && b.ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", context.Cause(b.ctx), err)
	}
	return err
}

// skipTrailer reads the trailer section after the last chunk.
func (cn *conn) skipTrailer() error {
	total := 0
	for {
		l, err := cn.br.ReadSlice('\n')
		total += len(l)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if total > maxHeaderBytes {
			return errHeaderTooLarge
		}
		if len(bytes.TrimRight(l, "\r\n")) == 0 {
			return nil
		}
	}
}

// finish releases the connection: to the pool when the body was read to
// its end on a keep-alive connection whose context was not cancelled,
// closed otherwise. Called with b.mu held or before the body is shared.
func (b *body) finish(err error) {
	cn := b.cn
	if cn == nil {
		return
	}
	b.cn = nil
	b.live.Store(nil)
	b.err = err
	if b.err == nil && !b.done {
		b.err = errClosed
	}
	watching := b.stop == nil || b.stop()
	if b.done && b.keepAlive && watching && !b.closing.Load() && cn.br.Buffered() == 0 {
		cn.put()
		return
	}
	cn.close()
}

var errClosed = errors.New("h1client: read on closed response body")

func (b *body) Close() error {
	if !b.mu.TryLock() {
		// A Read is blocked: make it return.
		b.closing.Store(true)
		if cn := b.live.Load(); cn != nil {
			cn.nc.SetReadDeadline(aLongTimeAgo)
		}
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if b.cn != nil {
		if !b.done {
			b.finish(errClosed)
		} else {
			b.finish(nil)
		}
	}
	return nil
}

// Buffered reports how many bytes of the body have arrived and not been
// read, so a relay can tell whether the next event is already here.
func (b *body) Buffered() int {
	if !b.mu.TryLock() {
		return 0 // a Read is in progress
	}
	defer b.mu.Unlock()
	if b.cn == nil || b.cn.br == nil {
		return 0
	}
	return b.cn.br.Buffered()
}
