// Package azuretest is a fake Azure OpenAI endpoint for tests, written from
// Azure OpenAI's public REST reference. It checks what the real service
// checks — the route /openai/deployments/{deployment}/chat/completions
// (or /embeddings), a known api-version query parameter, and the api-key
// header — and answers as Azure does, including its quirks: a first
// stream chunk with an empty id carrying only prompt_filter_results, and
// content_filter_results in choices.
//
// Its default model (Echo) answers "You said: …", calls the first tool
// offered, and answers "The tool said: …" after a tool result.
//
// It also serves the Responses API as Azure's v1 API does, under
// /openai/v1/responses (no deployment in the path: the body's "model"
// names it; no api-version needed), with the api-key header: Server's
// Responses field, a fakeopenai.ResponsesAPI, answers once the checks
// pass.
package azuretest

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

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// Server is a fake Azure OpenAI resource. Set its fields before the first
// request.
type Server struct {
	*httptest.Server
	// APIKey is the key the api-key header must hold.
	APIKey string
	// Deployments, when non-empty, are the only deployments that exist.
	Deployments []string
	// Handler answers a call that passed the checks; nil means Echo.
	Handler func(*Call) *Reply
	// Responses answers Responses API calls that passed the checks;
	// script it with Responses.SetHandler.
	Responses *fakeopenai.ResponsesAPI

	mu    sync.Mutex
	calls []*Call
	// closing is closed by Close, to end the waits of held answers whose
	// client has not gone away.
	closing   chan struct{}
	closeOnce sync.Once
}

// Call is a request the fake received.
type Call struct {
	// Operation is "chat/completions", "embeddings" or, for the
	// Responses API, "responses" (create), "responses/{id}" or
	// "responses/{id}/input_items" (with Method GET or DELETE).
	Operation  string
	Method     string
	Deployment string // for a Responses create, the body's model
	APIVersion string
	Header     http.Header
	Body       []byte
	// Done is closed when the call is over for the fake: it has
	// answered, or the client went away (cancelled its request or closed
	// its connection).
	Done <-chan struct{}
}

// Reply is the fake's answer.
type Reply struct {
	Status int // zero means 200
	Header http.Header
	// Body is the JSON answer; Events, for a stream, the data of each
	// server-sent event (without "data: " and the final [DONE]).
	Body   []byte
	Events []string
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

// NewServer starts a fake that accepts the key "azure-test-key". Close it
// when done.
func NewServer() *Server {
	s := &Server{APIKey: "azure-test-key", closing: make(chan struct{})}
	s.Responses = fakeopenai.NewResponsesAPI(s.closing, nil)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close ends the waits of held answers, then stops the server as
// httptest.Server.Close does.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.Server.Close()
}

// hold waits until the client of r goes away or the fake is closed.
func (s *Server) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.closing:
	}
}

// Calls returns the calls received so far.
func (s *Server) Calls() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Call(nil), s.calls...)
}

// LastCall returns the latest call, or nil.
func (s *Server) LastCall() *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return nil
	}
	return s.calls[len(s.calls)-1]
}

// apiVersions are versions the fake knows: GA and preview versions that
// accept stream_options.
var apiVersions = map[string]bool{
	"2024-06-01": true, "2024-10-21": true, "2024-09-01-preview": true,
	"2024-10-01-preview": true, "2024-12-01-preview": true, "2025-01-01-preview": true,
}

// Error is an error answer as Azure sends it.
func Error(status int, code, message string) *Reply {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": message, "param": nil, "type": nil}})
	return &Reply{Status: status, Body: b}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasPrefix(r.URL.Path, "/openai/v1/responses") {
		s.serveResponses(w, r, body)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	dep, op, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || (op != "chat/completions" && op != "embeddings") || r.Method != http.MethodPost {
		write(w, Error(http.StatusNotFound, "404", "Resource not found"))
		return
	}
	// Azure checks the key before anything else.
	if r.Header.Get("api-key") != s.APIKey || s.APIKey == "" {
		write(w, Error(http.StatusUnauthorized, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."))
		return
	}
	v := r.URL.Query().Get("api-version")
	if v == "" {
		write(w, Error(http.StatusNotFound, "404", "Resource not found"))
		return
	}
	if !apiVersions[v] {
		write(w, Error(http.StatusNotFound, "404", "Resource not found"))
		return
	}
	if len(s.Deployments) > 0 && !contains(s.Deployments, dep) {
		write(w, Error(http.StatusNotFound, "DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."))
		return
	}
	if !json.Valid(body) {
		write(w, Error(http.StatusBadRequest, "BadRequest", "Invalid JSON body"))
		return
	}
	c := &Call{Operation: op, Deployment: dep, APIVersion: v, Header: r.Header.Clone(), Body: body, Done: r.Context().Done()}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	h := s.Handler
	if h == nil {
		h = Echo
	}
	reply := h(c)
	if reply.HoldHead {
		s.hold(r)
		return
	}
	if reply.Events != nil && (reply.Status == 0 || reply.Status == 200) {
		w.Header().Set("apim-request-id", "fake-apim-id")
		for k, v := range reply.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		f, _ := w.(http.Flusher)
		for _, e := range reply.Events {
			fmt.Fprintf(w, "data: %s\n\n", e)
			if f != nil {
				f.Flush()
			}
			time.Sleep(time.Millisecond)
		}
		if reply.HoldOpen {
			s.hold(r)
			return
		}
		if reply.Cut {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "data: [DONE]\n\n")
		return
	}
	write(w, reply)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func write(w http.ResponseWriter, reply *Reply) {
	w.Header().Set("X-Request-Id", "fake-request-id")
	for k, v := range reply.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(reply.Body)
}

type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name       string `json:"name"`
			Parameters struct {
				Required []string `json:"required"`
			} `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Input json.RawMessage `json:"input"`
}

func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct{ Text string }
	json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

var filter = map[string]any{"hate": map[string]any{"filtered": false, "severity": "safe"}}

// Echo is the fake's default model; see the package comment. Its answers
// name the deployment as the model, as Azure does (with its own model
// name; the gateway does not rely on it).
func Echo(c *Call) *Reply {
	var req chatRequest
	json.Unmarshal(c.Body, &req)
	if c.Operation == "embeddings" {
		return embeddings(&req, -1)
	}
	if len(req.Messages) == 0 {
		return Error(http.StatusBadRequest, "BadRequest", "'messages' is a required property")
	}
	last := req.Messages[len(req.Messages)-1]
	var content *string
	var toolCalls []any
	finish := "stop"
	switch {
	case last.Role == "tool":
		s := "The tool said: " + text(last.Content)
		content = &s
	case len(req.Tools) > 0:
		args := map[string]string{}
		for _, r := range req.Tools[0].Function.Parameters.Required {
			args[r] = "test"
		}
		a, _ := json.Marshal(args)
		toolCalls = []any{map[string]any{"id": "call_fake1", "type": "function", "function": map[string]any{"name": req.Tools[0].Function.Name, "arguments": string(a)}}}
		finish = "tool_calls"
	default:
		var lastUser string
		for _, m := range req.Messages {
			if m.Role == "user" {
				lastUser = text(m.Content)
			}
		}
		s := "You said: " + lastUser
		content = &s
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(strings.Fields(text(m.Content)))
	}
	completion := 5
	if content != nil {
		completion = len(strings.Fields(*content))
	}
	return answer(&req, content, toolCalls, finish, prompt, completion)
}

// ChatReply is Azure's answer to the chat call c with text as the
// assistant's message and the given token counts: a chat completion or,
// for a stream, Azure's prompt-filter chunk (with an empty id), a role
// chunk, a chunk per word, a finish chunk and, when c asked for it
// (stream_options.include_usage), a usage chunk with empty choices.
func ChatReply(c *Call, text string, promptTokens, completionTokens int) *Reply {
	var req chatRequest
	json.Unmarshal(c.Body, &req)
	return answer(&req, &text, nil, "stop", promptTokens, completionTokens)
}

// StreamError is the event Azure sends when it fails in the middle of a
// stream.
func StreamError(code, message string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": message, "param": nil, "type": nil}})
	return string(b)
}

// answer is the chat completion (or stream) of content or toolCalls.
func answer(req *chatRequest, content *string, toolCalls []any, finish string, prompt, completion int) *Reply {
	usage := map[string]int{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
	const id = "chatcmpl-AzureFake0000000000000000"
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": content}
		if toolCalls != nil {
			msg["tool_calls"] = toolCalls
		}
		b, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_fake",
			"prompt_filter_results": []any{map[string]any{"prompt_index": 0, "content_filter_results": filter}},
			"choices":               []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish, "logprobs": nil, "content_filter_results": filter}},
			"usage":                 usage,
		})
		return &Reply{Body: b}
	}
	chunk := func(choices []any, extra map[string]any) string {
		m := map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_fake", "choices": choices}
		for k, v := range extra {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	choice := func(delta map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": nil, "content_filter_results": map[string]any{}}}
	}
	// Azure's first event: prompt filter results, with an empty id.
	events := []string{`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}`}
	events = append(events, chunk(choice(map[string]any{"role": "assistant", "content": ""}, nil), nil))
	if content != nil {
		for _, w := range strings.SplitAfter(*content, " ") {
			events = append(events, chunk(choice(map[string]any{"content": w}, nil), nil))
		}
	}
	for i, tc := range toolCalls {
		m := tc.(map[string]any)
		f := m["function"].(map[string]any)
		args := f["arguments"].(string)
		events = append(events,
			chunk(choice(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": m["id"], "type": "function", "function": map[string]any{"name": f["name"], "arguments": ""}}}}, nil), nil),
			chunk(choice(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": args}}}}, nil), nil))
	}
	events = append(events, chunk(choice(map[string]any{}, finish), nil))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		events = append(events, chunk([]any{}, map[string]any{"usage": usage}))
	}
	return &Reply{Events: events}
}

// EmbeddingsReply is Azure's answer to the embeddings call c: a small
// vector per input, and the given prompt token count.
func EmbeddingsReply(c *Call, promptTokens int) *Reply {
	var req chatRequest
	json.Unmarshal(c.Body, &req)
	return embeddings(&req, promptTokens)
}

// embeddings answers req with tokens as its usage; a negative count
// means one token per word.
func embeddings(req *chatRequest, tokens int) *Reply {
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if json.Unmarshal(req.Input, &inputs) != nil || len(inputs) == 0 {
		return Error(http.StatusBadRequest, "BadRequest", "'input' is invalid")
	}
	data := make([]any, len(inputs))
	words := 0
	for i, s := range inputs {
		words += len(strings.Fields(s))
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": []float64{float64(len(s)), 0.5, -0.25}}
	}
	if tokens < 0 {
		tokens = words
	}
	b, _ := json.Marshal(map[string]any{"object": "list", "data": data, "model": "text-embedding-3-small", "usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens}})
	return &Reply{Body: b}
}

// v1Versions are the api-version values the v1 API accepts; it needs
// none.
var v1Versions = map[string]bool{"": true, "preview": true, "v1": true}

// serveResponses checks a Responses API call as Azure's v1 API does, then
// lets s.Responses answer it.
func (s *Server) serveResponses(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get("api-key") != s.APIKey || s.APIKey == "" {
		write(w, Error(http.StatusUnauthorized, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."))
		return
	}
	v := r.URL.Query().Get("api-version")
	if !v1Versions[v] {
		write(w, Error(http.StatusBadRequest, "BadRequest", "API version not supported"))
		return
	}
	c := &Call{Operation: strings.TrimPrefix(r.URL.Path, "/openai/v1/"), Method: r.Method, APIVersion: v,
		Header: r.Header.Clone(), Body: body, Done: r.Context().Done()}
	if c.Operation == "responses" && r.Method == http.MethodPost {
		var req struct{ Model string }
		if json.Unmarshal(body, &req) != nil {
			write(w, Error(http.StatusBadRequest, "BadRequest", "Invalid JSON body"))
			return
		}
		if len(s.Deployments) > 0 && !contains(s.Deployments, req.Model) {
			write(w, Error(http.StatusNotFound, "DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."))
			return
		}
		c.Deployment = req.Model
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	w.Header().Set("apim-request-id", "fake-apim-id")
	w.Header().Set("X-Request-Id", "fake-request-id")
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.Responses.ServeHTTP(w, r)
}

// ErrorAnswer is Error as a Responses API answer, for a
// fakeopenai.Turn's Error.
func ErrorAnswer(status int, code, message string) *fakeopenai.Answer {
	r := Error(status, code, message)
	return &fakeopenai.Answer{Status: r.Status, Body: r.Body}
}
