package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
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
	client  http.RoundTripper
	base    url.URL // http://upstream, parsed once
	tlsBase url.URL // https://tls-upstream; Host "" without one
}

// h2Prefix routes a request to the bare proxy's HTTPS upstream (HTTP/2,
// many streams per connection), without the prefix: idle-10k holds its
// streams that way, as the gateway does through its "bench-hold" model.
const h2Prefix = "/h2/"

// bareConfig is what a bare proxy forwards to, and how.
type bareConfig struct {
	upstream    string         // HOST:PORT of the plain-HTTP upstream
	tlsUpstream string         // HOST:PORT of the HTTPS upstream, for paths under h2Prefix; "" none
	client      string         // upstream client: clientNetHTTP or clientH1client
	roots       *x509.CertPool // trusted for tlsUpstream; nil: the system's (SSL_CERT_FILE)
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

// newBareProxy returns a bare proxy to cfg's upstreams through the
// upstream client it names.
func newBareProxy(cfg bareConfig) (*bareProxy, error) {
	hostPort := func(scheme, hp string) (url.URL, error) {
		u, err := url.Parse(scheme + "://" + hp)
		if err != nil {
			return url.URL{}, err
		}
		if u.Host == "" || u.Path != "" {
			return url.URL{}, fmt.Errorf("upstream %q: want HOST:PORT", hp)
		}
		return *u, nil
	}
	p := &bareProxy{}
	var err error
	if p.base, err = hostPort("http", cfg.upstream); err != nil {
		return nil, err
	}
	if cfg.tlsUpstream != "" {
		if p.tlsBase, err = hostPort("https", cfg.tlsUpstream); err != nil {
			return nil, err
		}
	}
	// The gateway's upstream clients, as serve makes them. HTTPS goes
	// through net/http's Transport with either (HTTP/2 where offered).
	tr := llmproxy.NewTransport()
	if cfg.roots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.roots}
	}
	switch cfg.client {
	case clientNetHTTP:
		p.client = tr
	case clientH1client:
		p.client = &llmproxy.HTTP1Transport{HTTP: tr}
	default:
		return nil, fmt.Errorf("unknown upstream client %q; known: %s", cfg.client, strings.Join(upstreamClients, ", "))
	}
	return p, nil
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
	if p.tlsBase.Host != "" && strings.HasPrefix(u.Path, h2Prefix) {
		u = p.tlsBase
		u.Path = r.URL.Path[len(h2Prefix)-1:]
	}
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
	tlsUpstream := fs.String("tls-upstream", "", "the upstream's HTTPS HOST:PORT (loopback), for paths under "+h2Prefix+" (the prefix is dropped)")
	caFile := fs.String("tls-ca", "", "PEM certificates to trust for -tls-upstream (default: the system's, SSL_CERT_FILE)")
	client := fs.String("client", clientNetHTTP, "upstream client: "+strings.Join(upstreamClients, ", "))
	debugAddr := fs.String("debug-addr", "", "serve Go's profiler (/debug/pprof/) on this loopback address, as llm-proxy serve's --debug-addr does; printed after -addr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return errors.New("-upstream is required")
	}
	for _, a := range []string{*addr, *upstream, *tlsUpstream, *debugAddr} {
		if a == "" {
			continue
		}
		if err := loopbackOnly(a); err != nil {
			return err
		}
	}
	cfg := bareConfig{upstream: *upstream, tlsUpstream: *tlsUpstream, client: *client}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		cfg.roots = x509.NewCertPool()
		if !cfg.roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-tls-ca %s: no certificate", *caFile)
		}
	}
	p, err := newBareProxy(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	var dbg *http.Server
	if *debugAddr != "" {
		dln, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			return err
		}
		dbg = &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		go dbg.Serve(dln)
		fmt.Println(ln.Addr().String(), dln.Addr().String())
	} else {
		fmt.Println(ln.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
		if dbg != nil {
			dbg.Close()
		}
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// debugMux serves Go's profiler, as llm-proxy serve's debug listener
// does: the harness reads both processes' goroutine counts the same way.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
