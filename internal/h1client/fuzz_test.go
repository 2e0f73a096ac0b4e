package h1client_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/h1client"
)

// FuzzResponse sends arbitrary bytes as the answer (the server closes
// after them). The client must neither panic nor hang, and when it reads
// an answer to its end, net/http's parser must read the same status and
// body from the same bytes.
func FuzzResponse(f *testing.F) {
	for _, seed := range []string{
		okAnswer,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nclose delimited",
		"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-F: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n1;x=y\r\na\r\n0\r\n\r\n",
		"HTTP/1.1 200\nContent-Length: 1\n\nz",
	} {
		f.Add([]byte(seed))
	}
	var mu sync.Mutex
	answers := map[string][]byte{}
	s := newRawServer(f, func(_ int, c net.Conn, br *bufio.Reader) {
		req, _, err := readRequest(br)
		if err != nil {
			return
		}
		mu.Lock()
		data := answers[req.URL.Path]
		mu.Unlock()
		c.Write(data)
	})
	var n int
	f.Fuzz(func(t *testing.T, data []byte) {
		mu.Lock()
		n++
		path := "/" + strconv.Itoa(n)
		answers[path] = data
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(answers, path)
			mu.Unlock()
		}()
		c := &h1client.Client{}
		defer c.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := newRequest(t, ctx, "GET", s.URL()+path, nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("hung: %v", err)
			}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ctx.Err() != nil {
			t.Fatalf("hung reading the body: %v", err)
		}
		if err != nil {
			return
		}
		want, wantBody, ok := netHTTPRead(data, req)
		if !ok {
			return // net/http is stricter here; that is allowed
		}
		if resp.ProtoMinor == 0 && len(resp.TransferEncoding) > 0 {
			return // net/http ignores it; RFC 9112 §6.1 says it is faulty
		}
		if resp.StatusCode != want.StatusCode || !bytes.Equal(body, wantBody) {
			t.Fatalf("h1client read %d %q, net/http %d %q", resp.StatusCode, body, want.StatusCode, wantBody)
		}
	})
}

// netHTTPRead parses data as net/http's Transport would: 1xx answers
// skipped, the body read to its end.
func netHTTPRead(data []byte, req *http.Request) (*http.Response, []byte, bool) {
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, nil, false
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || strings.HasPrefix(resp.Proto, "HTTP/2") {
			return nil, nil, false
		}
		return resp, body, true
	}
}
