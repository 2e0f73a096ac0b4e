package llmproxy

import (
	"net/http"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/h1client"
)

// NewTransport returns the upstream client the Gateway uses by default:
// net/http's Transport, tuned for relaying API calls: keep-alive with many
// idle connections per upstream host, HTTP/2 where an HTTPS upstream offers
// it, no transparent compression (bodies are relayed, not decoded) and no
// response header timeout (slow first tokens are normal; contexts bound
// calls).
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4096
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = true
	t.ResponseHeaderTimeout = 0
	return t
}

// HTTP1Transport is an upstream client to opt into (it is not the
// default): calls to plain-HTTP upstreams (self-hosted OpenAI-compatible
// servers such as vLLM or Ollama inside a cluster) go through a lean
// HTTP/1.1 client that does each call on the calling goroutine over pooled
// keep-alive connections, with no goroutine per connection; everything
// else (HTTPS, proxied hosts, bodies of unknown length, Expect and Upgrade
// headers) goes through HTTP. On a 2-core machine it gave the gateway
// about 13% more throughput with 50 connections and answers 30–50 µs
// sooner one at a time than NewTransport (bench/loadtest, paired rounds;
// see bench/README.md). The zero value is ready to use.
//
// Its limits, for plain-HTTP calls:
//   - Of HTTP's settings it takes DialContext, Proxy (hosts it sends
//     through a proxy are left to HTTP), MaxIdleConnsPerHost and
//     IdleConnTimeout, read at the first call. It ignores the others:
//     MaxConnsPerHost, MaxIdleConns, DisableKeepAlives,
//     ResponseHeaderTimeout, ExpectContinueTimeout, MaxResponseHeaderBytes
//     (its own limit is 1 MiB), the buffer sizes and DisableCompression (it
//     never asks for compressed answers).
//   - It checks that an idle connection was not closed by the upstream
//     before reusing it on Linux only. Elsewhere a POST sent on a
//     connection the upstream closed while it was idle fails rather than
//     being sent again on a new one.
//   - An answer's trailers are read and dropped: Response.Trailer stays
//     empty.
//   - It calls no net/http/httptrace hooks.
type HTTP1Transport struct {
	// HTTP carries what the plain-HTTP client does not. Nil means
	// NewTransport's. Set it before the first call, not after.
	HTTP *http.Transport

	once  sync.Once
	plain *h1client.Client
}

func (t *HTTP1Transport) init() {
	t.once.Do(func() {
		if t.HTTP == nil {
			t.HTTP = NewTransport()
		}
		t.plain = &h1client.Client{
			DialContext:    t.HTTP.DialContext,
			Proxy:          t.HTTP.Proxy,
			MaxIdlePerHost: t.HTTP.MaxIdleConnsPerHost,
			IdleTimeout:    t.HTTP.IdleConnTimeout,
		}
	})
}

// RoundTrip implements http.RoundTripper.
func (t *HTTP1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	if t.plain.Takes(req) {
		return t.plain.RoundTrip(req)
	}
	return t.HTTP.RoundTrip(req)
}

// CloseIdleConnections closes the idle upstream connections of both
// clients.
func (t *HTTP1Transport) CloseIdleConnections() {
	t.init()
	t.plain.CloseIdleConnections()
	t.HTTP.CloseIdleConnections()
}
