// Package anthropictest is a fake of Anthropic's Messages API for tests,
// written from Anthropic's public API reference. It listens on 127.0.0.1
// and serves
//
//	POST /v1/messages               a Message (JSON), or its stream of
//	                                server-sent events when "stream" is true
//	POST /v1/messages/count_tokens  {"input_tokens": N}
//
// (query strings, such as Claude Code's ?beta=true, are ignored). Before
// answering it checks what the real API checks: the x-api-key header
// (Authorization: Bearer is accepted too, as for OAuth tokens), an
// anthropic-version header, a JSON body with "model" and "messages", and
// "max_tokens" for /v1/messages; failures are answered as the real API
// does, e.g. 401 authentication_error. Every request is recorded (Calls),
// headers and raw body included, whether or not it passed.
//
// What it answers is scripted per call. Queue answers for the next calls
// with Reply, or decide from each request with Handle; without either it
// echoes (Echo):
//
//	s := anthropictest.New(t)
//	s.Reply(anthropictest.Text("Hello!"))          // JSON or a stream, as the call asks
//	s.Reply(anthropictest.ToolUse("toolu_01", "Read", map[string]any{"file_path": "/tmp/x"}))
//	s.Reply(anthropictest.Error(529, "overloaded_error", "Overloaded"))
//	s.Reply(anthropictest.Stream(append(anthropictest.Events(m)[:3],
//		anthropictest.ErrorEvent("overloaded_error", "Overloaded"))...))
//
// A tool round trip, as an agent such as Claude Code makes it:
//
//	s.Handle(func(c *anthropictest.Call) anthropictest.Answer {
//		if r := c.ToolResults(); len(r) > 0 {
//			return anthropictest.Text("The file says: " + r[0].Content)
//		}
//		if c.HasTool("Read") {
//			return anthropictest.ToolUse("toolu_01", "Read", map[string]any{"file_path": path})
//		}
//		return anthropictest.Text("ok") // background calls (titles, summaries)
//	})
//
// Streams follow the documented order: message_start (usage with input
// and cache counts), then per content block content_block_start, its
// deltas (text_delta, input_json_delta, thinking_delta, signature_delta)
// and content_block_stop, a ping after the first block's start,
// message_delta (stop_reason and the final usage, cache counts included)
// and message_stop.
package anthropictest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultAPIKey is the key New's server expects.
const DefaultAPIKey = "sk-ant-api03-fake-test-key"

// Paths the fake serves.
const (
	PathMessages    = "/v1/messages"
	PathCountTokens = "/v1/messages/count_tokens"
)

// Server is a fake Messages API. Its exported fields are set before the
// first request.
type Server struct {
	*httptest.Server
	// APIKey is the key a request must carry (x-api-key, or
	// Authorization: Bearer).
	APIKey string

	mu      sync.Mutex
	calls   []*Call
	queue   []Answer
	handler func(*Call) Answer
	n       int // answers given, for ids
	// closing is closed by Close, to end held answers whose client has
	// not gone away.
	closing   chan struct{}
	closeOnce sync.Once
}

// New starts a fake that expects DefaultAPIKey; it stops at the end of
// t. Its URL (no /v1) is the base URL for clients: ANTHROPIC_BASE_URL, an
// SDK's base URL, a connection's endpoint.
func New(t testing.TB) *Server {
	s := &Server{APIKey: DefaultAPIKey, closing: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Close ends held answers, then stops the server as httptest.Server.Close
// does.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.Server.Close()
}

// Reply queues answers: each call that passes the fake's checks takes the
// first one left, whatever its path.
func (s *Server) Reply(answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, answers...)
}

// Handle sets the function that answers calls once the queue is empty;
// nil means Echo. It is called from the server's goroutines, one per
// call, possibly at once.
func (s *Server) Handle(f func(*Call) Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = f
}

// Calls returns the requests received so far, oldest first.
func (s *Server) Calls() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Call(nil), s.calls...)
}

// LastCall returns the latest request, or nil.
func (s *Server) LastCall() *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return nil
	}
	return s.calls[len(s.calls)-1]
}

// Answer is the fake's answer to one call. Build one with Text, ToolUse,
// Reply, Stream, Error, RateLimited, Overloaded or Count, then adjust
// its fields.
type Answer struct {
	// Message answers a /v1/messages call: as JSON, or as its Events when
	// the call streams. Empty ID, Model and Usage are filled in (a new
	// id, the requested model, counts from the request's size and the
	// answer's words).
	Message *Message
	// Events answer a streaming /v1/messages call as they are, instead of
	// Message's events.
	Events []Event
	// Error answers with an error envelope and its status.
	Error *APIError
	// Body, when set, is sent as it is as a 200 JSON answer (to a
	// streaming call too): for answers the fake would not write itself.
	Body []byte
	// InputTokens answers a count_tokens call; zero means the fake's
	// estimate (a token per four bytes of the body).
	InputTokens int64
	// Header holds headers added to the answer (they replace the fake's
	// own, such as request-id).
	Header http.Header

	// Pace, when set, is called before each event i (from 0) of a stream
	// is written, the ones before it written and flushed; it may block to
	// hold the stream there, e.g. until a test has seen event i-1.
	Pace func(i int)
	// HoldHead makes the fake send nothing, not even its answer's head,
	// until the client goes away.
	HoldHead bool
	// HoldOpen keeps a stream open after its events until the client goes
	// away, as a stalled model would.
	HoldOpen bool
	// Cut breaks the connection after a stream's events, as a connection
	// dropped mid-answer would.
	Cut bool
}

// APIError is an error answer: HTTP Status with the envelope
// {"type":"error","error":{"type":Type,"message":Message},"request_id":…}.
type APIError struct {
	Status  int
	Type    string
	Message string
}

// Text answers with a Message of one text block (stop_reason end_turn).
func Text(text string) Answer {
	return Reply(Message{Content: []Block{TextBlock(text)}})
}

// ToolUse answers with a Message that calls tool name with input (any
// value that marshals to a JSON object), stop_reason tool_use.
func ToolUse(id, name string, input any) Answer {
	return Reply(Message{Content: []Block{ToolUseBlock(id, name, input)}})
}

// Reply answers with m.
func Reply(m Message) Answer { return Answer{Message: &m} }

// Stream answers a streaming call with events as they are.
func Stream(events ...Event) Answer { return Answer{Events: events} }

// Error answers with an error of the given status, type and message.
func Error(status int, typ, message string) Answer {
	return Answer{Error: &APIError{Status: status, Type: typ, Message: message}}
}

// RateLimited answers 429 rate_limit_error with retry-after (whole
// seconds, rounded up) and the request limit's anthropic-ratelimit-*
// headers, as Anthropic does.
func RateLimited(retryAfter time.Duration) Answer {
	a := Error(http.StatusTooManyRequests, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
	secs := int((retryAfter + time.Second - 1) / time.Second)
	a.Header = http.Header{
		"Retry-After":                            {strconv.Itoa(secs)},
		"Anthropic-Ratelimit-Requests-Limit":     {"50"},
		"Anthropic-Ratelimit-Requests-Remaining": {"0"},
		"Anthropic-Ratelimit-Requests-Reset":     {time.Now().Add(retryAfter).UTC().Format(time.RFC3339)},
	}
	return a
}

// Overloaded answers 529 overloaded_error.
func Overloaded() Answer { return Error(529, "overloaded_error", "Overloaded") }

// Count answers a count_tokens call with n.
func Count(n int64) Answer { return Answer{InputTokens: n} }

// ErrorType is the error type Anthropic answers with the HTTP status.
func ErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// Echo is the fake's default model: after tool results it answers "The
// tool said: " and their text; otherwise "You said: " and the last user
// text. count_tokens calls get the fake's estimate.
func Echo(c *Call) Answer {
	if r := c.ToolResults(); len(r) > 0 {
		var b strings.Builder
		for _, t := range r {
			b.WriteString(t.Content)
		}
		return Text("The tool said: " + b.String())
	}
	return Text("You said: " + c.LastUserText())
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20))
	c := &Call{Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Done: r.Context().Done()}
	// Parsed before the call is shared: Calls' readers see it whole.
	c.parseErr = json.Unmarshal(body, &c.req)
	c.Model, c.Stream = c.req.Model, c.req.Stream
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.n++
	reqID := fmt.Sprintf("req_fake%06d", s.n)
	s.mu.Unlock()
	w.Header().Set("Request-Id", reqID)
	if err != nil {
		writeError(w, reqID, &APIError{413, "request_too_large", "Request exceeds the maximum allowed number of bytes."})
		return
	}
	if e := s.check(r, c); e != nil {
		writeError(w, reqID, e)
		return
	}
	a := s.next(c)
	if a.HoldHead {
		s.hold(r)
		return
	}
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	switch {
	case a.Error != nil:
		writeError(w, reqID, a.Error)
	case a.Body != nil:
		w.Header().Set("Content-Type", "application/json")
		w.Write(a.Body)
	case c.CountTokens():
		n := a.InputTokens
		if n == 0 {
			n = estimate(c.Body)
		}
		writeJSON(w, http.StatusOK, map[string]int64{"input_tokens": n})
	case c.Stream && a.Events != nil:
		s.writeEvents(w, r, a, a.Events)
	case a.Message == nil:
		writeError(w, reqID, &APIError{500, "api_error", "anthropictest: the answer has neither Message, Events nor Error"})
	case c.Stream:
		s.writeEvents(w, r, a, Events(s.complete(*a.Message, c)))
	default:
		writeJSON(w, http.StatusOK, s.complete(*a.Message, c).wire())
	}
}

// next returns the answer to c: the first queued, else the handler's.
func (s *Server) next(c *Call) Answer {
	s.mu.Lock()
	if len(s.queue) > 0 {
		a := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return a
	}
	h := s.handler
	s.mu.Unlock()
	if h == nil {
		h = Echo
	}
	return h(c)
}

// check refuses what the real API refuses before it looks at the model.
func (s *Server) check(r *http.Request, c *Call) *APIError {
	if r.Method != http.MethodPost || (c.Path != PathMessages && c.Path != PathCountTokens) {
		return &APIError{404, "not_found_error", "Not found: " + r.Method + " " + c.Path}
	}
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	switch {
	case key == "":
		return &APIError{401, "authentication_error", "x-api-key header is required"}
	case key != s.APIKey:
		return &APIError{401, "authentication_error", "invalid x-api-key"}
	case r.Header.Get("Anthropic-Version") == "":
		return &APIError{400, "invalid_request_error", "anthropic-version: header is required"}
	}
	if c.parseErr != nil {
		return &APIError{400, "invalid_request_error", "There was an error parsing the body of your request: " + c.parseErr.Error()}
	}
	switch {
	case c.req.Model == "":
		return &APIError{400, "invalid_request_error", "model: Field required"}
	case c.req.Messages == nil:
		return &APIError{400, "invalid_request_error", "messages: Field required"}
	case c.Path == PathMessages && c.req.MaxTokens == nil:
		return &APIError{400, "invalid_request_error", "max_tokens: Field required"}
	}
	return nil
}

// hold waits until the client of r goes away or the fake is closed.
func (s *Server) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closing:
	}
}

// complete fills in what m leaves to the fake for call c.
func (s *Server) complete(m Message, c *Call) Message {
	if m.ID == "" {
		s.mu.Lock()
		m.ID = fmt.Sprintf("msg_fake%06d", s.n)
		s.mu.Unlock()
	}
	if m.Model == "" {
		m.Model = c.Model
	}
	if m.Usage == (Usage{}) {
		m.Usage = Usage{InputTokens: estimate(c.Body), OutputTokens: m.outputWords()}
	}
	return m
}

// estimate is the fake's token count of a request body.
func estimate(body []byte) int64 { return int64(len(body)+3) / 4 }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, reqID string, e *APIError) {
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	typ := e.Type
	if typ == "" {
		typ = ErrorType(status)
	}
	writeJSON(w, status, map[string]any{
		"type":       "error",
		"error":      map[string]string{"type": typ, "message": e.Message},
		"request_id": reqID,
	})
}

// writeEvents writes a stream, flushing after each event.
func (s *Server) writeEvents(w http.ResponseWriter, r *http.Request, a Answer, events []Event) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	if f != nil {
		f.Flush()
	}
	for i, ev := range events {
		if a.Pace != nil {
			a.Pace(i)
		}
		if _, err := w.Write(ev.AppendSSE(nil)); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
	}
	if a.HoldOpen {
		s.hold(r)
	}
	if a.Cut {
		panic(http.ErrAbortHandler)
	}
}
