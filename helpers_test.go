package llmproxy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/internal/syncbuf"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	goopenai "github.com/sashabaranov/go-openai"
)

// The secrets of the test gateways: the fake upstream's key (which must
// never reach a client or a log), the master key, and env's two virtual
// keys (keyConn scoped to a connection, keyModel to a model).
const (
	upstreamKey = "sk-real-upstream-secret"
	masterKey   = "master-secret-key"
	keyConn     = "sk-proxy-123"
	keyModel    = "sk-tester-456"
)

// env is a gateway in front of a fake upstream, configured as in the
// product guide: one key scoped to a connection, one to a model.
type env struct {
	t        *testing.T
	store    llmproxy.Storage
	fake     *fakeopenai.Server
	gw       *llmproxy.Gateway
	srv      *httptest.Server
	conn     *llmproxy.Connection
	model    *llmproxy.Model // "gpt-alias" on conn
	other    *llmproxy.Model // "other" on a second connection
	connKey  *llmproxy.VirtualKey
	modelKey *llmproxy.VirtualKey
}

func newEnv(t *testing.T, limits llmproxy.Assignment) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: memory.New(), fake: fakeopenai.New(t, upstreamKey)}
	e.conn = &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: e.fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, e.store.CreateConnection(ctx, e.conn))
	conn2 := &llmproxy.Connection{Name: "fake2", Provider: llmproxy.KindCompatible, Endpoint: e.fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, e.store.CreateConnection(ctx, conn2))
	e.model = &llmproxy.Model{Name: "gpt-alias", Remote: "remote-model-1", ConnectionID: e.conn.ID}
	must(t, e.store.CreateModel(ctx, e.model))
	e.other = &llmproxy.Model{Name: "other", Remote: "remote-other", ConnectionID: conn2.ID}
	must(t, e.store.CreateModel(ctx, e.other))
	a := limits
	a.ConnectionID = e.conn.ID
	e.connKey = &llmproxy.VirtualKey{Name: "Mobile-App", Hash: llmproxy.HashKey(keyConn), Prefix: llmproxy.KeyPrefix(keyConn), Assignments: []llmproxy.Assignment{a}}
	must(t, e.store.CreateKey(ctx, e.connKey))
	e.modelKey = &llmproxy.VirtualKey{Name: "Tester", Hash: llmproxy.HashKey(keyModel), Prefix: llmproxy.KeyPrefix(keyModel), Assignments: []llmproxy.Assignment{{ModelID: e.other.ID}}}
	must(t, e.store.CreateKey(ctx, e.modelKey))
	gw, err := llmproxy.New(llmproxy.Config{
		Storage:      e.store,
		Providers:    map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
		MasterKey:    masterKey,
		PollInterval: 50 * time.Millisecond,
	})
	must(t, err)
	e.gw = gw
	e.srv = httptest.NewServer(gw)
	t.Cleanup(func() { e.srv.Close(); gw.Close() })
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// post sends a raw request and returns status, header and body.
func (e *env) post(path, key, contentType, body string) (int, http.Header, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, b := do(e.t, req)
	return resp.StatusCode, resp.Header, b
}

// usage closes the gateway (flushing the ledger) and sums the usage.
func (e *env) usage(f llmproxy.UsageFilter) []llmproxy.UsageSummary {
	e.t.Helper()
	e.srv.Close()
	must(e.t, e.gw.Close())
	s, err := e.store.SumUsage(context.Background(), f)
	must(e.t, err)
	return s
}

// goClient is a go-openai client of e's gateway with key.
func goClient(e *env, key string) *goopenai.Client {
	cfg := goopenai.DefaultConfig(key)
	cfg.BaseURL = e.srv.URL + "/v1"
	return goopenai.NewClientWithConfig(cfg)
}

// waitFor polls ok until it holds, failing t after 2s.
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chatBody is the chat request for env's "gpt-alias" that the limit tests
// send: max_tokens 10, so its reservation and usage are known.
const chatBody = `{"model":"gpt-alias","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`

// twoUpstreams serves alias "dual" from two connections, each its own
// fake upstream.
func twoUpstreams(t *testing.T, cfg llmproxy.Config) (a, b *fakeopenai.Server, url string) {
	ctx := context.Background()
	store := memory.New()
	a, b = fakeopenai.New(t, upstreamKey), fakeopenai.New(t, upstreamKey)
	for i, f := range []*fakeopenai.Server{a, b} {
		c := &llmproxy.Connection{Name: "up" + string(rune('a'+i)), Provider: llmproxy.KindCompatible, Endpoint: f.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: upstreamKey}, Settings: map[string]string{llmproxy.SettingFirstByteTimeout: "300ms", llmproxy.SettingIdleTimeout: "150ms"}}
		must(t, store.CreateConnection(ctx, c))
		must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "dual", Remote: "remote-" + c.Name, ConnectionID: c.ID}))
	}
	cfg.Storage, cfg.MasterKey = store, masterKey
	cfg.Providers = map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}
	gw, err := llmproxy.New(cfg)
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return a, b, srv.URL
}

// postTo sends body to the chat endpoint of the gateway at url with the
// master key.
func postTo(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+masterKey)
	resp, b := do(t, req)
	return resp.StatusCode, b
}

// dualBody is a chat request for twoUpstreams' alias.
const dualBody = `{"model":"dual","messages":[{"role":"user","content":"hi"}]}`

// hardLimit is the body limit of hardEnv's gateway: small, so a body
// over it is cheap to send.
const hardLimit = 4096

// lockedBuffer is a buffer safe for a writer and the test at once.
type lockedBuffer = syncbuf.Buffer

// panicky wraps a real provider and panics for the remote models named
// "panic" (before answering) and "panic-stream" (in the middle of the
// stream), as a buggy provider would.
type panicky struct{ llmproxy.Provider }

func (p panicky) ChatCompletion(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	switch req.RemoteModel {
	case "panic":
		panic("provider bug: nil map")
	case "panic-stream":
		resp, err := p.Provider.ChatCompletion(ctx, req)
		if err == nil && resp.Stream != nil {
			resp.Stream = &panicAfter{EventStream: resp.Stream, n: 2}
		}
		return resp, err
	}
	return p.Provider.ChatCompletion(ctx, req)
}

// panicAfter panics on the call to Next after n events.
type panicAfter struct {
	llmproxy.EventStream
	n int
}

func (s *panicAfter) Next() ([]byte, error) {
	if s.n == 0 {
		panic("provider bug: index out of range")
	}
	s.n--
	return s.EventStream.Next()
}

// hardEnv is a gateway (body limit hardLimit, logs captured) in front of
// a fake upstream, with models "ok" (remote "remote-ok"), "boom" (its
// provider panics) and "boom-stream" (its stream panics).
type hardEnv struct {
	store llmproxy.Storage
	fake  *fakeopenai.Server
	gw    *llmproxy.Gateway
	url   string
	logs  *lockedBuffer
}

func newHardEnv(t *testing.T) *hardEnv {
	t.Helper()
	ctx := context.Background()
	h := &hardEnv{store: memory.New(), fake: fakeopenai.New(t, upstreamKey), logs: &lockedBuffer{}}
	conn := &llmproxy.Connection{Name: "fake", Provider: llmproxy.KindCompatible, Endpoint: h.fake.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, h.store.CreateConnection(ctx, conn))
	for alias, remote := range map[string]string{"ok": "remote-ok", "boom": "panic", "boom-stream": "panic-stream"} {
		must(t, h.store.CreateModel(ctx, &llmproxy.Model{Name: alias, Remote: remote, ConnectionID: conn.ID}))
	}
	must(t, h.store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Prefix: llmproxy.KeyPrefix(keyConn),
		Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}))
	gw, err := llmproxy.New(llmproxy.Config{
		Storage: h.store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: func(c llmproxy.Connection, o llmproxy.ProviderOptions) (llmproxy.Provider, error) {
			p, err := openai.New(c, o)
			return panicky{p}, err
		}},
		MasterKey:    masterKey,
		MaxBodyBytes: hardLimit,
		Logger:       slog.New(slog.NewTextHandler(h.logs, nil)),
	})
	must(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	h.gw, h.url = gw, srv.URL
	return h
}

// openAIError is the decoded error envelope of an answer.
type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// checkError checks an answer is an OpenAI error with status, whose
// message contains want, and returns it.
func checkError(t *testing.T, resp *http.Response, body string, status int, want string) openAIError {
	t.Helper()
	var e openAIError
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("not an OpenAI error envelope: %q", body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if !strings.Contains(e.Error.Message, want) {
		t.Errorf("message %q does not name the problem (want %q)", e.Error.Message, want)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	return e
}

// do sends req and returns the answer with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp, string(b)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fire sends n chat requests from workers goroutines at once and counts
// the answers by status.
func fire(t *testing.T, urls []string, n, workers int) map[int]int {
	var mu sync.Mutex
	counts := map[int]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				s := send(t, urls[w%len(urls)])
				mu.Lock()
				counts[s]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

func send(t *testing.T, url string) int {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// steady sends rps requests per second (spread over urls) for d, and
// returns how many were admitted.
func steady(t *testing.T, urls []string, rps int, d time.Duration) int {
	var ok atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rps))
	defer tick.Stop()
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		url := urls[i%len(urls)]
		wg.Go(func() {
			if send(t, url) == 200 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// refill is how many requests a bucket refilling at rate per second can
// admit over d, rounded up, plus one for a refill landing at the edge.
func refill(rate float64, d time.Duration) int {
	return int(math.Ceil(rate*d.Seconds())) + 1
}

func within(got, want int, tolerance float64) bool {
	d := float64(got - want)
	return d <= float64(want)*tolerance && -d <= float64(want)*tolerance
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
