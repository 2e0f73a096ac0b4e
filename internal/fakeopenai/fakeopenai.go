// Package fakeopenai is a stand-in for an OpenAI-compatible upstream, for
// tests: it speaks OpenAI's wire format (JSON and server-sent events),
// checks the bearer key, and records every request it receives.
package fakeopenai

import (
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
}

// Request is what the fake received.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// New starts a fake upstream; it stops at the end of the test.
func New(t interface{ Cleanup(func()) }, apiKey string) *Server {
	s := &Server{APIKey: apiKey}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
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

// SetDelay sets the wait before answering and between stream chunks.
func (s *Server) SetDelay(first, perChunk time.Duration) {
	s.mu.Lock()
	s.delay, s.chunkDelay = first, perChunk
	s.mu.Unlock()
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
	var js map[string]any
	json.Unmarshal(body, &js)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, JSON: js})
	fail, delay, chunkDelay := s.fail, s.delay, s.chunkDelay
	s.mu.Unlock()
	if s.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided")
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
	default:
		writeError(w, http.StatusNotFound, "no such path "+r.URL.Path)
	}
}

func (s *Server) noteCancel() {
	s.mu.Lock()
	s.cancelled++
	s.mu.Unlock()
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
