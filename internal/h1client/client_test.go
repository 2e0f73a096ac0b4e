package h1client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/h1client"
)

var _ http.RoundTripper = (*h1client.Client)(nil)

// TestRequestSeenByServer checks what a net/http server reads from the
// requests the client writes.
func TestRequestSeenByServer(t *testing.T) {
	type seen struct {
		method, uri, host string
		header            http.Header
		contentLength     int64
		te                []string
		body              []byte
	}
	got := make(chan seen, 1)
	ts, _ := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server reading the body: %v", err)
		}
		got <- seen{r.Method, r.RequestURI, r.Host, r.Header.Clone(), r.ContentLength, r.TransferEncoding, b}
		w.Write([]byte("ok"))
	}))
	c := newClient(t)
	addr := strings.TrimPrefix(ts.URL, "http://")
	jsonBody := []byte(`{"model":"m","messages":[{"role":"user","content":"héllo \"x\"\n"}]}`)

	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		host   string
		header http.Header
		check  func(t *testing.T, s seen)
	}{{
		name:   "post json",
		method: "POST",
		path:   "/v1/chat/completions?model=a%20b&x=1&x=2",
		body:   jsonBody,
		header: http.Header{
			"Content-Type":  {"application/json"},
			"Authorization": {"Bearer sk-test"},
			"X-Multi":       {"one", "two"},
			"X-Spaces":      {"  padded\t"},
		},
		check: func(t *testing.T, s seen) {
			if s.method != "POST" || s.uri != "/v1/chat/completions?model=a%20b&x=1&x=2" || s.host != addr {
				t.Errorf("method %q uri %q host %q", s.method, s.uri, s.host)
			}
			if !bytes.Equal(s.body, jsonBody) || s.contentLength != int64(len(jsonBody)) {
				t.Errorf("body %q, Content-Length %d; want %q, %d", s.body, s.contentLength, jsonBody, len(jsonBody))
			}
			if len(s.te) != 0 {
				t.Errorf("Transfer-Encoding %q", s.te)
			}
			want := http.Header{
				"Content-Type":  {"application/json"},
				"Authorization": {"Bearer sk-test"},
				"X-Multi":       {"one", "two"},
				"X-Spaces":      {"padded"},
				"User-Agent":    {"Go-http-client/1.1"},
			}
			for k, v := range want {
				if fmt.Sprint(s.header[k]) != fmt.Sprint(v) {
					t.Errorf("header %s = %q, want %q", k, s.header[k], v)
				}
			}
		},
	}, {
		name:   "user agent override",
		method: "GET",
		path:   "/",
		header: http.Header{"User-Agent": {"gateway/1.0"}},
		check: func(t *testing.T, s seen) {
			if ua := s.header["User-Agent"]; len(ua) != 1 || ua[0] != "gateway/1.0" {
				t.Errorf("User-Agent %q", ua)
			}
		},
	}, {
		name:   "empty user agent sends none",
		method: "GET",
		path:   "/",
		header: http.Header{"User-Agent": {""}},
		check: func(t *testing.T, s seen) {
			if ua, ok := s.header["User-Agent"]; ok {
				t.Errorf("User-Agent %q sent", ua)
			}
		},
	}, {
		name:   "host override",
		method: "GET",
		path:   "/h",
		host:   "api.example.com",
		header: http.Header{"Host": {"ignored.example.com"}},
		check: func(t *testing.T, s seen) {
			if s.host != "api.example.com" {
				t.Errorf("Host %q", s.host)
			}
		},
	}, {
		name:   "escaped path",
		method: "GET",
		path:   "/a%20b/c%2Fd",
		check: func(t *testing.T, s seen) {
			if s.uri != "/a%20b/c%2Fd" {
				t.Errorf("uri %q", s.uri)
			}
		},
	}, {
		name:   "put empty body",
		method: "PUT",
		path:   "/x",
		body:   []byte{},
		check: func(t *testing.T, s seen) {
			if s.method != "PUT" || s.contentLength != 0 || len(s.body) != 0 {
				t.Errorf("method %q Content-Length %d body %q", s.method, s.contentLength, s.body)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, context.Background(), tt.method, ts.URL+tt.path, tt.body)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			req.Host = tt.host
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("answer %d %q", resp.StatusCode, b)
			}
			tt.check(t, <-got)
		})
	}
}

// captureServer answers every request with an empty 200 and sends the
// bytes of each request head on the returned channel.
func captureServer(t *testing.T) (*rawServer, chan string) {
	heads := make(chan string, 16)
	s := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
		for {
			var head strings.Builder
			n := 0
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(l)
				if strings.HasPrefix(strings.ToLower(l), "content-length:") {
					n, _ = strconv.Atoi(strings.TrimSpace(l[len("content-length:"):]))
				}
				if l == "\r\n" {
					break
				}
			}
			if _, err := br.Discard(n); err != nil {
				return
			}
			heads <- head.String()
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		}
	})
	return s, heads
}

// TestRequestHeadBytes checks the exact lines of request heads.
func TestRequestHeadBytes(t *testing.T) {
	s, heads := captureServer(t)
	c := newClient(t)
	addr := strings.TrimPrefix(s.URL(), "http://")
	tests := []struct {
		name    string
		req     func() *http.Request
		want    []string // lines that must be in the head, in any order
		notWant []string // substrings that must not be
		first   string   // the request line
	}{{
		name:    "get has no content-length",
		req:     func() *http.Request { return newRequest(t, context.Background(), "GET", s.URL()+"/x?y=1", nil) },
		first:   "GET /x?y=1 HTTP/1.1",
		want:    []string{"Host: " + addr, "User-Agent: Go-http-client/1.1"},
		notWant: []string{"Content-Length", "Transfer-Encoding", "Connection"},
	}, {
		name:  "empty path",
		req:   func() *http.Request { return newRequest(t, context.Background(), "GET", s.URL(), nil) },
		first: "GET / HTTP/1.1",
	}, {
		name: "force query",
		req: func() *http.Request {
			r := newRequest(t, context.Background(), "GET", s.URL()+"/q", nil)
			r.URL.ForceQuery = true
			return r
		},
		first: "GET /q? HTTP/1.1",
	}, {
		name:  "post empty body has content-length 0",
		req:   func() *http.Request { return newRequest(t, context.Background(), "POST", s.URL()+"/p", nil) },
		first: "POST /p HTTP/1.1",
		want:  []string{"Content-Length: 0"},
	}, {
		name: "multi-valued header is two lines",
		req: func() *http.Request {
			r := newRequest(t, context.Background(), "POST", s.URL()+"/p", []byte("abc"))
			r.Header["X-Multi"] = []string{"a", "b"}
			return r
		},
		first: "POST /p HTTP/1.1",
		want:  []string{"X-Multi: a", "X-Multi: b", "Content-Length: 3"},
	}, {
		name: "close",
		req: func() *http.Request {
			r := newRequest(t, context.Background(), "GET", s.URL()+"/c", nil)
			r.Close = true
			return r
		},
		first: "GET /c HTTP/1.1",
		want:  []string{"Connection: close"},
	}, {
		name: "content-length and transfer-encoding headers come from the fields",
		req: func() *http.Request {
			r := newRequest(t, context.Background(), "POST", s.URL()+"/p", []byte("abcd"))
			r.Header["Content-Length"] = []string{"99"}
			r.Header["Trailer"] = []string{"X"}
			return r
		},
		first:   "POST /p HTTP/1.1",
		want:    []string{"Content-Length: 4"},
		notWant: []string{"Content-Length: 99", "Trailer"}, // not bare "99": the Host line's port may hold it
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.RoundTrip(tt.req())
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			head := <-heads
			lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
			if lines[0] != tt.first {
				t.Errorf("request line %q, want %q", lines[0], tt.first)
			}
			for _, w := range tt.want {
				found := false
				for _, l := range lines[1:] {
					found = found || l == w
				}
				if !found {
					t.Errorf("no line %q in\n%s", w, head)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(head, nw) {
					t.Errorf("%q in\n%s", nw, head)
				}
			}
		})
	}
}

// TestLargeBody sends bodies around and far over the size the client
// copies into its write buffer.
func TestLargeBody(t *testing.T) {
	ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	}))
	c := newClient(t)
	for _, size := range []int{256<<10 - 1, 256 << 10, 256<<10 + 1, 3<<20 + 7} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i*7 + i>>9)
		}
		sum := sha256.Sum256(body)
		resp, err := c.RoundTrip(newRequest(t, context.Background(), "POST", ts.URL+"/upload", body))
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %s", size, hex.EncodeToString(sum[:])); string(b) != want {
			t.Errorf("%d bytes: server saw %q, want %q", size, b, want)
		}
	}
	if n := cc.opened.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestRequestBodyErrors: a body shorter than ContentLength fails the
// call (and is closed) rather than sending a short request.
func TestRequestBodyErrors(t *testing.T) {
	ts, _ := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	c := newClient(t)
	for _, n := range []int64{10, 1 << 20} {
		body := newTrackedBody("short")
		req := newRequest(t, context.Background(), "POST", ts.URL, nil)
		req.Body, req.ContentLength = body, n
		if resp, err := c.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Errorf("ContentLength %d with a 5-byte body: no error", n)
		}
		if !body.closed.Load() {
			t.Errorf("ContentLength %d: request body not closed", n)
		}
	}
	// net/http refuses a length without a body; so must this client
	// (rather than panic).
	req := newRequest(t, context.Background(), "POST", ts.URL, nil)
	req.Body, req.ContentLength = nil, 5
	if resp, err := c.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Error("ContentLength 5 with a nil Body: no error")
	}
	if code, _ := get(t, c, ts.URL); code != 200 {
		t.Errorf("status %d after the failures", code)
	}
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// TestResponseFraming feeds hand-written answers to the client, then
// checks whether the connection is used again for a second request.
func TestResponseFraming(t *testing.T) {
	bigValue := strings.Repeat("v", 512<<10)
	tests := []struct {
		name       string
		method     string
		resp       string
		closeAfter bool // the server closes after resp
		status     int
		statusText string
		body       string
		cl         int64
		header     http.Header // expected (subset)
		noHeader   []string
		trailer    bool // expect chunked

		err     bool  // RoundTrip fails
		errIs   error // ... with this error
		bodyErr error // reading the body fails with this error
		reuse   bool  // the second request goes on the same connection
		closing bool  // resp.Close: the header says the connection ends
	}{
		{name: "content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
			status: 200, statusText: "200 OK", body: "hello", cl: 5, header: http.Header{"Content-Type": {"text/plain"}}, reuse: true},
		{name: "status text", resp: "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx",
			status: 404, statusText: "404 Not Found", body: "x", cl: 1, reuse: true},
		{name: "no reason phrase", resp: "HTTP/1.1 201\r\nContent-Length: 0\r\n\r\n",
			status: 201, cl: 0, reuse: true},
		{name: "zero length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			status: 200, cl: 0, reuse: true},
		{name: "bare LF", resp: "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
			status: 200, body: "hi", cl: 2, reuse: true},
		{name: "chunked", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			status: 200, body: "hello world", cl: -1, trailer: true, reuse: true},
		{name: "chunked with trailers", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n",
			status: 200, body: "abc", cl: -1, trailer: true, reuse: true},
		{name: "chunked with extensions", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\n0;last\r\n\r\n",
			status: 200, body: "abc", cl: -1, trailer: true, reuse: true},
		{name: "chunked wins over content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
			status: 200, body: "hi", cl: -1, noHeader: []string{"Content-Length"}, trailer: true, reuse: true},
		{name: "close delimited", resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", closeAfter: true,
			status: 200, body: "until the end", cl: -1, closing: true},
		{name: "head", method: "HEAD", resp: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
			status: 200, cl: 1234, reuse: true},
		{name: "head chunked", method: "HEAD", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
			status: 200, cl: 0, reuse: true},
		{name: "204", resp: "HTTP/1.1 204 No Content\r\n\r\n",
			status: 204, cl: 0, reuse: true},
		{name: "304 with length", resp: "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nEtag: \"x\"\r\n\r\n",
			status: 304, cl: 0, header: http.Header{"Etag": {`"x"`}}, reuse: true},
		{name: "100 continue", resp: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
			status: 200, body: "abc", cl: 3, reuse: true},
		{name: "103 early hints", resp: "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Final: 1\r\n\r\nabc",
			status: 200, body: "abc", cl: 3, header: http.Header{"X-Final": {"1"}}, noHeader: []string{"Link"}, reuse: true},
		{name: "folded header", resp: "HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\tc\r\nContent-Length: 0\r\n\r\n",
			status: 200, header: http.Header{"X-Folded": {"a b c"}}, reuse: true},
		{name: "repeated header", resp: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n",
			status: 200, header: http.Header{"Set-Cookie": {"a=1", "b=2"}}, reuse: true},
		{name: "canonical keys", resp: "HTTP/1.1 200 OK\r\nx-request-id: r1\r\nX-CUSTOM-thing: v\r\ncontent-length: 0\r\n\r\n",
			status: 200, header: http.Header{"X-Request-Id": {"r1"}, "X-Custom-Thing": {"v"}}, reuse: true},
		{name: "header value whitespace", resp: "HTTP/1.1 200 OK\r\nX-A:   spaced \t\r\nX-B:\r\nContent-Length: 0\r\n\r\n",
			status: 200, header: http.Header{"X-A": {"spaced"}, "X-B": {""}}, reuse: true},
		{name: "large header value", resp: "HTTP/1.1 200 OK\r\nX-Big: " + bigValue + "\r\nContent-Length: 0\r\n\r\n",
			status: 200, header: http.Header{"X-Big": {bigValue}}, reuse: true},
		{name: "many headers", resp: "HTTP/1.1 200 OK\r\n" + manyHeaders(100) + "Content-Length: 0\r\n\r\n",
			status: 200, header: http.Header{"X-H0": {"v0"}, "X-H99": {"v99"}}, reuse: true},
		{name: "duplicate identical content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
			status: 200, body: "hi", cl: 2, reuse: true},
		{name: "connection close", resp: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
			status: 200, body: "hi", cl: 2, closing: true},
		{name: "connection close token", resp: "HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 2\r\n\r\nhi",
			status: 200, body: "hi", cl: 2, closing: true},
		{name: "http/1.0", resp: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			status: 200, body: "hi", cl: 2, closing: true},
		{name: "http/1.0 keep-alive", resp: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
			status: 200, body: "hi", cl: 2, reuse: true},
		{name: "http/1.0 chunked", resp: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
			status: 200, body: "hi", cl: -1, trailer: true, closing: true},
		{name: "bytes after the body", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\n",
			status: 200, body: "hi", cl: 2},

		{name: "conflicting content-length", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", err: true},
		{name: "content-length not a number", resp: "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", err: true},
		{name: "content-length negative", resp: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: true},
		{name: "content-length with sign", resp: "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi", err: true},
		{name: "content-length list", resp: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi", err: true},
		{name: "content-length empty", resp: "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", err: true},
		{name: "content-length overflow", resp: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", err: true},
		{name: "transfer-encoding gzip", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", err: true},
		{name: "transfer-encoding gzip, chunked", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", err: true},
		{name: "transfer-encoding twice", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: true},
		{name: "header too large", resp: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 1<<20+10) + "\r\n\r\n", err: true},
		{name: "header too large in many lines", resp: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Aaaaaaaaaa: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n", 1<<20/50+10) + "\r\n", err: true},
		{name: "status line garbage", resp: "garbage\r\n\r\n", err: true},
		{name: "status line http/2", resp: "HTTP/2 200 OK\r\n\r\n", err: true},
		{name: "status line http/1.2", resp: "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", err: true},
		{name: "status code letters", resp: "HTTP/1.1 2x0 OK\r\n\r\n", err: true},
		{name: "status code four digits", resp: "HTTP/1.1 2000 OK\r\n\r\n", err: true},
		{name: "status code short", resp: "HTTP/1.1 20\r\n\r\n", err: true},
		{name: "status code under 100", resp: "HTTP/1.1 099 Low\r\n\r\n", err: true},
		{name: "status line no space", resp: "HTTP/1.1200 OK\r\n\r\n", err: true},
		{name: "header line without colon", resp: "HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n", err: true},
		{name: "header name with space", resp: "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", err: true},
		{name: "header empty name", resp: "HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n", err: true},
		{name: "first header line folded", resp: "HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 0\r\n\r\n", err: true},
		{name: "101 switching protocols", resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", err: true},
		{name: "truncated head", resp: "HTTP/1.1 200 OK\r\nContent-Le", closeAfter: true, err: true, errIs: io.ErrUnexpectedEOF},
		{name: "truncated status line", resp: "HTTP/1.1 2", closeAfter: true, err: true, errIs: io.ErrUnexpectedEOF},
		{name: "truncated after 100 continue", resp: "HTTP/1.1 100 Continue\r\n\r\n", closeAfter: true, err: true, errIs: io.ErrUnexpectedEOF},

		{name: "truncated body", resp: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", closeAfter: true,
			status: 200, body: "hello", cl: 10, bodyErr: io.ErrUnexpectedEOF},
		{name: "truncated chunk", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", closeAfter: true,
			status: 200, body: "hel", cl: -1, trailer: true, bodyErr: io.ErrUnexpectedEOF},
		{name: "truncated before last chunk", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", closeAfter: true,
			status: 200, body: "abc", cl: -1, trailer: true, bodyErr: io.ErrUnexpectedEOF},
		{name: "truncated trailer", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n", closeAfter: true,
			status: 200, body: "abc", cl: -1, trailer: true, bodyErr: io.ErrUnexpectedEOF},
		{name: "bad chunk size", resp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
			status: 200, cl: -1, trailer: true, bodyErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
				for i := 0; ; i++ {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					if n == 0 && i == 0 {
						c.Write([]byte(tt.resp))
						if tt.closeAfter {
							return
						}
						continue
					}
					c.Write([]byte(okAnswer))
				}
			})
			c := newClient(t)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			resp, err := c.RoundTrip(newRequest(t, context.Background(), method, s.URL()+"/", nil))
			if tt.err {
				if err == nil {
					resp.Body.Close()
					t.Fatal("no error")
				}
				if tt.errIs != nil && !errors.Is(err, tt.errIs) {
					t.Errorf("error %v, want %v", err, tt.errIs)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				switch {
				case tt.bodyErr == errAny && err == nil:
					t.Errorf("reading the body: no error")
				case tt.bodyErr != nil && tt.bodyErr != errAny && !errors.Is(err, tt.bodyErr):
					t.Errorf("reading the body: %v, want %v", err, tt.bodyErr)
				case tt.bodyErr == nil && err != nil:
					t.Errorf("reading the body: %v", err)
				}
				if tt.bodyErr == nil && string(b) != tt.body {
					t.Errorf("body %q, want %q", b, tt.body)
				}
				if tt.bodyErr != nil && tt.bodyErr != errAny && string(b) != tt.body {
					t.Errorf("body before the error %q, want %q", b, tt.body)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
				}
				if tt.statusText != "" && resp.Status != tt.statusText {
					t.Errorf("Status %q, want %q", resp.Status, tt.statusText)
				}
				if resp.ContentLength != tt.cl {
					t.Errorf("ContentLength %d, want %d", resp.ContentLength, tt.cl)
				}
				if resp.ProtoMajor != 1 {
					t.Errorf("ProtoMajor %d", resp.ProtoMajor)
				}
				if got := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"; got != tt.trailer && tt.method != "HEAD" {
					t.Errorf("TransferEncoding %q", resp.TransferEncoding)
				}
				for k, v := range tt.header {
					if fmt.Sprint(resp.Header[k]) != fmt.Sprint(v) {
						t.Errorf("header %s = %.60q, want %.60q", k, resp.Header[k], v)
					}
				}
				for _, k := range tt.noHeader {
					if v, ok := resp.Header[k]; ok {
						t.Errorf("header %s = %q, want none", k, v)
					}
				}
				if resp.Close != tt.closing {
					t.Errorf("resp.Close = %v, want %v", resp.Close, tt.closing)
				}
				if resp.Request == nil {
					t.Error("no resp.Request")
				}
			}
			// Whatever happened, the client goes on working.
			if code, body := get(t, c, s.URL()+"/next"); code != 200 || body != "ok" {
				t.Fatalf("next answer %d %q", code, body)
			}
			conns := s.accepted.Load()
			if tt.reuse && conns != 1 {
				t.Errorf("%d connections, want the first one reused", conns)
			}
			if !tt.reuse && conns != 2 {
				t.Errorf("%d connections, want a new one after this answer", conns)
			}
		})
	}
}

var errAny = errors.New("any error")

func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-H%d: v%d\r\n", i, i)
	}
	return b.String()
}

// TestReuse checks that a body read to its end gives its connection back,
// however the caller reads it.
func TestReuse(t *testing.T) {
	payload := strings.Repeat("0123456789", 1000)
	ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			f := w.(http.Flusher)
			for i := 0; i < len(payload); i += 1000 {
				io.WriteString(w, payload[i:i+1000])
				f.Flush()
			}
		default:
			w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
			io.WriteString(w, payload)
		}
	}))
	c := newClient(t)
	for i := range 10 {
		if _, body := get(t, c, ts.URL+"/"); body != payload {
			t.Fatalf("request %d: wrong body", i)
		}
	}
	for i := range 10 {
		if _, body := get(t, c, ts.URL+"/chunked"); body != payload {
			t.Fatalf("chunked request %d: wrong body", i)
		}
	}
	// A caller that reads exactly ContentLength bytes never sees EOF, but
	// the body is complete.
	for i := range 10 {
		resp, err := c.RoundTrip(newRequest(t, context.Background(), "POST", ts.URL+"/", []byte("{}")))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if string(buf) != payload {
			t.Fatalf("ReadFull request %d: wrong body", i)
		}
	}
	if n := cc.opened.Load(); n != 1 {
		t.Errorf("%d connections for 30 sequential requests, want 1", n)
	}
}

// TestEarlyClose: a body closed before its end closes its connection,
// which the next request does not use.
func TestEarlyClose(t *testing.T) {
	payload := strings.Repeat("x", 1<<20)
	ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, payload)
	}))
	c := newClient(t)
	for i, read := range []int{0, 1, 64 << 10} {
		resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", ts.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, read)); err != nil {
			t.Fatal(err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n, err := resp.Body.Read(make([]byte, 10)); n != 0 || err == nil {
			t.Errorf("Read after Close: %d, %v", n, err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		eventually(t, "the server to see the close", func() bool { return cc.closed.Load() == int32(i+1) })
	}
	get(t, c, ts.URL)
	if n := cc.opened.Load(); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}
}

// TestConnectionClose: neither an answer saying "Connection: close" nor a
// request with Close set leaves its connection in the pool.
func TestConnectionClose(t *testing.T) {
	ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}))
	c := newClient(t)
	get(t, c, ts.URL+"/close")
	get(t, c, ts.URL+"/close")
	if n := cc.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	req := newRequest(t, context.Background(), "GET", ts.URL, nil)
	req.Close = true
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if !resp.Close {
		t.Error("resp.Close false for a request with Close")
	}
	get(t, c, ts.URL)
	get(t, c, ts.URL)
	if n := cc.opened.Load(); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}
	eventually(t, "the server to see 3 closes", func() bool { return cc.closed.Load() == 3 })
}

// TestStaleIdle: a connection the server closed while it was idle is not
// used (the liveness check sees it), so even a POST, which is never sent
// twice, goes through.
func TestStaleIdle(t *testing.T) {
	t.Run("server idle timeout", func(t *testing.T) {
		ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		}), func(s *http.Server) { s.IdleTimeout = 50 * time.Millisecond })
		c := newClient(t)
		for i := range 3 {
			resp, err := c.RoundTrip(newRequest(t, context.Background(), "POST", ts.URL, []byte("{}")))
			if err != nil {
				t.Fatalf("POST %d: %v", i, err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			eventually(t, "the server to close the idle connection", func() bool { return cc.closed.Load() == int32(i+1) })
			time.Sleep(10 * time.Millisecond) // let the FIN arrive
		}
		if n := cc.opened.Load(); n != 3 {
			t.Errorf("%d connections, want 3", n)
		}
	})
	t.Run("server closes without saying so", func(t *testing.T) {
		closed := make(chan struct{}, 10)
		s := newRawServer(t, func(_ int, c net.Conn, br *bufio.Reader) {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			c.Write([]byte(okAnswer))
			c.Close()
			closed <- struct{}{}
		})
		c := newClient(t)
		for i := range 3 {
			resp, err := c.RoundTrip(newRequest(t, context.Background(), "POST", s.URL(), []byte("{}")))
			if err != nil {
				t.Fatalf("POST %d: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "ok" {
				t.Fatalf("POST %d: body %q", i, b)
			}
			<-closed
			time.Sleep(10 * time.Millisecond) // let the FIN arrive
		}
		if n := s.accepted.Load(); n != 3 {
			t.Errorf("%d connections, want 3", n)
		}
	})
	t.Run("server sends unasked-for bytes", func(t *testing.T) {
		sent := make(chan struct{}, 10)
		s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
			for {
				if _, _, err := readRequest(br); err != nil {
					return
				}
				c.Write([]byte(okAnswer))
				if n == 0 {
					// As a server that times the connection out with a 408.
					c.Write([]byte("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"))
					sent <- struct{}{}
				}
			}
		})
		c := newClient(t)
		resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", s.URL(), nil))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		<-sent
		time.Sleep(10 * time.Millisecond)
		if code, _ := get(t, c, s.URL()); code != 200 {
			t.Errorf("status %d, want the 200 of a new connection", code)
		}
		if n := s.accepted.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
	})
}

// TestClosedBeforeAnswer: a server that reads a request on a kept-alive
// connection and closes it without answering. Only idempotent requests
// are sent again, and only once.
func TestClosedBeforeAnswer(t *testing.T) {
	// The first request overall is answered; every later one is read and
	// dropped, unless answerNew says to answer on new connections.
	newServer := func(t *testing.T, answerNew bool, rst bool) (*rawServer, *atomic.Int32) {
		var seen atomic.Int32
		s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
			for i := 0; ; i++ {
				if _, _, err := readRequest(br); err != nil {
					return
				}
				seen.Add(1)
				if (n == 0 && i == 0) || (answerNew && n > 0) {
					c.Write([]byte(okAnswer))
					continue
				}
				if rst {
					c.(*net.TCPConn).SetLinger(0)
				}
				return
			}
		})
		return s, &seen
	}
	counts := func(t *testing.T, s *rawServer, seen *atomic.Int32, conns, requests int32) {
		t.Helper()
		if n, m := s.accepted.Load(), seen.Load(); n != conns || m != requests {
			t.Errorf("%d connections, %d requests seen; want %d, %d", n, m, conns, requests)
		}
	}
	for _, rst := range []bool{false, true} {
		t.Run(fmt.Sprintf("rst=%v", rst), func(t *testing.T) {
			t.Run("GET retried once", func(t *testing.T) {
				s, seen := newServer(t, true, rst)
				c := newClient(t)
				get(t, c, s.URL())
				if code, body := get(t, c, s.URL()); code != 200 || body != "ok" {
					t.Errorf("answer %d %q", code, body)
				}
				counts(t, s, seen, 2, 3)
			})
			t.Run("GET not retried twice", func(t *testing.T) {
				s, seen := newServer(t, false, rst)
				c := newClient(t)
				get(t, c, s.URL())
				if resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", s.URL(), nil)); err == nil {
					resp.Body.Close()
					t.Fatal("no error")
				}
				counts(t, s, seen, 2, 3)
			})
			t.Run("POST not retried", func(t *testing.T) {
				s, seen := newServer(t, true, rst)
				c := newClient(t)
				get(t, c, s.URL())
				if resp, err := c.RoundTrip(newRequest(t, context.Background(), "POST", s.URL(), []byte("{}"))); err == nil {
					resp.Body.Close()
					t.Fatal("no error")
				}
				counts(t, s, seen, 1, 2)
			})
			t.Run("POST with idempotency key retried", func(t *testing.T) {
				s, seen := newServer(t, true, rst)
				c := newClient(t)
				get(t, c, s.URL())
				req := newRequest(t, context.Background(), "POST", s.URL(), []byte("{}"))
				req.Header.Set("Idempotency-Key", "k1")
				resp, err := c.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				counts(t, s, seen, 2, 3)
			})
			t.Run("new connection not retried", func(t *testing.T) {
				var seen atomic.Int32
				s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
					if _, _, err := readRequest(br); err == nil {
						seen.Add(1)
					}
					if rst {
						c.(*net.TCPConn).SetLinger(0)
					}
				})
				c := newClient(t)
				if resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", s.URL(), nil)); err == nil {
					resp.Body.Close()
					t.Fatal("no error")
				}
				if m := seen.Load(); m != 1 {
					t.Errorf("%d requests seen, want 1", m)
				}
			})
		})
	}
}

// stallServer answers with a header and one chunk, then waits until the
// client goes away.
func stallServer(t *testing.T) (*rawServer, chan struct{}) {
	gone := make(chan struct{}, 10)
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		for {
			req, _, err := readRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/ok" {
				c.Write([]byte(okAnswer))
				continue
			}
			if req.URL.Path == "/stream" {
				c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"))
			}
			waitClosed(c, br)
			gone <- struct{}{}
			return
		}
	})
	return s, gone
}

func TestCancelWaitingForHead(t *testing.T) {
	s, gone := stallServer(t)
	c := newClient(t)
	get(t, c, s.URL()+"/ok") // the stalled request goes on a pooled connection
	for _, method := range []string{"GET", "POST"} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		resp, err := c.RoundTrip(newRequest(t, ctx, method, s.URL()+"/stall", []byte("{}")))
		if err == nil {
			resp.Body.Close()
			t.Fatal("no error")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("returned after %v", d)
		}
		waitGone(t, gone)
	}
	// A deadline works the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.RoundTrip(newRequest(t, ctx, "GET", s.URL()+"/stall", nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	// A cause is kept.
	cause := errors.New("client went away")
	ctx, cancelCause := context.WithCancelCause(context.Background())
	time.AfterFunc(50*time.Millisecond, func() { cancelCause(cause) })
	_, err = c.RoundTrip(newRequest(t, ctx, "GET", s.URL()+"/stall", nil))
	if !errors.Is(err, cause) {
		t.Errorf("error %v does not wrap the cause", err)
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	s, _ := stallServer(t)
	c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := newRequest(t, ctx, "POST", s.URL()+"/ok", nil)
	body := newTrackedBody("{}")
	req.Body, req.ContentLength = body, 2
	if _, err := c.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v", err)
	}
	if !body.closed.Load() {
		t.Error("request body not closed")
	}
	if n := s.accepted.Load(); n != 0 {
		t.Errorf("%d connections", n)
	}
}

// readFirstEvent reads the stalled stream's first chunk.
func readFirstEvent(t *testing.T, r io.Reader) {
	t.Helper()
	buf := make([]byte, 9)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "data: 1\n\n" {
		t.Fatalf("first event %q, %v", buf, err)
	}
}

// blockedRead starts a Read and returns where its result will arrive.
func blockedRead(r io.Reader) chan error {
	done := make(chan error, 1)
	go func() {
		n, err := r.Read(make([]byte, 100))
		if n != 0 && err == nil {
			err = fmt.Errorf("read %d bytes", n)
		}
		done <- err
	}()
	return done
}

// waitGone waits for the stall server to see its connection closed.
func waitGone(t *testing.T, gone <-chan struct{}) {
	t.Helper()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not closed")
	}
}

// wantNewConnection checks that the next request to s takes a second
// connection: the first was not pooled.
func wantNewConnection(t *testing.T, c *h1client.Client, s *rawServer) {
	t.Helper()
	get(t, c, s.URL()+"/ok")
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestCancelDuringBody(t *testing.T) {
	s, gone := stallServer(t)
	c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.RoundTrip(newRequest(t, ctx, "GET", s.URL()+"/stream", nil))
	if err != nil {
		t.Fatal(err)
	}
	readFirstEvent(t, resp.Body)
	done := blockedRead(resp.Body)
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read returned no error")
		}
		// As net/http: a Read failing because of the context says so.
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Read error %v does not wrap context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Read still blocked after cancel")
	}
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("next Read: %v", err)
	}
	resp.Body.Close()
	waitGone(t, gone)
	wantNewConnection(t, c, s)
}

// TestCancelAfterHead: an answer whose context is cancelled once it has
// arrived can still be read from what was buffered, but its connection
// is not used again.
func TestCancelAfterHead(t *testing.T) {
	ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "small body")
	}))
	c := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.RoundTrip(newRequest(t, ctx, "GET", ts.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(10 * time.Millisecond)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	// Closed now, not put in the pool (where only the next request's
	// liveness check would find it unusable).
	eventually(t, "the connection to close", func() bool { return cc.closed.Load() == 1 })
	get(t, c, ts.URL)
	if n := cc.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	// Cancelling after the body was read to its end changes nothing.
	ctx, cancel = context.WithCancel(context.Background())
	resp, err = c.RoundTrip(newRequest(t, ctx, "GET", ts.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	cancel()
	resp.Body.Close()
	get(t, c, ts.URL)
	if n := cc.opened.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	s, gone := stallServer(t)
	c := newClient(t)
	resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", s.URL()+"/stream", nil))
	if err != nil {
		t.Fatal(err)
	}
	readFirstEvent(t, resp.Body)
	done := blockedRead(resp.Body)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := resp.Body.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read returned no error")
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("Read after Close says timeout: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	waitGone(t, gone)
	wantNewConnection(t, c, s)
}

// TestBuffered: the relay's look-ahead sees the bytes that arrived.
func TestBuffered(t *testing.T) {
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		readRequest(br)
		c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n"))
		waitClosed(c, br)
	})
	c := newClient(t)
	resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", s.URL(), nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	bb, ok := resp.Body.(interface{ Buffered() int })
	if !ok {
		t.Fatal("the body has no Buffered method")
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if n := bb.Buffered(); n == 0 {
		t.Error("Buffered 0 with a chunk waiting")
	}
	resp.Body.Close()
	if n := bb.Buffered(); n != 0 {
		t.Errorf("Buffered %d after Close", n)
	}
}

func TestTakes(t *testing.T) {
	proxyURL, _ := url.Parse("http://proxy.example:3128")
	c := &h1client.Client{Proxy: func(r *http.Request) (*url.URL, error) {
		switch r.URL.Hostname() {
		case "proxied.example":
			return proxyURL, nil
		case "proxyerror.example":
			return nil, errors.New("bad proxy config")
		}
		return nil, nil
	}}
	mk := func(method, u string, edit func(r *http.Request)) *http.Request {
		r, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(r)
		}
		return r
	}
	withBody := func(n int64) func(r *http.Request) {
		return func(r *http.Request) { r.Body, r.ContentLength = newTrackedBody("{}"), n }
	}
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"plain get", mk("GET", "http://up.example/v1", nil), true},
		{"plain post", mk("POST", "http://up.example:8080/v1", withBody(2)), true},
		{"NoBody", mk("POST", "http://up.example/v1", func(r *http.Request) { r.Body = http.NoBody }), true},
		{"not proxied", mk("GET", "http://direct.example/", nil), true},
		{"https", mk("GET", "https://up.example/", nil), false},
		{"https with body", mk("POST", "https://up.example/", withBody(2)), false},
		{"proxied", mk("GET", "http://proxied.example/", withBody(2)), false},
		{"proxy error", mk("GET", "http://proxyerror.example/", withBody(2)), false},
		{"unknown length", mk("POST", "http://up.example/", withBody(-1)), false},
		{"body with zero length", mk("POST", "http://up.example/", withBody(0)), false},
		{"expect 100-continue", mk("POST", "http://up.example/", func(r *http.Request) {
			withBody(2)(r)
			r.Header.Set("Expect", "100-continue")
		}), false},
		{"upgrade", mk("GET", "http://up.example/", func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }), false},
		{"connection header", mk("GET", "http://up.example/", func(r *http.Request) { r.Header.Set("Connection", "Upgrade") }), false},
		{"transfer-encoding field", mk("POST", "http://up.example/", func(r *http.Request) {
			withBody(2)(r)
			r.TransferEncoding = []string{"chunked"}
		}), false},
		{"transfer-encoding header", mk("POST", "http://up.example/", func(r *http.Request) {
			withBody(2)(r)
			r.Header.Set("Transfer-Encoding", "chunked")
		}), false},
		{"trailer", mk("POST", "http://up.example/", func(r *http.Request) {
			withBody(2)(r)
			r.Trailer = http.Header{"X-T": nil}
		}), false},
		{"connect", mk("CONNECT", "http://up.example/", nil), false},
		{"user info", mk("GET", "http://user:pw@up.example/", nil), false},
		{"opaque", mk("GET", "http://up.example/", func(r *http.Request) { r.URL.Opaque = "//up.example/x" }), false},
		{"no host", mk("GET", "http://up.example/", func(r *http.Request) { r.URL.Host = "" }), false},
		{"nil url", mk("GET", "http://up.example/", func(r *http.Request) { r.URL = nil }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Takes(tt.req); got != tt.want {
				t.Fatalf("Takes = %v, want %v", got, tt.want)
			}
			if tt.want {
				return
			}
			body, _ := tt.req.Body.(*trackedBody)
			resp, err := c.RoundTrip(tt.req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("RoundTrip: no error")
			}
			if body != nil && !body.closed.Load() {
				t.Error("RoundTrip did not close the request body")
			}
		})
	}
}

// TestRefusedRequests: what would let a caller's data change the shape of
// the request is refused before anything is sent.
func TestRefusedRequests(t *testing.T) {
	s, _ := captureServer(t)
	c := newClient(t)
	tests := []struct {
		name string
		edit func(r *http.Request)
	}{
		{"CRLF in header value", func(r *http.Request) { r.Header.Set("X-A", "a\r\nX-Injected: 1") }},
		{"LF in header value", func(r *http.Request) { r.Header["X-A"] = []string{"a\nX-Injected: 1"} }},
		{"CR in header value", func(r *http.Request) { r.Header["X-A"] = []string{"a\rb"} }},
		{"NUL in header value", func(r *http.Request) { r.Header["X-A"] = []string{"a\x00b"} }},
		{"CRLF in second value", func(r *http.Request) { r.Header["X-A"] = []string{"ok", "a\r\n\r\nGET / HTTP/1.1"} }},
		{"CRLF in user agent", func(r *http.Request) { r.Header["User-Agent"] = []string{"ua\r\nX-Injected: 1"} }},
		{"colon in header name", func(r *http.Request) { r.Header["X-A: b\r\nX-C"] = []string{"d"} }},
		{"space in header name", func(r *http.Request) { r.Header["X A"] = []string{"d"} }},
		{"empty header name", func(r *http.Request) { r.Header[""] = []string{"d"} }},
		{"CRLF in Host", func(r *http.Request) { r.Host = "up.example\r\nX-Injected: 1" }},
		{"CRLF in query", func(r *http.Request) { r.URL.RawQuery = "a=1 HTTP/1.1\r\nX-Injected: 1\r\n\r\n" }},
		{"space in method", func(r *http.Request) { r.Method = "GET / HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET" }},
		{"slash in method", func(r *http.Request) { r.Method = "GE/T" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, context.Background(), "POST", s.URL()+"/x", nil)
			body := newTrackedBody("{}")
			req.Body, req.ContentLength = body, 2
			tt.edit(req)
			resp, err := c.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("no error")
			}
			if !body.closed.Load() {
				t.Error("request body not closed")
			}
		})
	}
	if n := s.accepted.Load(); n != 0 {
		t.Errorf("%d connections for refused requests", n)
	}
	// Tabs and non-ASCII bytes are allowed in values, as in net/http.
	req := newRequest(t, context.Background(), "GET", s.URL(), nil)
	req.Header.Set("X-A", "a\tb é")
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestDial: DialContext is used, and its failure is returned with the
// request body closed.
func TestDial(t *testing.T) {
	ts, _ := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var dials atomic.Int32
	var d net.Dialer
	c := &h1client.Client{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		if strings.HasPrefix(addr, "fail.example") {
			return nil, errors.New("dial refused")
		}
		return d.DialContext(ctx, network, addr)
	}}
	defer c.CloseIdleConnections()
	get(t, c, ts.URL)
	get(t, c, ts.URL)
	if n := dials.Load(); n != 1 {
		t.Errorf("%d dials, want 1", n)
	}
	req := newRequest(t, context.Background(), "POST", "http://fail.example/", nil)
	body := newTrackedBody("{}")
	req.Body, req.ContentLength = body, 2
	if _, err := c.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "dial refused") {
		t.Errorf("error %v", err)
	}
	if !body.closed.Load() {
		t.Error("request body not closed")
	}
	// A port-less host is dialled on port 80.
	var gotAddr string
	c2 := &h1client.Client{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		gotAddr = addr
		return nil, errors.New("no")
	}}
	c2.RoundTrip(newRequest(t, context.Background(), "GET", "http://up.example/", nil))
	if gotAddr != "up.example:80" {
		t.Errorf("dialled %q", gotAddr)
	}
	// A large body that cannot be sent is closed too.
	big := &trackedBody{Reader: bytes.NewReader(make([]byte, 1<<20))}
	req = newRequest(t, context.Background(), "POST", "http://fail.example/", nil)
	req.Body, req.ContentLength = big, 1<<20
	if _, err := c.RoundTrip(req); err == nil {
		t.Error("no error")
	}
	if !big.closed.Load() {
		t.Error("large request body not closed")
	}
}

// TestLateRead: a Read on a finished body returns EOF, never the bytes of
// the next answer on its connection.
func TestLateRead(t *testing.T) {
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		for i := 0; ; i++ {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			switch i % 3 {
			case 0:
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"))
			case 1:
				c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n"))
			case 2:
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nLATER BYTES"))
			}
		}
	})
	c := newClient(t)
	do := func() *http.Response {
		resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", s.URL(), nil))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	r1 := do()
	// Exactly the body, so r1 never returned EOF to the caller.
	if _, err := io.ReadFull(r1.Body, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	r2 := do()
	if b, err := io.ReadAll(r2.Body); err != nil || string(b) != "second" {
		t.Fatalf("second %q, %v", b, err)
	}
	r3 := do() // on the same connection, not read yet
	for _, r := range []*http.Response{r1, r2} {
		buf := make([]byte, 64)
		for range 3 {
			if n, err := r.Body.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("late Read: %d bytes %q, %v", n, buf[:n], err)
			}
		}
		r.Body.Close()
		if n, err := r.Body.Read(buf); n != 0 || err != io.EOF {
			t.Errorf("late Read after Close: %d bytes %q, %v", n, buf[:n], err)
		}
	}
	if b, err := io.ReadAll(r3.Body); err != nil || string(b) != "LATER BYTES" {
		t.Fatalf("third %q, %v", b, err)
	}
	r3.Body.Close()
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestIdleSweep: connections idle past IdleTimeout are closed by the
// client without a request to trigger it, and nothing is left running.
func TestIdleSweep(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		release := make(chan struct{})
		var arrived sync.WaitGroup
		ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/wait" {
				arrived.Done()
				<-release
			}
			io.WriteString(w, "ok")
		}))
		defer ts.Close()
		c := &h1client.Client{IdleTimeout: 100 * time.Millisecond}
		defer c.CloseIdleConnections()
		concurrently(t, c, ts.URL+"/wait", 3, &arrived, release)
		if n := cc.opened.Load(); n != 3 {
			t.Fatalf("%d connections, want 3", n)
		}
		start := time.Now()
		eventually(t, "the sweeper to close the idle connections", func() bool { return cc.closed.Load() == 3 })
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("closed after %v, before the idle timeout", d)
		}
		// The pool works on after a sweep, and a connection in use is not
		// swept.
		for range 3 {
			get(t, c, ts.URL)
			time.Sleep(60 * time.Millisecond)
		}
		if n := cc.opened.Load(); n != 4 {
			t.Errorf("%d connections, want 4", n)
		}
		eventually(t, "the sweeper to close the last connection", func() bool { return cc.closed.Load() == 4 })
		// Pooled connections are closed by CloseIdleConnections too.
		c2 := &h1client.Client{}
		get(t, c2, ts.URL)
		c2.CloseIdleConnections()
		eventually(t, "CloseIdleConnections to close the connection", func() bool { return cc.closed.Load() == 5 })
		get(t, c2, ts.URL)
		c2.CloseIdleConnections()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// concurrently makes n requests at once (the server holds each until all
// arrived, so that n connections are open) and reads their answers.
func concurrently(t *testing.T, c *h1client.Client, u string, n int, arrived *sync.WaitGroup, release chan struct{}) {
	t.Helper()
	arrived.Add(n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.RoundTrip(newRequest(t, context.Background(), "GET", u, nil))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
				errs <- fmt.Errorf("body %q, %v", b, err)
			}
		}()
	}
	arrived.Wait()
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMaxIdlePerHost(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			arrived.Done()
			<-release
		}
		io.WriteString(w, "ok")
	}))
	c := &h1client.Client{MaxIdlePerHost: 2}
	defer c.CloseIdleConnections()
	concurrently(t, c, ts.URL+"/wait", 5, &arrived, release)
	if n := cc.opened.Load(); n != 5 {
		t.Fatalf("%d connections, want 5", n)
	}
	eventually(t, "the 3 connections over the limit to close", func() bool { return cc.closed.Load() == 3 })
	time.Sleep(20 * time.Millisecond)
	if n := cc.closed.Load(); n != 3 {
		t.Errorf("%d connections closed, want 3", n)
	}
	// The two kept are used.
	release = make(chan struct{})
	concurrently(t, c, ts.URL+"/wait", 2, &arrived, release)
	if n := cc.opened.Load(); n != 5 {
		t.Errorf("%d connections, want still 5", n)
	}
}

// TestConcurrency: many goroutines sharing one client get their own
// answers, over a bounded number of connections.
func TestConcurrency(t *testing.T) {
	workers, perWorker := 50, 200
	if testing.Short() {
		perWorker = 20
	}
	ts, cc := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)+len(r.URL.Path)))
		}
		io.WriteString(w, r.URL.Path)
		w.Write(b)
	}))
	c := newClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				path := fmt.Sprintf("/w%d/r%d", g, i)
				body := []byte(strings.Repeat(fmt.Sprintf("<%d.%d>", g, i), 1+(g*i)%50))
				u := ts.URL + path
				if i%3 == 0 {
					u += "?chunked=1"
				}
				resp, err := c.RoundTrip(newRequest(t, context.Background(), "POST", u, body))
				if err != nil {
					errs <- err
					return
				}
				var got []byte
				if i%5 == 0 && resp.ContentLength > 0 {
					got = make([]byte, resp.ContentLength)
					_, err = io.ReadFull(resp.Body, got)
				} else {
					got, err = io.ReadAll(resp.Body)
				}
				resp.Body.Close()
				if want := path + string(body); err != nil || string(got) != want {
					errs <- fmt.Errorf("%s: body %.80q, %v; want %.80q", path, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := cc.opened.Load(); n > int32(workers) {
		t.Errorf("%d connections for %d workers", n, workers)
	}
	t.Logf("%d requests over %d connections", workers*perWorker, cc.opened.Load())
}

// TestCloseAndCancelRaceRead ends bodies by Close from another goroutine
// or by cancelling their context at all points of the read, including
// just as they finish: no connection may go back to the pool with the
// deadline that ends a blocked Read still set, and no Read may see
// another answer's bytes.
func TestCloseAndCancelRaceRead(t *testing.T) {
	payload := strings.Repeat("0123456789abcdef", 256)
	ts, _ := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "ok")
			return
		}
		if r.URL.Query().Get("chunked") != "" {
			f := w.(http.Flusher)
			for i := 0; i < len(payload); i += 512 {
				io.WriteString(w, payload[i:i+512])
				f.Flush()
			}
			return
		}
		io.WriteString(w, payload)
	}))
	c := newClient(t)
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for i := range rounds {
		u := ts.URL + "/stream"
		if i%2 == 0 {
			u += "?chunked=1"
		}
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := c.RoundTrip(newRequest(t, ctx, "GET", u, nil))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(resp.Body)
			done <- b
		}()
		time.Sleep(time.Duration(i%20) * 10 * time.Microsecond)
		if i%3 == 0 {
			cancel()
		} else {
			resp.Body.Close()
		}
		if b := <-done; !strings.HasPrefix(payload, string(b)) {
			t.Fatalf("round %d: read %d bytes that are not the payload's", i, len(b))
		}
		resp.Body.Close()
		cancel()
		if code, body := get(t, c, ts.URL+"/ok"); code != 200 || body != "ok" {
			t.Fatalf("round %d: next answer %d %q", i, code, body)
		}
	}
}
