package h1client_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/h1client"
)

// rawServer is a TCP server on 127.0.0.1 whose connections are served by
// hand-written code, for answers net/http would never send.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int32

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// newRawServer starts a server that runs serve on each accepted
// connection (n counts them from 0); the connection is closed when serve
// returns and when the test ends.
func newRawServer(tb testing.TB, serve func(n int, c net.Conn, br *bufio.Reader)) *rawServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.accepted.Add(1)) - 1
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(n, c, bufio.NewReader(c))
			}()
		}
	}()
	tb.Cleanup(s.close)
	return s
}

func (s *rawServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *rawServer) URL() string { return "http://" + s.ln.Addr().String() }

// readRequest reads one request and its whole body.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(req.Body)
	return req, b, err
}

// waitClosed blocks until the peer closes c (or the test's patience runs out).
func waitClosed(c net.Conn, br *bufio.Reader) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, br)
}

// connCount counts the connections an httptest server sees.
type connCount struct {
	opened, closed atomic.Int32
}

// newCountingServer starts an httptest server that counts its connections.
// configure, if any, changes the server before it starts.
func newCountingServer(tb testing.TB, h http.Handler, configure ...func(*http.Server)) (*httptest.Server, *connCount) {
	tb.Helper()
	cc := &connCount{}
	ts := httptest.NewUnstartedServer(h)
	for _, f := range configure {
		f(ts.Config)
	}
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cc.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			cc.closed.Add(1)
		}
	}
	ts.Start()
	tb.Cleanup(ts.Close)
	return ts, cc
}

// eventually polls cond for up to 5s.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newClient(tb testing.TB) *h1client.Client {
	c := &h1client.Client{}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

func newRequest(tb testing.TB, ctx context.Context, method, url string, body []byte) *http.Request {
	tb.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// get does a GET and returns the status code and whole body.
func get(tb testing.TB, c *h1client.Client, url string) (int, string) {
	tb.Helper()
	resp, err := c.RoundTrip(newRequest(tb, context.Background(), "GET", url, nil))
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// trackedBody is a request body that records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func newTrackedBody(s string) *trackedBody { return &trackedBody{Reader: strings.NewReader(s)} }

// skipRequest reads a request's head and body without allocating, for
// servers used to measure the client's allocations.
func skipRequest(br *bufio.Reader) error {
	n := 0
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(l) <= 2 {
			break
		}
		const cl = "content-length:"
		if len(l) > len(cl) && asciiPrefixFold(l, cl) {
			for _, c := range l[len(cl):] {
				if c >= '0' && c <= '9' {
					n = n*10 + int(c-'0')
				}
			}
		}
	}
	_, err := br.Discard(n)
	return err
}

func asciiPrefixFold(b []byte, prefix string) bool {
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// newCannedServer answers every request with resp, allocating nothing per
// request.
func newCannedServer(tb testing.TB, resp []byte) *rawServer {
	return newRawServer(tb, func(_ int, c net.Conn, br *bufio.Reader) {
		for skipRequest(br) == nil {
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}
