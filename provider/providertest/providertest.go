// Package providertest is the contract suite every llmproxy.Provider
// passes, run against a fake of the provider's upstream that speaks its
// wire format over real HTTP on loopback. A provider's test is one line:
//
//	func TestContract(t *testing.T) { providertest.Run(t, harness) }
//
// where harness (a Harness) starts the provider's fake upstream, told
// what to answer (an Answer), and builds the provider to call it. The
// suite checks what the Gateway relies on: OpenAI-shaped answers with
// their usage; streams read with Next up to io.EOF, with the usage chunk
// even when the client did not ask for it; upstream failures as an
// *llmproxy.Error with the status the client should see, before or
// during a stream; cancellation and Close releasing the upstream call
// promptly, without leaking goroutines; which headers cross in each
// direction; concurrent use; and a Request left as it was. Errors are
// checked by status and type; message text
// only where the contract is that the upstream's message reaches the
// client (a 400), or that it must not (a refused credential).
//
// Every test runs twice: with the Gateway's default transport
// (llmproxy.NewTransport, whose plain-HTTP client is its own) and with
// net/http's, since a provider is given whatever client Config.HTTPClient
// holds.
package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// Harness connects the suite to one provider and a fake of its upstream.
// The fields after Start declare where providers legitimately differ; a
// zero value claims the least.
type Harness struct {
	// Start starts a fake upstream that answers every call with a, in the
	// provider's wire format (see Answer), and returns the provider under
	// test, built with opts to call the fake with the credentials the fake
	// expects. The fake checks those credentials as the real upstream
	// does, and stops at the end of t (t.Cleanup), ending any answer it
	// still holds.
	Start func(t *testing.T, opts llmproxy.ProviderOptions, a Answer) Fake

	// RetryAfter reports that the upstream says how long to wait when it
	// rate limits (Answer.RetryAfter), and the provider passes that on as
	// Error.RetryAfter. Without it the suite only requires a positive
	// RetryAfter: the provider's own advice (Bedrock says nothing).
	RetryAfter bool
	// ResponseHeaders names upstream answer headers that the provider
	// passes on in Response.Header with the upstream's values, besides
	// X-Request-Id (which every provider passes; see Answer.RequestID).
	ResponseHeaders []string
	// RequestHeaders names client request headers (Request.Header) that
	// the provider passes to the upstream with the client's values.
	RequestHeaders []string
}

// Fake is a running fake upstream, as Harness.Start returns it.
type Fake struct {
	// Provider is the provider under test, built to call the fake.
	Provider llmproxy.Provider
	// Calls returns the calls the fake has received so far, oldest
	// first.
	Calls func() []Call
}

// Call is a request as the fake upstream received it.
type Call struct {
	// Model is the model the call named where the provider's API carries
	// it: the body's "model" (OpenAI), the deployment in the URL (Azure),
	// the model id in the path (Bedrock).
	Model string
	// Header is the request's header.
	Header http.Header
	// Done is closed when the call is over for the fake: it has
	// answered, or the caller went away (cancelled its request or closed
	// its connection). While the fake holds an answer (Answer.HoldHead,
	// Answer.StallAfter), only the caller going away closes it.
	Done <-chan struct{}
}

// Answer is what a fake upstream answers to every call. The harness
// writes it in its provider's wire format.
type Answer struct {
	// Text is the assistant's message in a chat answer. A stream carries
	// it in several events (for example one per word), then a finish.
	Text string
	// Usage is the token usage the upstream reports: in a chat answer;
	// at the end of a stream when the request asked for it
	// (stream_options.include_usage) or, for an upstream that always
	// reports it (Bedrock), always; and in an embeddings answer, where
	// only PromptTokens counts.
	Usage llmproxy.Usage
	// RequestID is the upstream's id of the call, in the header where the
	// upstream sends it (x-request-id; Bedrock's x-amzn-requestid).
	RequestID string
	// Header holds more headers to add to the answer as they are.
	Header http.Header

	// Status, when not zero, makes the upstream refuse every call with
	// this HTTP status and Message, as it reports such a failure (an
	// OpenAI error envelope; a Bedrock exception such as
	// ThrottlingException for 429). RetryAfter, when positive, is how
	// long the upstream asks the caller to wait, where the upstream says
	// so (Retry-After, retry-after-ms).
	Status     int
	Message    string
	RetryAfter time.Duration

	// HoldHead makes the upstream send nothing, not even its answer's
	// head, until the caller goes away.
	HoldHead bool
	// StallAfter, when positive, makes a stream stop after that many of
	// its events, without ending, until the caller goes away.
	StallAfter int
	// FailAfter, when positive, makes a stream fail after that many of
	// its events, the way the upstream reports a failure mid-stream (an
	// error event; Bedrock: a modelStreamErrorException), with Message.
	FailAfter int
	// CutAfter, when positive, makes the upstream break a stream's
	// connection after that many of its events, without ending it.
	CutAfter int
}

// The request every test sends, and what the fake answers to it.
const (
	alias  = "alias-model"
	remote = "remote-model.v1:0"
	text   = "The quick brown fox jumps"
	// prompt bounds what should be immediate: a call or Next returning
	// after a cancellation, Close, the fake seeing its caller go away.
	// Generous, for a loaded machine under -race.
	prompt = 5 * time.Second
)

var usage = llmproxy.Usage{PromptTokens: 7, CompletionTokens: 5, TotalTokens: 12}

func chatBody(stream bool, extra string) string {
	b := `{"model":"` + alias + `","messages":[{"role":"user","content":"Say something."}]`
	if stream {
		b += `,"stream":true`
	}
	return b + extra + "}"
}

const embeddingsBody = `{"model":"` + alias + `","input":"hello world"}`

// Run runs the suite against the provider h builds. Its tests run one
// at a time, and some count goroutines: do not call Run from a parallel
// test.
func Run(t *testing.T, h Harness) {
	if h.Start == nil {
		t.Fatal("providertest: Harness.Start is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"Chat", testChat},
		{"ChatStream", testChatStream},
		{"Errors", testErrors},
		{"StreamError", testStreamError},
		{"StreamCut", testStreamCut},
		{"CancelMidStream", testCancelMidStream},
		{"CancelBeforeAnswer", testCancelBeforeAnswer},
		{"CancelledContext", testCancelledContext},
		{"CloseMidStream", testCloseMidStream},
		{"Headers", testHeaders},
		{"Embeddings", testEmbeddings},
		{"Concurrent", testConcurrent},
	}
	transports := []struct {
		name string
		new  func() http.RoundTripper
	}{
		{"GatewayTransport", func() http.RoundTripper { return llmproxy.NewTransport() }},
		{"NetHTTP", func() http.RoundTripper { return http.DefaultTransport.(*http.Transport).Clone() }},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// A client per test: no connection outlives it.
					client := &http.Client{Transport: tr.new()}
					t.Cleanup(client.CloseIdleConnections)
					tt.fn(t, &suite{h: h, client: client})
				})
			}
		})
	}
}

// suite is the state of one test.
type suite struct {
	h      Harness
	client *http.Client
}

// start starts the fake with answer a.
func (s *suite) start(t *testing.T, a Answer) Fake {
	t.Helper()
	f := s.h.Start(t, llmproxy.ProviderOptions{HTTPClient: s.client}, a)
	if f.Provider == nil || f.Calls == nil {
		t.Fatal("Harness.Start returned a Fake without Provider or Calls")
	}
	return f
}

// endpoint is one of the calls a provider serves.
type endpoint struct {
	name     string
	endpoint string // llmproxy.EndpointChat or EndpointEmbeddings
	body     string
}

var (
	chatCall       = endpoint{"chat", llmproxy.EndpointChat, chatBody(false, "")}
	streamCall     = endpoint{"stream", llmproxy.EndpointChat, chatBody(true, "")}
	embeddingsCall = endpoint{"embeddings", llmproxy.EndpointEmbeddings, embeddingsBody}
)

// endpoints returns the calls p serves: chat, streamed chat, and
// embeddings if it is an Embedder.
func endpoints(p llmproxy.Provider) []endpoint {
	e := []endpoint{chatCall, streamCall}
	if _, ok := p.(llmproxy.Embedder); ok {
		e = append(e, embeddingsCall)
	}
	return e
}

// call sends e to p, with h as the client's header, and checks that p
// left the request as it was: the gateway sends the same one to the next
// model of the alias when an upstream fails.
func call(ctx context.Context, t *testing.T, p llmproxy.Provider, e endpoint, h http.Header) (*llmproxy.Response, error) {
	t.Helper()
	req := newRequest(t, e.body, remote, h)
	body, header := string(req.Body), req.Header.Clone()
	res, err := send(ctx, p, e, req)
	if string(req.Body) != body || !reflect.DeepEqual(req.Header, header) {
		t.Errorf("%s: the provider changed the request's Body or Header", e.name)
	}
	return res, err
}

// send sends req to p's method for e.
func send(ctx context.Context, p llmproxy.Provider, e endpoint, req *llmproxy.Request) (*llmproxy.Response, error) {
	if e.endpoint == llmproxy.EndpointEmbeddings {
		return p.(llmproxy.Embedder).Embeddings(ctx, req)
	}
	return p.ChatCompletion(ctx, req)
}

// within runs f and fails t if it does not return within prompt.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(prompt):
		t.Fatalf("%s did not return within %s", what, prompt)
	}
}

// waitDone fails t unless the fake sees c end within prompt.
func waitDone(t *testing.T, c Call, why string) {
	t.Helper()
	select {
	case <-c.Done:
	case <-time.After(prompt):
		t.Errorf("the upstream call did not end within %s after %s", prompt, why)
	}
}

// oneCall returns the only call the fake received.
func oneCall(t *testing.T, f Fake) Call {
	t.Helper()
	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("the upstream received %d calls, want 1", len(calls))
	}
	return calls[0]
}

// waitCall waits until the fake has received call n (from 0).
func waitCall(t *testing.T, f Fake, n int) Call {
	t.Helper()
	deadline := time.Now().Add(prompt)
	for {
		if calls := f.Calls(); len(calls) > n {
			return calls[n]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream received no call within %s", prompt)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readAll reads a stream to its end: copies of the events, and the error
// that ended it (io.EOF for a complete stream).
func readAll(t *testing.T, st llmproxy.EventStream) (events []string, err error) {
	t.Helper()
	within(t, "reading the stream", func() {
		for {
			var d []byte
			d, err = st.Next()
			if err != nil {
				return
			}
			events = append(events, string(d))
			if len(events) > 1000 {
				err = errors.New("more than 1000 events")
				return
			}
		}
	})
	return events, err
}

// streamOf returns res's stream, failing t if res has none.
func streamOf(t *testing.T, res *llmproxy.Response) llmproxy.EventStream {
	t.Helper()
	if res.Stream == nil {
		t.Fatalf("a streaming request was answered without a stream: %.300s", res.Body)
	}
	return res.Stream
}

// next calls Next, failing t if it does not return within prompt.
func next(t *testing.T, st llmproxy.EventStream) (string, error) {
	t.Helper()
	var d []byte
	var err error
	within(t, "Next", func() { d, err = st.Next() })
	return string(d), err
}

// asError returns the *llmproxy.Error in err's chain, failing t if there
// is none.
func asError(t *testing.T, what string, err error) *llmproxy.Error {
	t.Helper()
	var e *llmproxy.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T) has no *llmproxy.Error in its chain", what, err, err)
	}
	if e.Message == "" {
		t.Errorf("%s: *llmproxy.Error %+v has no message for the client", what, e)
	}
	return e
}

// completion is the part of a chat.completion the suite checks.
type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *llmproxy.Usage `json:"usage"`
}

// chunk is the part of a chat.completion.chunk the suite checks.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *llmproxy.Usage `json:"usage"`
}

// testChat: a non-streaming answer reaches the caller as OpenAI's
// chat.completion with the upstream's text and a top-level usage, and the
// upstream was asked for the remote model.
func testChat(t *testing.T, s *suite) {
	f := s.start(t, Answer{Text: text, Usage: usage})
	res, err := call(context.Background(), t, f.Provider, chatCall, nil)
	if err != nil {
		t.Fatalf("ChatCompletion: %v", err)
	}
	if res.Stream != nil {
		res.Stream.Close()
		t.Fatal("a non-streaming request was answered with a stream")
	}
	if res.StatusCode != 0 && res.StatusCode != http.StatusOK {
		t.Errorf("StatusCode %d, want 0 or 200", res.StatusCode)
	}
	if !json.Valid(res.Body) {
		t.Fatalf("Body is not JSON: %.300s", res.Body)
	}
	var c completion
	json.Unmarshal(res.Body, &c)
	if c.Object != "chat.completion" || c.ID == "" {
		t.Errorf("object %q, id %q: want a chat.completion with an id", c.Object, c.ID)
	}
	if len(c.Choices) != 1 {
		t.Fatalf("%d choices in %s, want 1", len(c.Choices), res.Body)
	}
	ch := c.Choices[0]
	if ch.Message.Role != "assistant" || ch.Message.Content == nil || *ch.Message.Content != text || ch.FinishReason != "stop" {
		t.Errorf("choice %s, want the assistant's %q with finish_reason stop", res.Body, text)
	}
	if c.Usage == nil || *c.Usage != usage {
		t.Errorf("usage %+v, want %+v", c.Usage, usage)
	}
	if got := oneCall(t, f).Model; got != remote {
		t.Errorf("the upstream was asked for model %q, want the remote model %q", got, remote)
	}
}

// testChatStream: a stream's events arrive through Next as
// chat.completion.chunks with one id, carrying the text and a finish,
// then the usage chunk (empty choices, the upstream's usage) whether or
// not the client asked for it, then io.EOF, again on every later call.
func testChatStream(t *testing.T, s *suite) {
	for _, tc := range []struct{ name, options string }{
		{"usage not asked", ""},
		{"usage asked", `,"stream_options":{"include_usage":true}`},
		{"usage refused", `,"stream_options":{"include_usage":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := s.start(t, Answer{Text: text, Usage: usage})
			e := streamCall
			e.body = chatBody(true, tc.options)
			res, err := call(context.Background(), t, f.Provider, e, nil)
			if err != nil {
				t.Fatalf("ChatCompletion: %v", err)
			}
			st := streamOf(t, res)
			defer st.Close()
			events, err := readAll(t, st)
			if err != io.EOF {
				t.Fatalf("the stream ended with %v after %d events, want io.EOF", err, len(events))
			}
			checkChunks(t, events)
			if _, err := next(t, st); err != io.EOF {
				t.Errorf("Next after the end: %v, want io.EOF", err)
			}
			var cerr error
			within(t, "Close", func() { cerr = st.Close() })
			if cerr != nil {
				t.Errorf("Close after the end: %v", cerr)
			}
			if got := oneCall(t, f).Model; got != remote {
				t.Errorf("the upstream was asked for model %q, want %q", got, remote)
			}
		})
	}
}

// checkChunks checks a whole stream's events.
func checkChunks(t *testing.T, events []string) {
	t.Helper()
	var (
		ids     = map[string]bool{}
		content strings.Builder
		stops   int
		role    bool
		usages  []int // indexes of usage chunks
	)
	for i, ev := range events {
		if !json.Valid([]byte(ev)) {
			t.Fatalf("event %d is not JSON: %.300s", i, ev)
		}
		var c chunk
		json.Unmarshal([]byte(ev), &c)
		ids[c.ID] = true
		if c.Object != "chat.completion.chunk" {
			t.Errorf("event %d: object %q, want chat.completion.chunk", i, c.Object)
		}
		for _, ch := range c.Choices {
			content.WriteString(ch.Delta.Content)
			role = role || ch.Delta.Role == "assistant"
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				if *ch.FinishReason != "stop" {
					t.Errorf("event %d: finish_reason %q, want stop", i, *ch.FinishReason)
				}
				stops++
			}
		}
		if c.Usage != nil {
			usages = append(usages, i)
			if *c.Usage != usage {
				t.Errorf("event %d: usage %+v, want %+v", i, *c.Usage, usage)
			}
			if c.Choices == nil || len(c.Choices) != 0 {
				t.Errorf("the usage chunk has choices %v, want []", c.Choices)
			}
		}
	}
	// Clients' stream helpers merge chunks by id (see FIELD-NOTES).
	if len(ids) != 1 || ids[""] {
		t.Errorf("chunk ids %v, want one non-empty id on every chunk", slices.Collect(maps.Keys(ids)))
	}
	if content.String() != text {
		t.Errorf("the stream's text is %q, want %q", content.String(), text)
	}
	if !role {
		t.Error("no chunk gives the assistant role")
	}
	if stops != 1 {
		t.Errorf("%d chunks with a finish_reason, want 1", stops)
	}
	if len(usages) != 1 || usages[0] != len(events)-1 {
		t.Errorf("usage chunks at %v of %d events, want one, last (the gateway asks the upstream for usage and relies on it)", usages, len(events))
	}
}

// testErrors: an upstream that refuses a call (before any answer) makes
// the call return an *llmproxy.Error with the status the client should
// see, for every endpoint; a stream request gets it from ChatCompletion,
// not from its first Next.
func testErrors(t *testing.T, s *suite) {
	const secret = "sk-upstream-key-0123"
	for _, tc := range []struct {
		name   string
		answer Answer
		status int    // the client's status
		any5xx bool   // any 5xx status will do
		typ    string // the Error's Type, when set
		shows  string // text the Error's Message must show
		hides  string // text it must not show
	}{
		{name: "400 with the upstream's message", answer: Answer{Status: 400, Message: "messages[0].content is too long"},
			status: 400, typ: llmproxy.TypeInvalidRequest, shows: "messages[0].content is too long"},
		{name: "401 is the gateway's fault", answer: Answer{Status: 401, Message: "Incorrect API key provided: " + secret},
			status: 502, typ: llmproxy.TypeUpstream, hides: secret},
		{name: "403 is the gateway's fault", answer: Answer{Status: 403, Message: "The key " + secret + " is not allowed here"},
			status: 502, typ: llmproxy.TypeUpstream, hides: secret},
		{name: "404 unknown remote model", answer: Answer{Status: 404, Message: "The model does not exist"},
			status: 502, typ: llmproxy.TypeUpstream},
		{name: "429 with Retry-After", answer: Answer{Status: 429, Message: "Rate limit reached", RetryAfter: 7 * time.Second},
			status: 429, typ: llmproxy.TypeRateLimit},
		{name: "429 without Retry-After", answer: Answer{Status: 429, Message: "Rate limit reached"},
			status: 429, typ: llmproxy.TypeRateLimit},
		{name: "500", answer: Answer{Status: 500, Message: "The server had an error"}, any5xx: true},
		{name: "503", answer: Answer{Status: 503, Message: "The engine is overloaded", RetryAfter: 2 * time.Second}, any5xx: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := s.start(t, tc.answer)
			for _, e := range endpoints(f.Provider) {
				res, err := call(context.Background(), t, f.Provider, e, nil)
				if err == nil {
					if res != nil && res.Stream != nil {
						res.Stream.Close()
					}
					t.Errorf("%s: no error from the call, want the upstream's %d", e.name, tc.answer.Status)
					continue
				}
				got := asError(t, e.name, err)
				switch {
				case tc.any5xx:
					if got.Status < 500 || got.Status > 599 {
						t.Errorf("%s: status %d, want 5xx", e.name, got.Status)
					}
				case got.Status != tc.status:
					t.Errorf("%s: status %d, want %d", e.name, got.Status, tc.status)
				}
				if tc.typ != "" && got.Type != tc.typ {
					t.Errorf("%s: type %q, want %q", e.name, got.Type, tc.typ)
				}
				if tc.shows != "" && !strings.Contains(got.Message, tc.shows) {
					t.Errorf("%s: message %q, want the upstream's %q", e.name, got.Message, tc.shows)
				}
				if tc.hides != "" && strings.Contains(got.Message, tc.hides) {
					t.Errorf("%s: message %q shows the upstream's words about the gateway's credentials", e.name, got.Message)
				}
				if tc.status == 429 {
					want := tc.answer.RetryAfter
					switch {
					case want > 0 && s.h.RetryAfter:
						if got.RetryAfter != want {
							t.Errorf("%s: RetryAfter %v, want the upstream's %v", e.name, got.RetryAfter, want)
						}
					case got.RetryAfter <= 0:
						t.Errorf("%s: RetryAfter %v, want a positive advice", e.name, got.RetryAfter)
					}
				}
			}
		})
	}
}

// testStreamError: an upstream that fails mid-stream makes Next return,
// after the events before the failure, an error with an *llmproxy.Error
// (5xx) in its chain, which the gateway shows as an SSE error event; not
// io.EOF, which would pass a cut answer off as whole.
func testStreamError(t *testing.T, s *suite) {
	f := s.start(t, Answer{Text: text, Usage: usage, FailAfter: 2, Message: "the model fell over"})
	res, err := call(context.Background(), t, f.Provider, streamCall, nil)
	if err != nil {
		t.Fatalf("ChatCompletion: %v (the failure comes after the answer's head)", err)
	}
	st := streamOf(t, res)
	defer st.Close()
	events, err := readAll(t, st)
	if err == io.EOF {
		t.Fatalf("a stream that failed after %d events ended with io.EOF", len(events))
	}
	if len(events) == 0 {
		t.Error("no event arrived before the failure")
	}
	if e := asError(t, "Next", err); e.Status < 500 {
		t.Errorf("mid-stream failure: status %d, want 5xx", e.Status)
	}
}

// testStreamCut: a stream whose connection breaks before its end makes
// Next return, after the events that came, an error with a 5xx
// *llmproxy.Error in its chain; not io.EOF, which would make the gateway
// end a cut answer with [DONE], as if it were whole.
func testStreamCut(t *testing.T, s *suite) {
	f := s.start(t, Answer{Text: text, Usage: usage, CutAfter: 3})
	res, err := call(context.Background(), t, f.Provider, streamCall, nil)
	if err != nil {
		t.Fatalf("ChatCompletion: %v (the connection breaks after the answer's head)", err)
	}
	st := streamOf(t, res)
	defer st.Close()
	events, err := readAll(t, st)
	if err == io.EOF {
		t.Fatalf("a stream cut after %d events ended with io.EOF", len(events))
	}
	if len(events) == 0 {
		t.Error("no event arrived before the cut")
	}
	if e := asError(t, "Next", err); e.Status < 500 {
		t.Errorf("cut stream: status %d, want 5xx", e.Status)
	}
}

// testCancelMidStream: cancelling the request's context while Next waits
// for the upstream makes Next return an error (not io.EOF) promptly, the
// upstream sees its call end, and nothing is left running.
func testCancelMidStream(t *testing.T, s *suite) {
	f := s.start(t, Answer{Text: text, Usage: usage, StallAfter: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := newRequest(t, streamCall.body, remote, nil)
	before := runtime.NumGoroutine()
	var res *llmproxy.Response
	var err error
	within(t, "ChatCompletion", func() { res, err = f.Provider.ChatCompletion(ctx, req) })
	if err != nil {
		t.Fatalf("ChatCompletion: %v", err)
	}
	st := streamOf(t, res)
	if _, err := next(t, st); err != nil {
		t.Fatalf("first event: %v", err)
	}
	// Read on until the stall; cancel while Next waits.
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := st.Next(); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == io.EOF {
			t.Error("a cancelled stream ended with io.EOF, as if it were whole")
		}
	case <-time.After(prompt):
		t.Fatalf("Next did not return within %s of the cancellation", prompt)
	}
	waitDone(t, oneCall(t, f), "the cancellation")
	within(t, "Close", func() { st.Close() })
	checkGoroutines(t, before, s.client)
}

// testCancelBeforeAnswer: cancelling the context while the upstream has
// not answered makes the call return promptly, with context.Canceled in
// the error's chain (so the gateway neither answers nor counts it as an
// upstream failure), and the upstream sees its call end.
func testCancelBeforeAnswer(t *testing.T, s *suite) {
	f := s.start(t, Answer{HoldHead: true})
	for _, e := range endpoints(f.Provider) {
		t.Run(e.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := newRequest(t, e.body, remote, nil)
			n := len(f.Calls())
			type result struct {
				res *llmproxy.Response
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := send(ctx, f.Provider, e, req)
				done <- result{res, err}
			}()
			c := waitCall(t, f, n)
			cancel()
			select {
			case r := <-done:
				if r.err == nil {
					if r.res != nil && r.res.Stream != nil {
						r.res.Stream.Close()
					}
					t.Fatal("a cancelled call returned no error")
				}
				if !errors.Is(r.err, context.Canceled) {
					t.Errorf("error %v does not have context.Canceled in its chain", r.err)
				}
			case <-time.After(prompt):
				t.Fatalf("the call did not return within %s of the cancellation", prompt)
			}
			waitDone(t, c, "the cancellation")
		})
	}
}

// testCancelledContext: a call made with a context that is already
// cancelled returns promptly with context.Canceled in the error's chain.
func testCancelledContext(t *testing.T, s *suite) {
	f := s.start(t, Answer{HoldHead: true})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, e := range endpoints(f.Provider) {
		var res *llmproxy.Response
		var err error
		within(t, e.name+" call", func() { res, err = call(ctx, t, f.Provider, e, nil) })
		if err == nil {
			if res != nil && res.Stream != nil {
				res.Stream.Close()
			}
			t.Errorf("%s: a call with a cancelled context returned no error", e.name)
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error %v does not have context.Canceled in its chain", e.name, err)
		}
	}
}

// testCloseMidStream: Close before the end (the client went away)
// returns promptly, releases the upstream call, makes Next end, and
// leaves nothing running.
func testCloseMidStream(t *testing.T, s *suite) {
	f := s.start(t, Answer{Text: text, Usage: usage, StallAfter: 3})
	req := newRequest(t, streamCall.body, remote, nil)
	before := runtime.NumGoroutine()
	var res *llmproxy.Response
	var err error
	within(t, "ChatCompletion", func() { res, err = f.Provider.ChatCompletion(context.Background(), req) })
	if err != nil {
		t.Fatalf("ChatCompletion: %v", err)
	}
	st := streamOf(t, res)
	if _, err := next(t, st); err != nil {
		t.Fatalf("first event: %v", err)
	}
	within(t, "Close", func() { err = st.Close() })
	if err != nil {
		t.Errorf("Close: %v", err)
	}
	waitDone(t, oneCall(t, f), "Close")
	if d, err := next(t, st); err == nil {
		t.Errorf("Next after Close returned an event: %.200s", d)
	}
	within(t, "a second Close", func() { st.Close() })
	checkGoroutines(t, before, s.client)
}

// checkGoroutines fails t unless, once idle connections are closed, no
// more goroutines run than before the call: a stream's reader or a
// connection left behind is a leak that grows with every request.
func checkGoroutines(t *testing.T, before int, client *http.Client) {
	t.Helper()
	deadline := time.Now().Add(prompt)
	for {
		client.CloseIdleConnections()
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines run, %d before the call:\n%s", n, before, buf)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testHeaders: the client's credentials never reach the upstream (the
// provider's own do: the fake checks them), the headers the harness
// declares do; the upstream's request id and declared headers come back
// in Response.Header, while hop-by-hop, cookie, authentication and length
// headers do not.
func testHeaders(t *testing.T, s *suite) {
	const clientSecret = "client-secret-4711"
	const requestID = "req-contract-0042"
	answerHeader := http.Header{
		"Set-Cookie":         {"session=upstream; Path=/"},
		"Keep-Alive":         {"timeout=5"},
		"Www-Authenticate":   {`Bearer realm="upstream"`},
		"Proxy-Authenticate": {`Basic realm="upstream"`},
	}
	for _, k := range s.h.ResponseHeaders {
		answerHeader.Set(k, "upstream-"+strings.ToLower(k))
	}
	f := s.start(t, Answer{Text: text, Usage: usage, RequestID: requestID, Header: answerHeader})
	for _, e := range endpoints(f.Provider) {
		t.Run(e.name, func(t *testing.T) {
			h := http.Header{
				"Authorization": {"Bearer " + clientSecret},
				"Api-Key":       {clientSecret},
				"X-Api-Key":     {clientSecret},
				"Cookie":        {"session=" + clientSecret},
				"Content-Type":  {"application/json"},
				"User-Agent":    {"contract-client/1.0"},
			}
			for _, k := range s.h.RequestHeaders {
				h.Set(k, "client-"+strings.ToLower(k))
			}
			n := len(f.Calls())
			res, err := call(context.Background(), t, f.Provider, e, h)
			if err != nil {
				t.Fatalf("call with the client's credentials in its header: %v", err)
			}
			if e == streamCall {
				st := streamOf(t, res)
				defer st.Close()
				if _, err := readAll(t, st); err != io.EOF {
					t.Errorf("stream ended with %v", err)
				}
			}
			calls := f.Calls()
			if len(calls) != n+1 {
				t.Fatalf("the upstream received %d calls, want 1", len(calls)-n)
			}
			up := calls[n].Header
			for k, vs := range up {
				for _, v := range vs {
					if strings.Contains(v, clientSecret) {
						t.Errorf("the client's credential reached the upstream in %s: %q", k, v)
					}
				}
			}
			for _, k := range s.h.RequestHeaders {
				if got, want := up.Get(k), "client-"+strings.ToLower(k); got != want {
					t.Errorf("upstream request header %s = %q, want the client's %q", k, got, want)
				}
			}
			if got := res.Header.Get("X-Request-Id"); got != requestID {
				t.Errorf("Response.Header X-Request-Id = %q, want the upstream's %q", got, requestID)
			}
			for _, k := range s.h.ResponseHeaders {
				if got, want := res.Header.Get(k), "upstream-"+strings.ToLower(k); got != want {
					t.Errorf("Response.Header %s = %q, want the upstream's %q", k, got, want)
				}
			}
			for _, k := range []string{"Set-Cookie", "Keep-Alive", "Connection", "Transfer-Encoding", "Content-Length",
				"Www-Authenticate", "Proxy-Authenticate", "Authorization", "Api-Key", "Trailer", "Upgrade"} {
				if v, ok := res.Header[k]; ok {
					t.Errorf("Response.Header passes %s: %q", k, v)
				}
			}
		})
	}
}

// testEmbeddings: an Embedder's answer is OpenAI's embeddings list with
// a vector per input and the upstream's usage, from the remote model.
func testEmbeddings(t *testing.T, s *suite) {
	want := llmproxy.Usage{PromptTokens: 4, TotalTokens: 4}
	f := s.start(t, Answer{Usage: want})
	if _, ok := f.Provider.(llmproxy.Embedder); !ok {
		t.Skip("the provider is not an llmproxy.Embedder")
	}
	res, err := call(context.Background(), t, f.Provider, embeddingsCall, nil)
	if err != nil {
		t.Fatalf("Embeddings: %v", err)
	}
	if res.Stream != nil {
		res.Stream.Close()
		t.Fatal("an embeddings request was answered with a stream")
	}
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			Object    string          `json:"object"`
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage *struct {
			PromptTokens int64 `json:"prompt_tokens"`
			TotalTokens  int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(res.Body, &list); err != nil {
		t.Fatalf("Body is not an embeddings list: %v: %.300s", err, res.Body)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].Object != "embedding" || list.Data[0].Index != 0 {
		t.Errorf("answer %.300s, want a list of one embedding", res.Body)
	} else {
		var v []float64
		if err := json.Unmarshal(list.Data[0].Embedding, &v); err != nil || len(v) == 0 {
			t.Errorf("embedding %.100s is not a list of numbers", list.Data[0].Embedding)
		}
	}
	if list.Usage == nil || list.Usage.PromptTokens != want.PromptTokens || list.Usage.TotalTokens != want.TotalTokens {
		t.Errorf("usage %+v, want %+v", list.Usage, want)
	}
	if got := oneCall(t, f).Model; got != remote {
		t.Errorf("the upstream was asked for model %q, want %q", got, remote)
	}
}

// testConcurrent: a provider serves many goroutines at once (see
// llmproxy.Provider): concurrent chats and streams each get their whole
// answer (and, under -race, share nothing unguarded).
func testConcurrent(t *testing.T, s *suite) {
	const n = 16
	f := s.start(t, Answer{Text: text, Usage: usage})
	reqs := make([]*llmproxy.Request, n)
	for i := range reqs {
		e := chatCall
		if i%2 == 1 {
			e = streamCall
		}
		reqs[i] = newRequest(t, e.body, remote, nil)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() {
			got, err := answerText(f.Provider, req)
			if err == nil && got != text {
				err = fmt.Errorf("answer %q, want %q", got, text)
			}
			if err != nil {
				errs <- fmt.Errorf("stream=%v: %w", req.Stream, err)
			}
		})
	}
	within(t, fmt.Sprintf("%d concurrent calls", n), wg.Wait)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(f.Calls()); got != n {
		t.Errorf("the upstream received %d calls, want %d", got, n)
	}
}

// answerText returns the text of p's whole answer to a chat request.
func answerText(p llmproxy.Provider, req *llmproxy.Request) (string, error) {
	res, err := p.ChatCompletion(context.Background(), req)
	if err != nil {
		return "", err
	}
	if !req.Stream {
		var c completion
		if err := json.Unmarshal(res.Body, &c); err != nil || len(c.Choices) != 1 || c.Choices[0].Message.Content == nil {
			return "", fmt.Errorf("answer %.300s is not a chat.completion with one choice", res.Body)
		}
		return *c.Choices[0].Message.Content, nil
	}
	if res.Stream == nil {
		return "", errors.New("no stream")
	}
	defer res.Stream.Close()
	var b strings.Builder
	for {
		d, err := res.Stream.Next()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		var c chunk
		if err := json.Unmarshal(d, &c); err != nil {
			return "", fmt.Errorf("event %.300s: %v", d, err)
		}
		for _, ch := range c.Choices {
			b.WriteString(ch.Delta.Content)
		}
	}
}
