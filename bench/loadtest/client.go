package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// conn is a minimal HTTP/1.1 client connection: it writes a prepared
// request and reads the answer (Content-Length or chunked). It is much
// cheaper than net/http's client, so on a 2-core machine the load
// generator takes as little CPU as possible from the servers it measures.
type conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{addr: addr, c: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// result is what one request measured.
type result struct {
	status int
	events int       // SSE events seen ("\n\n"-terminated), [DONE] included
	first  time.Time // when the first event was complete (streams)
	body   int       // body bytes
	keep   bool      // the connection may be reused
}

var errProto = errors.New("malformed HTTP answer")

// do sends req (a complete HTTP/1.1 request) and reads the whole answer.
// deadline bounds the exchange.
func (c *conn) do(req []byte, deadline time.Time) (result, error) {
	var res result
	if c.c == nil {
		return res, errors.New("connection closed")
	}
	c.c.SetDeadline(deadline)
	if _, err := c.c.Write(req); err != nil {
		return res, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return res, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return res, errProto
	}
	res.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return res, errProto
	}
	res.keep = line[7] == '1'
	length := int64(-1)
	chunked := false
	for {
		line, err = c.r.ReadSlice('\n')
		if err != nil {
			return res, err
		}
		if len(line) <= 2 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			return res, errProto
		}
		k, v := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case asciiEqualFold(k, "content-length"):
			length, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return res, errProto
			}
		case asciiEqualFold(k, "transfer-encoding"):
			chunked = asciiEqualFold(v, "chunked")
		case asciiEqualFold(k, "connection"):
			if asciiEqualFold(v, "close") {
				res.keep = false
			}
		}
	}
	if !chunked {
		if length < 0 {
			return res, errors.New("answer without a length")
		}
		n, err := c.r.Discard(int(length))
		res.body = n
		return res, err
	}
	// Chunked: count SSE events as they complete.
	var last byte
	for {
		line, err = c.r.ReadSlice('\n')
		if err != nil {
			return res, err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil {
			return res, fmt.Errorf("%w: chunk size %q", errProto, line)
		}
		if size == 0 {
			_, err = c.r.ReadSlice('\n') // final CRLF (no trailers)
			return res, err
		}
		for size > 0 {
			p, err := c.r.Peek(int(min(size, int64(c.r.Size()))))
			if err != nil && len(p) == 0 {
				return res, err
			}
			for _, b := range p {
				if b == '\n' && last == '\n' {
					res.events++
					if res.events == 1 {
						res.first = time.Now()
					}
				}
				last = b
			}
			c.r.Discard(len(p))
			size -= int64(len(p))
			res.body += len(p)
		}
		if _, err := c.r.ReadSlice('\n'); err != nil { // chunk's CRLF
			return res, err
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
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

// buildRequest returns a complete POST request.
func buildRequest(host, path, key string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, host, len(body))
	if key != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", key)
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
