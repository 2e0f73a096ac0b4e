package llmproxy

import (
	"net/http"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/h1client"
)

// Transport is the http.RoundTripper the Gateway uses for upstream calls
// by default. Calls to plain-HTTP upstreams (self-hosted OpenAI-compatible
// servers such as vLLM or Ollama inside a cluster) go through a lean
// HTTP/1.1 client that does each call on the calling goroutine over
// pooled keep-alive connections; everything else (HTTPS, with HTTP/2
// where the upstream offers it; proxies; bodies of unknown length) goes
// through HTTP, a net/http Transport.
type Transport struct {
	// HTTP carries what the plain-HTTP client does not. Its DialContext,
	// Proxy, MaxIdleConnsPerHost and IdleConnTimeout also configure the
	// plain-HTTP client; change them before the first call, not after.
	HTTP *http.Transport

	once  sync.Once
	plain *h1client.Client
}

// NewTransport returns the Transport the Gateway uses by default:
// keep-alive with many idle connections per upstream host, HTTP/2 where an
// HTTPS upstream offers it, and no transparent compression (bodies are
// relayed, not decoded).
func NewTransport() *Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4096
	t.MaxIdleConnsPerHost = 1024
	t.IdleConnTimeout = 90 * time.Second
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = true
	t.ResponseHeaderTimeout = 0 // slow first tokens are normal; contexts bound calls
	return &Transport{HTTP: t}
}

func (t *Transport) init() {
	t.once.Do(func() {
		if t.HTTP == nil {
			t.HTTP = NewTransport().HTTP
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
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	if t.plain.Takes(req) {
		return t.plain.RoundTrip(req)
	}
	return t.HTTP.RoundTrip(req)
}

// CloseIdleConnections closes the idle upstream connections of both
// clients.
func (t *Transport) CloseIdleConnections() {
	t.init()
	t.plain.CloseIdleConnections()
	t.HTTP.CloseIdleConnections()
}
