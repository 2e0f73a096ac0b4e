package llmproxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

// transports are the upstream clients the package offers, each as a
// function that returns one whose TLS configuration trusts roots (nil:
// the system's).
var transports = []struct {
	name string
	new  func(roots *x509.CertPool) http.RoundTripper
}{
	{"NewTransport", func(roots *x509.CertPool) http.RoundTripper {
		t := llmproxy.NewTransport()
		t.TLSClientConfig = &tls.Config{RootCAs: roots}
		return t
	}},
	{"HTTP1Transport", func(roots *x509.CertPool) http.RoundTripper {
		t := llmproxy.NewTransport()
		t.TLSClientConfig = &tls.Config{RootCAs: roots}
		return &llmproxy.HTTP1Transport{HTTP: t}
	}},
}

// Both upstream clients call plain-HTTP upstreams over HTTP/1.1 with
// kept-alive connections, and HTTPS upstreams over HTTP/2 when they offer
// it.
func TestTransportProtocols(t *testing.T) {
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"proto":"`+r.Proto+`"}`)
			})
			plain := httptest.NewUnstartedServer(h)
			plain.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			plain.Start()
			defer plain.Close()
			tlsSrv := httptest.NewUnstartedServer(h)
			tlsSrv.EnableHTTP2 = true
			tlsSrv.StartTLS()
			defer tlsSrv.Close()

			tr := tt.new(tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs)
			defer tr.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			client := &http.Client{Transport: tr}
			post := func(url string) string {
				t.Helper()
				resp, err := client.Post(url, "application/json", strings.NewReader(`{"x":1}`))
				must(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return string(b)
			}
			for range 5 {
				if got := post(plain.URL); got != `{"proto":"HTTP/1.1"}` {
					t.Fatalf("plain HTTP upstream saw %s", got)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("5 sequential calls opened %d connections, want 1 kept alive", n)
			}
			if got := post(tlsSrv.URL); got != `{"proto":"HTTP/2.0"}` {
				t.Errorf("HTTPS upstream saw %s, want HTTP/2", got)
			}
		})
	}
}

// NewTransport's settings are the ones its doc promises.
func TestNewTransportSettings(t *testing.T) {
	tr := llmproxy.NewTransport()
	if tr.DisableKeepAlives || tr.MaxIdleConnsPerHost < 100 || !tr.DisableCompression || !tr.ForceAttemptHTTP2 || tr.ResponseHeaderTimeout != 0 {
		t.Errorf("DisableKeepAlives %v, MaxIdleConnsPerHost %d, DisableCompression %v, ForceAttemptHTTP2 %v, ResponseHeaderTimeout %v",
			tr.DisableKeepAlives, tr.MaxIdleConnsPerHost, tr.DisableCompression, tr.ForceAttemptHTTP2, tr.ResponseHeaderTimeout)
	}
	if tr == llmproxy.NewTransport() || tr == http.DefaultTransport {
		t.Error("NewTransport shares its Transport")
	}
}

// An upstream that redirects is followed, as net/http's client would,
// even though the provider calls the transport directly.
func TestProviderFollowsAnUpstreamRedirect(t *testing.T) {
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			var bodies []string
			mux := http.NewServeMux()
			mux.HandleFunc("/old/chat/completions", func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, "/new/chat/completions", http.StatusTemporaryRedirect)
			})
			mux.HandleFunc("/new/chat/completions", func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(b))
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
			})
			up := httptest.NewServer(mux)
			defer up.Close()
			p, err := openai.New(llmproxy.Connection{Name: "c", Provider: llmproxy.KindCompatible, Endpoint: up.URL + "/old"},
				llmproxy.ProviderOptions{HTTPClient: &http.Client{Transport: tt.new(nil)}})
			must(t, err)
			body := []byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}]}`)
			resp, err := p.ChatCompletion(context.Background(), &llmproxy.Request{Body: body, Model: "alias", RemoteModel: "remote-m"})
			must(t, err)
			if !strings.Contains(string(resp.Body), `"total_tokens":2`) {
				t.Errorf("answer %s", resp.Body)
			}
			if len(bodies) != 1 {
				t.Fatalf("the redirected request arrived %d times", len(bodies))
			}
			// The upstream got the whole body, as JSON, with the remote model.
			var got struct {
				Model    string
				Messages []struct{ Role, Content string }
			}
			if err := json.Unmarshal([]byte(bodies[0]), &got); err != nil || got.Model != "remote-m" ||
				len(got.Messages) != 1 || got.Messages[0].Content != "hi" {
				t.Errorf("the redirected request carried %s (%v)", bodies[0], err)
			}
		})
	}
}

// writeCounter counts the Write calls on its connection.
type writeCounter struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A provider's upstream request leaves in one write, head and body
// together: a second write (net/http flushes the head alone before a body
// of a type it does not know to be in memory) costs a system call and the
// upstream a second wake-up on every call.
func TestUpstreamRequestInOneWrite(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	defer up.Close()
	for _, tt := range transports {
		t.Run(tt.name, func(t *testing.T) {
			var writes atomic.Int64
			base := llmproxy.NewTransport()
			base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return writeCounter{c, &writes}, nil
			}
			var rt http.RoundTripper = base
			if tt.name == "HTTP1Transport" {
				rt = &llmproxy.HTTP1Transport{HTTP: base}
			}
			p, err := openai.New(llmproxy.Connection{Name: "c", Provider: llmproxy.KindCompatible, Endpoint: up.URL + "/v1"},
				llmproxy.ProviderOptions{HTTPClient: &http.Client{Transport: rt}})
			must(t, err)
			body := []byte(`{"model":"alias","messages":[{"role":"user","content":"hi"}]}`)
			for i := range 3 {
				before := writes.Load()
				if _, err := p.ChatCompletion(context.Background(), &llmproxy.Request{Body: body, Model: "alias", RemoteModel: "m"}); err != nil {
					t.Fatal(err)
				}
				if n := writes.Load() - before; n != 1 {
					t.Errorf("call %d: the upstream request took %d writes; want 1", i+1, n)
				}
			}
		})
	}
}
