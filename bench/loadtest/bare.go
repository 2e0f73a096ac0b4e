package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// bareProxy is the floor of the gateway's architecture: a net/http server
// that forwards each POST to the upstream through one of the gateway's
// upstream clients and relays the answer, with none of the gateway's
// work (no auth, limits, body parsing, ledger, logs or metrics). The
// harness runs it beside the gateway so that the cost of any net/http
// proxy on the machine (the extra process hop included) can be told apart
// from the cost of the gateway's own logic.
type bareProxy struct {
	client http.RoundTripper
	base   url.URL // http://upstream, parsed once
}

// Upstream clients the harness compares, by the names its rows show.
const (
	clientNetHTTP  = "net/http"
	clientH1client = "h1client"
)

var upstreamClients = []string{clientNetHTTP, clientH1client}

// maxBareBody bounds the request body the bare proxy will buffer: a
// sanity check on Content-Length, not a product limit.
const maxBareBody = 32 << 20

// newBareProxy returns a bare proxy to upstream (HOST:PORT) through the
// upstream client named client.
func newBareProxy(upstream, client string) (*bareProxy, error) {
	u, err := url.Parse("http://" + upstream)
	if err != nil {
		return nil, err
	}
	if u.Host == "" || u.Path != "" {
		return nil, fmt.Errorf("upstream %q: want HOST:PORT", upstream)
	}
	// The gateway's upstream clients, as serve makes them.
	var rt http.RoundTripper
	switch client {
	case clientNetHTTP:
		rt = llmproxy.NewTransport()
	case clientH1client:
		rt = &llmproxy.HTTP1Transport{}
	default:
		return nil, fmt.Errorf("unknown upstream client %q; known: %s", client, strings.Join(upstreamClients, ", "))
	}
	return &bareProxy{client: rt, base: *u}, nil
}

// copyBufs are the 4 KiB buffers streams are relayed through.
var copyBufs = sync.Pool{New: func() any { return new([4096]byte) }}

func (p *bareProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength < 0 || r.ContentLength > maxBareBody {
		http.Error(w, "a Content-Length up to 32 MiB is required", http.StatusRequestEntityTooLarge)
		return
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	u := p.base
	u.Path, u.RawPath = r.URL.Path, r.URL.RawPath
	h := make(http.Header, 3)
	for _, k := range [...]string{"Content-Type", "Accept", "Authorization"} {
		if v := r.Header[k]; len(v) > 0 {
			h[k] = v
		}
	}
	out := &http.Request{
		Method:     http.MethodPost,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		// io.NopCloser(*bytes.Reader), which net/http writes in one write
		// with the head (as the gateway's provider does).
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          u.Host,
	}
	resp, err := p.client.RoundTrip(out.WithContext(r.Context()))
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	wh := w.Header()
	ct := resp.Header["Content-Type"]
	if len(ct) > 0 {
		wh["Content-Type"] = ct
	}
	if len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream") {
		w.WriteHeader(resp.StatusCode)
		f, _ := w.(http.Flusher)
		buf := copyBufs.Get().(*[4096]byte)
		defer copyBufs.Put(buf)
		for {
			n, err := resp.Body.Read(buf[:])
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if f != nil {
					f.Flush()
				}
			}
			if err != nil {
				return
			}
		}
	}
	var ans []byte
	if resp.ContentLength >= 0 && resp.ContentLength <= maxBareBody {
		ans = make([]byte, resp.ContentLength)
		_, err = io.ReadFull(resp.Body, ans)
	} else {
		ans, err = io.ReadAll(resp.Body)
	}
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	wh["Content-Length"] = []string{strconv.Itoa(len(ans))}
	w.WriteHeader(resp.StatusCode)
	w.Write(ans)
}

// runBareProxy is the "bareproxy" subcommand: the bare proxy as its own
// process, with the settings of llm-proxy serve's server. It prints its
// address on the first line of stdout.
func runBareProxy(args []string) error {
	fs := flag.NewFlagSet("bareproxy", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	upstream := fs.String("upstream", "", "the upstream's HOST:PORT (loopback, plain HTTP)")
	client := fs.String("client", clientNetHTTP, "upstream client: "+strings.Join(upstreamClients, ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return errors.New("-upstream is required")
	}
	if err := loopbackOnly(*addr); err != nil {
		return err
	}
	if err := loopbackOnly(*upstream); err != nil {
		return err
	}
	p, err := newBareProxy(*upstream, *client)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Println(ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
