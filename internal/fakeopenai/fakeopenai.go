// Package fakeopenai is a stand-in for an OpenAI-compatible upstream, for
// tests: it speaks OpenAI's wire format (JSON and server-sent events),
// checks the bearer key, and records every request it receives. It serves
// chat completions, embeddings and the Responses API (see ResponsesAPI).
package fakeopenai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Server is a fake OpenAI-compatible upstream.
type Server struct {
	*httptest.Server
	// APIKey, when set, must arrive as "Authorization: Bearer APIKey".
	APIKey string
	// Responses serves /v1/responses and its resources; script its
	// model with Responses.SetHandler.
	Responses *ResponsesAPI

	mu       sync.Mutex
	requests []Request
	// Fail, when set, answers every request with this status and an
	// OpenAI error body.
	fail int
	// Delay is waited before answering.
	delay time.Duration
	// ChunkDelay is waited between stream chunks.
	chunkDelay time.Duration
	cancelled  int
	answer     func(Request) *Answer
	// closing is closed by Close, to end the waits of HoldHead and
	// HoldOpen answers whose client has not gone away.
	closing   chan struct{}
	closeOnce sync.Once
}

// Request is what the fake received.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	JSON   map[string]any
	// Done is closed when the request is over for the fake: it has
	// answered, or the client went away (cancelled its request or closed
	// its connection).
	Done <-chan struct{}
}

// Answer is an answer the fake gives instead of its own; see SetAnswer.
type Answer struct {
	// Status is the HTTP status; zero means 200.
	Status int
	// Header holds headers added to the answer.
	Header http.Header
	// Body is a JSON answer: a chat completion, embeddings, or an error
	// envelope (see ErrorAnswer).
	Body []byte
	// Events, when not nil, make the answer a server-sent event stream:
	// the data of each event, without "data: " and without the final
	// [DONE], which the fake adds.
	Events []string
	// TypedEvents writes Events as the Responses API does: each with an
	// "event:" line naming its "type", and no [DONE] at the end.
	TypedEvents bool
	// HoldHead makes the fake wait, before it answers anything, until
	// the client goes away.
	HoldHead bool
	// HoldOpen keeps a stream open after Events, without [DONE], until
	// the client goes away, as a model that stalls would.
	HoldOpen bool
	// Cut breaks the connection after Events, without ending the
	// stream, as a connection dropped mid-answer would.
	Cut bool
}

// New starts a fake upstream; it stops at the end of the test.
func New(t interface{ Cleanup(func()) }, apiKey string) *Server {
	s := &Server{APIKey: apiKey, closing: make(chan struct{})}
	s.Responses = NewResponsesAPI(s.closing, s.noteCancel)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Close ends the waits of held answers, then stops the server as
// httptest.Server.Close does.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.Server.Close()
}

// SetAnswer makes the fake answer every request that passed the key check
// with f's Answer instead of its own answers (SetFail and SetDelay then
// do not apply); nil restores them.
func (s *Server) SetAnswer(f func(Request) *Answer) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

// URL of the fake's OpenAI base, ending in /v1.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Requests returns what was received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Last returns the last request received; it fails if there is none.
func (s *Server) Last() Request {
	r := s.Requests()
	if len(r) == 0 {
		return Request{}
	}
	return r[len(r)-1]
}

// SetFail makes every answer an error with the given status (0: none).
func (s *Server) SetFail(status int) {
	s.mu.Lock()
	s.fail = status
	s.mu.Unlock()
}

// SetDelay sets the wait before answering and between stream chunks (and
// Responses API events).
func (s *Server) SetDelay(first, perChunk time.Duration) {
	s.mu.Lock()
	s.delay, s.chunkDelay = first, perChunk
	s.mu.Unlock()
	s.Responses.SetEventDelay(perChunk)
}

// Cancelled counts requests whose client went away before the answer
// ended.
func (s *Server) Cancelled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled
}

// Usage the fake reports: PromptTokens per request and one completion
// token per word.
const PromptTokens = 11

// RequestID is the X-Request-Id of every answer, as OpenAI sends one.
const RequestID = "req_fake_upstream"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", RequestID)
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body)) // for Responses
	var js map[string]any
	json.Unmarshal(body, &js)
	req := Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, JSON: js, Done: r.Context().Done()}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	fail, delay, chunkDelay, answer := s.fail, s.delay, s.chunkDelay, s.answer
	s.mu.Unlock()
	if s.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided")
		return
	}
	if answer != nil {
		s.write(w, r, answer(req))
		return
	}
	if fail != 0 {
		if fail == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "2")
		}
		writeError(w, fail, fmt.Sprintf("fake failure %d", fail))
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			s.noteCancel()
			return
		}
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		s.chat(w, r, js, chunkDelay)
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		embeddings(w, js)
	case strings.Contains(r.URL.Path, "/responses"):
		s.Responses.ServeHTTP(w, r)
	default:
		writeError(w, http.StatusNotFound, "no such path "+r.URL.Path)
	}
}

func (s *Server) noteCancel() {
	s.mu.Lock()
	s.cancelled++
	s.mu.Unlock()
}

// hold waits until the client of r goes away or the fake is closed.
func (s *Server) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
		s.noteCancel()
	case <-s.closing:
	}
}

// write sends an Answer.
func (s *Server) write(w http.ResponseWriter, r *http.Request, a *Answer) {
	if a.HoldHead {
		s.hold(r)
		return
	}
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	if a.Events == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(a.Body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(status)
	flusher := w.(http.Flusher)
	for _, e := range a.Events {
		var err error
		if a.TypedEvents {
			var ev struct{ Type string }
			json.Unmarshal([]byte(e), &ev)
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, e)
		} else {
			_, err = fmt.Fprintf(w, "data: %s\n\n", e)
		}
		if err != nil {
			s.noteCancel()
			return
		}
		flusher.Flush()
	}
	if a.HoldOpen {
		s.hold(r)
		return
	}
	if a.Cut {
		panic(http.ErrAbortHandler)
	}
	if !a.TypedEvents {
		io.WriteString(w, "data: [DONE]\n\n")
	}
}

// ErrorAnswer is an error answer as OpenAI sends it.
func ErrorAnswer(status int, message string) *Answer {
	typ, code := "invalid_request_error", any(nil)
	switch {
	case status == http.StatusTooManyRequests:
		typ, code = "requests", "rate_limit_exceeded"
	case status >= 500:
		typ = "server_error"
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": typ, "param": nil, "code": code}})
	return &Answer{Status: status, Body: b}
}

// StreamErrorEvent is the event an OpenAI-compatible server sends when it
// fails in the middle of a stream.
func StreamErrorEvent(message string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": "server_error", "param": nil, "code": nil}})
	return string(b)
}

// ChatAnswer is OpenAI's answer to the chat request req with text as the
// assistant's message and the given token counts: a chat completion or,
// for a stream, a role chunk, a chunk per word, a finish chunk and, when
// req asked for it (stream_options.include_usage), a usage chunk with
// empty choices; every chunk has the same id.
func ChatAnswer(req Request, text string, promptTokens, completionTokens int) *Answer {
	const id = "chatcmpl-fakereply"
	model, _ := req.JSON["model"].(string)
	usage := map[string]any{"prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens}
	if stream, _ := req.JSON["stream"].(bool); !stream {
		b, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "logprobs": nil, "finish_reason": "stop"}},
			"usage":   usage,
		})
		return &Answer{Body: b}
	}
	chunk := func(v map[string]any) string {
		v["id"], v["object"], v["created"], v["model"] = id, "chat.completion.chunk", 1700000000, model
		b, _ := json.Marshal(v)
		return string(b)
	}
	choice := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
	}
	events := []string{chunk(choice(map[string]any{"role": "assistant", "content": ""}, nil))}
	for i, word := range strings.Fields(text) {
		if i > 0 {
			word = " " + word
		}
		events = append(events, chunk(choice(map[string]any{"content": word}, nil)))
	}
	events = append(events, chunk(choice(map[string]any{}, "stop")))
	if so, _ := req.JSON["stream_options"].(map[string]any); so["include_usage"] == true {
		events = append(events, chunk(map[string]any{"choices": []any{}, "usage": usage}))
	}
	return &Answer{Events: events}
}

// EmbeddingsAnswer is OpenAI's answer to the embeddings request req: a
// small vector per input, and the given prompt token count.
func EmbeddingsAnswer(req Request, promptTokens int) *Answer {
	var inputs []any
	switch in := req.JSON["input"].(type) {
	case string:
		inputs = []any{in}
	case []any:
		inputs = in
	}
	data := make([]any, len(inputs))
	for i := range inputs {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": []float64{0.1, 0.2, float64(i)}}
	}
	b, _ := json.Marshal(map[string]any{"object": "list", "data": data, "model": req.JSON["model"],
		"usage": map[string]any{"prompt_tokens": promptTokens, "total_tokens": promptTokens}})
	return &Answer{Body: b}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil}})
}

// Reply is the text the fake answers to a chat: the model and the last
// user message.
func Reply(model, lastUser string) string {
	return "Hello from " + model + ": you said " + lastUser
}

func lastUser(js map[string]any) (text string, toolResult bool) {
	msgs, _ := js["messages"].([]any)
	for i := len(msgs) - 1; i >= 0; i-- {
		m, _ := msgs[i].(map[string]any)
		if m["role"] == "tool" && i == len(msgs)-1 {
			c, _ := m["content"].(string)
			return c, true
		}
		if m["role"] == "user" {
			switch c := m["content"].(type) {
			case string:
				return c, false
			case []any:
				for _, p := range c {
					if pm, _ := p.(map[string]any); pm["type"] == "text" {
						t, _ := pm["text"].(string)
						return t, false
					}
				}
			}
		}
	}
	return "", false
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request, js map[string]any, chunkDelay time.Duration) {
	model, _ := js["model"].(string)
	text, afterTool := lastUser(js)
	reply := Reply(model, text)
	if afterTool {
		reply = "The tool said: " + text
	}
	var toolCall map[string]any
	if tools, _ := js["tools"].([]any); len(tools) > 0 && !afterTool {
		fn, _ := tools[0].(map[string]any)["function"].(map[string]any)
		toolCall = map[string]any{"id": "call_1", "type": "function", "function": map[string]any{"name": fn["name"], "arguments": `{"city":"Paris"}`}}
		reply = ""
	}
	words := strings.Fields(reply)
	usage := map[string]any{"prompt_tokens": PromptTokens, "completion_tokens": len(words), "total_tokens": PromptTokens + len(words)}
	finish := "stop"
	if toolCall != nil {
		finish = "tool_calls"
		usage["completion_tokens"], usage["total_tokens"] = 5, PromptTokens+5
	}
	const id = "chatcmpl-fake"
	if stream, _ := js["stream"].(bool); !stream {
		msg := map[string]any{"role": "assistant", "content": reply}
		if toolCall != nil {
			msg["content"] = nil
			msg["tool_calls"] = []any{toolCall}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": id, "object": "chat.completion", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
			"usage":   usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	flusher := w.(http.Flusher)
	send := func(v map[string]any) bool {
		v["id"], v["object"], v["created"], v["model"] = id, "chat.completion.chunk", 1700000000, model
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		flusher.Flush()
		if chunkDelay > 0 {
			select {
			case <-time.After(chunkDelay):
			case <-r.Context().Done():
				return false
			}
		}
		return true
	}
	choice := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	ok := send(choice(map[string]any{"role": "assistant", "content": ""}, nil))
	if toolCall != nil && ok {
		fn := toolCall["function"].(map[string]any)
		ok = send(choice(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": "call_1", "type": "function", "function": map[string]any{"name": fn["name"], "arguments": ""}}}}, nil)) &&
			send(choice(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "function": map[string]any{"arguments": fn["arguments"]}}}}, nil))
	}
	for i, word := range words {
		if !ok {
			break
		}
		if i > 0 {
			word = " " + word
		}
		ok = send(choice(map[string]any{"content": word}, nil))
	}
	if ok {
		ok = send(choice(map[string]any{}, finish))
	}
	if so, _ := js["stream_options"].(map[string]any); ok && so["include_usage"] == true {
		ok = send(map[string]any{"choices": []any{}, "usage": usage})
	}
	if !ok {
		s.noteCancel()
		return
	}
	io.WriteString(w, "data: [DONE]\n\n")
}

func embeddings(w http.ResponseWriter, js map[string]any) {
	var inputs []any
	switch in := js["input"].(type) {
	case string:
		inputs = []any{in}
	case []any:
		inputs = in
	}
	data := make([]any, len(inputs))
	for i := range inputs {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": []float64{0.1, 0.2, float64(i)}}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": js["model"],
		"usage": map[string]any{"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
