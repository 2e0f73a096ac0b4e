// Package bench_test measures the gateway's own cost per proxied request,
// upstream client included, against an upstream that allocates nothing,
// so that allocs/op is the gateway's alone (the root package's
// BenchmarkProxyNonStreaming also counts its httptest upstream's server
// allocations).
//
//	go test -run '^$' -bench . -benchmem ./bench
package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const (
	key     = "sk-bench-0123456789"
	request = `{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in a short sentence, please."}],"temperature":0.2,"max_tokens":64}`
	answer  = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"remote","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, this is a short answer."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`
)

// rawUpstream answers every HTTP/1.1 request on a keep-alive connection
// with a fixed response, reading and writing through buffers made once
// per connection: it allocates nothing per request.
func rawUpstream(tb testing.TB, response []byte) string {
	return rawUpstreamWrites(tb, [][]byte{response})
}

// rawUpstreamWrites is rawUpstream answering each request with writes,
// one Write call each.
func rawUpstreamWrites(tb testing.TB, writes [][]byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRawWrites(c, writes)
		}
	}()
	return ln.Addr().String()
}

// serveRawWrites answers each request on c with writes, one Write call
// each.
func serveRawWrites(c net.Conn, writes [][]byte) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	for {
		if err := readRawRequest(r); err != nil {
			return
		}
		for _, w := range writes {
			if _, err := c.Write(w); err != nil {
				return
			}
		}
	}
}

// readRawRequest reads one request, head and Content-Length body, from r.
func readRawRequest(r *bufio.Reader) error {
	clKey := []byte("content-length:")
	length := 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > len(clKey) && bytes.EqualFold(line[:len(clKey)], clKey) {
			for _, b := range bytes.TrimSpace(line[len(clKey):]) {
				length = length*10 + int(b-'0')
			}
		}
	}
	_, err := r.Discard(length)
	return err
}

func rawResponse(body string) []byte {
	return []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// upstreamClients are the gateway's upstream clients: the default and the
// opt-in, a sub-benchmark each.
var upstreamClients = []struct {
	name string
	new  func() http.RoundTripper
}{
	{"net-http", func() http.RoundTripper { return llmproxy.NewTransport() }},
	{"h1client", func() http.RoundTripper { return &llmproxy.HTTP1Transport{} }},
}

// gateway is a Gateway on the in-memory store (the ledger writes to it)
// with a key whose assignment has limits that never bite, calling its
// upstream through rt.
func gateway(tb testing.TB, upstream string, rt http.RoundTripper) *llmproxy.Gateway {
	ctx := context.Background()
	store := memory.New()
	c := &llmproxy.Connection{Name: "c", Provider: llmproxy.KindCompatible, Endpoint: "http://" + upstream + "/v1", Credentials: llmproxy.Credentials{APIKey: "k"}}
	must(tb, store.CreateConnection(ctx, c))
	must(tb, store.CreateModel(ctx, &llmproxy.Model{Name: "bench", Remote: "remote", ConnectionID: c.ID}))
	must(tb, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(key), Assignments: []llmproxy.Assignment{
		{ConnectionID: c.ID, TPS: 1e9, TokenLimit: 1 << 62, TokenWindow: time.Hour}}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
		HTTPClient: &http.Client{Transport: rt}})
	must(tb, err)
	tb.Cleanup(func() { gw.Close() })
	return gw
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

type discard struct {
	h      http.Header
	status int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) Write(p []byte) (int, error) { return len(p), nil }
func (w *discard) WriteHeader(s int)           { w.status = s }
func (w *discard) Flush()                      {}

// BenchmarkHandler is one proxied request through ServeHTTP and the
// OpenAI provider's upstream call over loopback, with each upstream
// client: allocs/op is the handler's and the upstream client's, not the
// incoming request's parsing.
func BenchmarkHandler(b *testing.B) {
	for _, c := range upstreamClients {
		b.Run(c.name, func(b *testing.B) { benchmarkHandler(b, c.new()) })
	}
}

func benchmarkHandler(b *testing.B, rt http.RoundTripper) {
	gw := gateway(b, rawUpstream(b, rawResponse(answer)), rt)
	body := bytes.NewReader([]byte(request))
	r, _ := http.NewRequest(http.MethodPost, "http://gw/v1/chat/completions", io.NopCloser(body))
	r.ContentLength = int64(len(request))
	r.Header["Content-Type"] = []string{"application/json"}
	auth := []string{"Bearer " + key}
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		body.Reset([]byte(request))
		r.Header["Authorization"] = auth
		clear(w.h)
		w.status = 0
		gw.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatal(w.status)
		}
	}
}

// BenchmarkServer is one proxied request through a real http.Server
// serving the Gateway, from a client that allocates nothing, with each
// upstream client: allocs/op is everything the gateway process allocates
// per request, the server's request parsing included.
//
// Each has a bare sub-benchmark too: the same server and upstream client
// with a handler that only forwards the body and copies the answer back
// (no auth, limits, parsing, ledger or observers), the floor of any proxy
// built so. The difference between the gateway's and bare's ns/op in one
// run is the gateway's own cost per request, without the noise of the
// load harness's separate processes.
func BenchmarkServer(b *testing.B) {
	for _, c := range upstreamClients {
		b.Run(c.name+"/gateway", func(b *testing.B) {
			benchmarkServer(b, gateway(b, rawUpstream(b, rawResponse(answer)), c.new()))
		})
		b.Run(c.name+"/bare", func(b *testing.B) {
			benchmarkServer(b, &bare{upstream: rawUpstream(b, rawResponse(answer)), rt: c.new()})
		})
	}
}

// bare forwards a POST's body to upstream through rt and copies the
// answer's status, Content-Type and body back.
type bare struct {
	upstream string
	rt       http.RoundTripper
}

func (p *bare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u := &url.URL{Scheme: "http", Host: p.upstream, Path: r.URL.Path}
	out := &http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": r.Header["Content-Type"], "Authorization": r.Header["Authorization"]},
		Body:   io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
	resp, err := p.rt.RoundTrip(out.WithContext(r.Context()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	ct := resp.Header["Content-Type"]
	w.Header()["Content-Type"] = ct
	w.WriteHeader(resp.StatusCode)
	if len(ct) == 0 || ct[0] != "text/event-stream" {
		io.Copy(w, resp.Body)
		return
	}
	// A stream: each read leaves at once, as the load harness's bare
	// proxy relays it.
	f := w.(http.Flusher)
	var buf [4096]byte
	for {
		n, err := resp.Body.Read(buf[:])
		if n > 0 {
			w.Write(buf[:n])
			f.Flush()
		}
		if err != nil {
			return
		}
	}
}

// serveAndDial serves h on a loopback listener and returns a connection
// to it and the raw chat request carrying body.
func serveAndDial(b *testing.B, h http.Handler, body string) (net.Conn, []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	must(b, err)
	b.Cleanup(func() { c.Close() })
	return c, []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func benchmarkServer(b *testing.B, h http.Handler) {
	c, req := serveAndDial(b, h, request)
	rd := bufio.NewReaderSize(c, 16<<10)
	clKey := []byte("content-length:")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		length, status := 0, 0
		for {
			line, err := rd.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if status == 0 {
				status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
				continue
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > len(clKey) && bytes.EqualFold(line[:len(clKey)], clKey) {
				for _, ch := range bytes.TrimSpace(line[len(clKey):]) {
					length = length*10 + int(ch-'0')
				}
			}
		}
		if _, err := rd.Discard(length); err != nil {
			b.Fatal(err)
		}
		if status != http.StatusOK {
			b.Fatal(status)
		}
	}
}
