package llmproxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	goopenai "github.com/sashabaranov/go-openai"
)

// relayEnv is a Gateway in front of an upstream handler the test writes,
// served on a listener that counts the writes the gateway makes to its
// clients.
type relayEnv struct {
	url    string
	writes atomic.Int64
}

type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func newRelayEnv(t *testing.T, a llmproxy.Assignment, upstream http.HandlerFunc) *relayEnv {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	ctx := context.Background()
	store := memory.New()
	c := &llmproxy.Connection{Name: "up", Provider: llmproxy.KindCompatible, Endpoint: up.URL, Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	must(t, store.CreateConnection(ctx, c))
	must(t, store.CreateModel(ctx, &llmproxy.Model{Name: "m", Remote: "remote", ConnectionID: c.ID}))
	a.ConnectionID = c.ID
	must(t, store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey(keyConn), Assignments: []llmproxy.Assignment{a}}))
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New}})
	must(t, err)
	e := &relayEnv{}
	srv := httptest.NewUnstartedServer(gw)
	srv.Listener = countingListener{Listener: srv.Listener, writes: &e.writes}
	srv.Start()
	t.Cleanup(func() { srv.Close(); gw.Close() })
	e.url = srv.URL + "/v1/chat/completions"
	return e
}

func streamChunk(i int) string {
	return fmt.Sprintf(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"remote","choices":[{"index":0,"delta":{"content":"w%d "},"finish_reason":null}]}`+"\n\n", i)
}

const streamRequest = `{"model":"m","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

func openStream(t *testing.T, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(streamRequest))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return resp, bufio.NewReader(resp.Body)
}

// readEvent returns the next SSE event's data.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (so far %q)", err, data)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if data != "" {
				return data
			}
			continue
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data += d
		}
	}
}

// Writing less often must never hold an event back: one that came alone is
// at the client while the upstream still waits to send the next.
func TestRelaySendsAnEventWithoutWaitingForTheNext(t *testing.T) {
	got := make(chan struct{})
	e := newRelayEnv(t, llmproxy.Assignment{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for i := range 3 {
			io.WriteString(w, streamChunk(i))
			f.Flush()
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				return // the test fails: the client never saw event i
			}
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	_, r := openStream(t, e.url)
	for i := range 3 {
		if d := readEvent(t, r); !strings.Contains(d, fmt.Sprintf(`"w%d "`, i)) {
			t.Fatalf("event %d = %s", i, d)
		}
		got <- struct{}{}
	}
	if d := readEvent(t, r); d != "[DONE]" {
		t.Fatalf("last event %q", d)
	}
}

// Events that arrive together are relayed whole and in order, in a
// handful of writes rather than one each.
func TestRelayBurstArrivesWholeInFewWrites(t *testing.T) {
	const n = 200
	e := newRelayEnv(t, llmproxy.Assignment{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		var b strings.Builder
		for i := range n {
			b.WriteString(streamChunk(i))
		}
		b.WriteString("data: [DONE]\n\n")
		io.WriteString(w, b.String())
	})
	_, r := openStream(t, e.url)
	for i := range n {
		if d := readEvent(t, r); !strings.Contains(d, fmt.Sprintf(`"w%d "`, i)) {
			t.Fatalf("event %d = %s", i, d)
		}
	}
	if d := readEvent(t, r); d != "[DONE]" {
		t.Fatalf("last event %q", d)
	}
	t.Logf("%d events, %d writes to the client", n, e.writes.Load())
	// net/http's response bodies cannot say how much has arrived; the
	// stream takes its large buffer when a read fills the small one, so
	// that a burst leaves in writes of up to 16 KiB (36 writes, when it
	// read 1 KiB at a time).
	if w := e.writes.Load(); w > n/10 {
		t.Errorf("%d events took %d writes to the client; want them batched (at most %d)", n, w, n/10)
	}
}

// A stream's real usage is settled against its token limit before [DONE]
// reaches the client, so a request sent the moment the stream ends is
// refused when that usage used up the limit.
func TestStreamUsageSettledBeforeItsEnd(t *testing.T) {
	usage := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"remote","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":4990,"total_tokens":5000}}` + "\n\n"
	e := newRelayEnv(t, llmproxy.Assignment{TokenLimit: 1000, TokenWindow: time.Hour}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, streamChunk(0)+usage+"data: [DONE]\n\n")
	})
	_, r := openStream(t, e.url)
	for readEvent(t, r) != "[DONE]" {
	}
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(streamRequest))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the request sent as a stream that used 5000 of 1000 tokens ended got %d, want 429", resp.StatusCode)
	}
}

func TestStreamingUsageHiddenUnlessAsked(t *testing.T) {
	for _, ask := range []bool{false, true} {
		t.Run(map[bool]string{false: "not asked", true: "asked"}[ask], func(t *testing.T) {
			e := newEnv(t, llmproxy.Assignment{})
			c := goClient(e, keyConn)
			req := goopenai.ChatCompletionRequest{Model: "gpt-alias", Stream: true,
				Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "tell me"}}}
			if ask {
				req.StreamOptions = &goopenai.StreamOptions{IncludeUsage: true}
			}
			st, err := c.CreateChatCompletionStream(context.Background(), req)
			must(t, err)
			var text strings.Builder
			sawUsage := false
			for {
				r, err := st.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				must(t, err)
				if r.Usage != nil {
					sawUsage = true
					if r.Usage.CompletionTokens != 7 {
						t.Errorf("usage %+v", r.Usage)
					}
				}
				for _, ch := range r.Choices {
					text.WriteString(ch.Delta.Content)
				}
			}
			st.Close()
			if want := fakeopenai.Reply("remote-model-1", "tell me"); text.String() != want {
				t.Errorf("text %q, want %q", text.String(), want)
			}
			if sawUsage != ask {
				t.Errorf("client saw usage: %v, asked: %v", sawUsage, ask)
			}
			if so, _ := e.fake.Last().JSON["stream_options"].(map[string]any); so["include_usage"] != true {
				t.Errorf("upstream was not asked for usage: %s", e.fake.Last().Body)
			}
			sums := e.usage(llmproxy.UsageFilter{})
			if len(sums) != 1 || sums[0].TotalTokens != fakeopenai.PromptTokens+7 || sums[0].EstimatedTokens != 0 {
				t.Errorf("usage = %+v", sums)
			}
		})
	}
}

func TestClientDisconnectMidStreamIsCharged(t *testing.T) {
	e := newEnv(t, llmproxy.Assignment{})
	e.fake.SetDelay(0, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-alias","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	r := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ { // role chunk and two words
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		r.ReadString('\n')
	}
	cancel()
	resp.Body.Close()
	waitFor(t, func() bool { return e.fake.Cancelled() == 1 })
	sums := e.usage(llmproxy.UsageFilter{})
	if len(sums) != 1 || sums[0].CompletionTokens == 0 || sums[0].EstimatedTokens == 0 {
		t.Errorf("usage after hang-up: %+v", sums)
	}
}

func TestStreamIdleTimeoutEndsWithErrorEvent(t *testing.T) {
	a, b, url := twoUpstreams(t, llmproxy.Config{})
	// Healthy but slow: 50ms between chunks stays under the 150ms idle
	// timeout, however long the stream.
	a.SetDelay(0, 50*time.Millisecond)
	b.SetDelay(0, 50*time.Millisecond)
	s, body := postTo(t, url, `{"model":"dual","stream":true,"messages":[{"role":"user","content":"one two three four five six seven"}]}`)
	if s != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, `"error"`) {
		t.Errorf("slow healthy stream cut: %d %q", s, body)
	}
	// Stalled: 400ms between chunks.
	a.SetDelay(0, 400*time.Millisecond)
	b.SetDelay(0, 400*time.Millisecond)
	s, body = postTo(t, url, `{"model":"dual","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	if s != 200 || !strings.Contains(body, `"code":"upstream_timeout"`) || strings.Contains(body, "[DONE]") {
		t.Errorf("stalled stream: %d %q", s, body)
	}
}

// TestProviderPanicMidStream is what a panic after the stream began
// should do: end the stream with an SSE error event (not a bare JSON
// object after the events, with a "superfluous WriteHeader" log) and
// record the usage of what was streamed, so the ledger counts every
// answered request and the token reservation is settled.
func TestProviderPanicMidStream(t *testing.T) {

	h := newHardEnv(t)
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"boom-stream","stream":true,"messages":[{"role":"user","content":"hi there"}]}`))
	req.Header.Set("Authorization", "Bearer "+keyConn)
	resp, body := do(t, req)
	if resp.StatusCode != 200 || !strings.Contains(body, "\n\ndata: {\"error\":{\"message\":\"internal error (request ") {
		t.Errorf("panic mid-stream not ended by an SSE error event: %q", body)
	}
	if strings.Contains(h.logs.String(), "superfluous") {
		t.Error("superfluous WriteHeader")
	}
	h.gw.Close()
	sums, err := h.store.SumUsage(context.Background(), llmproxy.UsageFilter{})
	must(t, err)
	if len(sums) != 1 || sums[0].Requests != 1 || sums[0].CompletionTokens == 0 {
		t.Errorf("usage of the panicked stream: %+v", sums)
	}
}
