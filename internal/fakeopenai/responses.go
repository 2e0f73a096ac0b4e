package fakeopenai

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ResponsesAPI is a fake of OpenAI's Responses API, written from its
// public reference:
//
//	POST   …/responses                     create (JSON, or SSE with stream)
//	GET    …/responses/{id}                a stored response
//	DELETE …/responses/{id}                {"id","object":"response.deleted","deleted":true}
//	GET    …/responses/{id}/input_items    {"object":"list","data":[…],…}
//
// It stores every response created without "store": false, so that
// those three work and "previous_response_id" continues a conversation;
// an unknown id is a 404 ("Response with id '…' not found."), an unknown
// previous_response_id a 400 with code previous_response_not_found, as
// OpenAI answers. A stream is the documented event sequence, each event
// with an "event:" line and a sequence_number, ending with
// response.completed (or response.incomplete, response.failed) and no
// [DONE].
//
// What the model answers is a Turn, from the handler set with SetHandler;
// without one, DefaultTurn. Server mounts one as its Responses field;
// azuretest mounts one under /openai/v1.
type ResponsesAPI struct {
	closing  <-chan struct{}
	onCancel func()

	mu      sync.Mutex
	handler func(*ResponsesRequest) *Turn
	delay   time.Duration // between stream events
	stored  map[string]*storedResponse
	next    int // numbers ids
}

// storedResponse is what the fake keeps of a response.
type storedResponse struct {
	response map[string]any // the final response object
	input    []any          // the request's input items, with ids
	// history is the conversation up to and including this response:
	// the previous response's history, this input and this output.
	history []any
}

// NewResponsesAPI returns a fake Responses API with an empty store.
// Waits of held streams end when closing is closed; onCancel, when not
// nil, is called for each answer whose client went away before its end.
func NewResponsesAPI(closing <-chan struct{}, onCancel func()) *ResponsesAPI {
	if onCancel == nil {
		onCancel = func() {}
	}
	return &ResponsesAPI{closing: closing, onCancel: onCancel, stored: map[string]*storedResponse{}}
}

// SetHandler makes f decide what the model answers to each create
// request; nil restores DefaultTurn.
func (a *ResponsesAPI) SetHandler(f func(*ResponsesRequest) *Turn) {
	a.mu.Lock()
	a.handler = f
	a.mu.Unlock()
}

// SetEventDelay sets the wait between stream events.
func (a *ResponsesAPI) SetEventDelay(d time.Duration) {
	a.mu.Lock()
	a.delay = d
	a.mu.Unlock()
}

// Stored returns the stored response object with id, as GET would.
func (a *ResponsesAPI) Stored(id string) (map[string]any, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.stored[id]
	if !ok {
		return nil, false
	}
	return st.response, true
}

// ResponsesRequest is a create request as the fake parsed it.
type ResponsesRequest struct {
	// Request is the request as received.
	Request
	Model              string
	Stream             bool
	Store              bool // "store", true unless the request says false
	PreviousResponseID string
	// Input is the request's own input items: a string input becomes
	// one user message; every item has its "type".
	Input []map[string]any
	// Conversation is the items of the previous responses (their
	// inputs and outputs, oldest first) followed by Input.
	Conversation []map[string]any
	// Tools is the request's "tools".
	Tools []map[string]any
}

// FunctionCallOutput returns the output and call_id of the last input
// item when it is a function_call_output: the client ran a tool and
// wants the model's next step.
func (r *ResponsesRequest) FunctionCallOutput() (output, callID string, ok bool) {
	if len(r.Input) == 0 {
		return "", "", false
	}
	last := r.Input[len(r.Input)-1]
	if last["type"] != "function_call_output" {
		return "", "", false
	}
	callID, _ = last["call_id"].(string)
	switch o := last["output"].(type) {
	case string:
		output = o
	case []any:
		for _, p := range o {
			if pm, _ := p.(map[string]any); pm != nil {
				t, _ := pm["text"].(string)
				output += t
			}
		}
	}
	return output, callID, true
}

// UserText returns the text of the last user message of the
// conversation.
func (r *ResponsesRequest) UserText() string {
	for i := len(r.Conversation) - 1; i >= 0; i-- {
		it := r.Conversation[i]
		if it["type"] != "message" || it["role"] != "user" {
			continue
		}
		var b strings.Builder
		parts, _ := it["content"].([]any)
		for _, p := range parts {
			if pm, _ := p.(map[string]any); pm["type"] == "input_text" {
				t, _ := pm["text"].(string)
				b.WriteString(t)
			}
		}
		return b.String()
	}
	return ""
}

// FunctionCall is a function_call output item.
type FunctionCall struct {
	// Name is the function's name; Arguments its JSON arguments, e.g.
	// {"cmd":"echo hi"} for Codex's exec_command.
	Name      string
	Arguments string
	// CallID is the call's id; empty means one the fake makes up.
	CallID string
}

// ResponsesUsage is the usage a response reports.
type ResponsesUsage struct {
	InputTokens     int // every input token, the cached ones included
	CachedTokens    int // input_tokens_details.cached_tokens
	OutputTokens    int // every output token, the reasoning ones included
	ReasoningTokens int // output_tokens_details.reasoning_tokens
}

// Turn is what the fake model answers to one create request.
type Turn struct {
	// Text, when not empty, is an assistant message item with one
	// output_text part (streamed a word per delta).
	Text string
	// Calls are function_call items, after the message.
	Calls []FunctionCall
	// Usage is the response's usage; nil means PromptTokens in and one
	// output token per word of Text (five per call).
	Usage *ResponsesUsage
	// Incomplete, when not empty, ends the response with status
	// "incomplete" and this reason (e.g. "max_output_tokens").
	Incomplete string
	// FailCode and FailMessage, when FailCode is not empty, end the
	// response with status "failed" (response.failed) and this error.
	FailCode, FailMessage string
	// Error, when not nil, is answered instead of a response (see
	// ErrorAnswer); nothing is stored.
	Error *Answer
	// Header holds headers added to the answer.
	Header http.Header

	// For a stream: ErrorAfter, when positive, sends an "error" event
	// (ErrorCode, ErrorMessage) after that many events and ends the
	// stream; StallAfter keeps the stream open after that many events
	// until the client goes away; CutAfter breaks the connection after
	// that many. HoldHead sends nothing until the client goes away.
	ErrorAfter              int
	ErrorCode, ErrorMessage string
	StallAfter              int
	CutAfter                int
	HoldHead                bool
}

// DefaultTurn is the fake model's own answer, as the chat fake's: after
// a function_call_output, "The tool said: <output>"; when the request
// offers function tools, a call of the first with {"city":"Paris"};
// else Reply(model, the last user text).
func DefaultTurn(r *ResponsesRequest) *Turn {
	if out, _, ok := r.FunctionCallOutput(); ok {
		return &Turn{Text: "The tool said: " + out}
	}
	for _, t := range r.Tools {
		if t["type"] == "function" {
			name, _ := t["name"].(string)
			return &Turn{Calls: []FunctionCall{{Name: name, Arguments: `{"city":"Paris"}`}}}
		}
	}
	return &Turn{Text: Reply(r.Model, r.UserText())}
}

// ServeHTTP serves the Responses API at any path ending in /responses
// (or /responses/{id}, /responses/{id}/input_items).
func (a *ResponsesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := strings.LastIndex(r.URL.Path, "/responses")
	if i < 0 {
		writeError(w, http.StatusNotFound, "no such path "+r.URL.Path)
		return
	}
	id, sub, _ := strings.Cut(strings.TrimPrefix(r.URL.Path[i+len("/responses"):], "/"), "/")
	switch {
	case id == "" && r.Method == http.MethodPost:
		a.create(w, r)
	case id != "" && sub == "" && r.Method == http.MethodGet:
		a.get(w, id)
	case id != "" && sub == "" && r.Method == http.MethodDelete:
		a.delete(w, id)
	case id != "" && sub == "input_items" && r.Method == http.MethodGet:
		a.inputItems(w, r, id)
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
	}
}

// lookup returns the stored response id, or writes OpenAI's 404.
func (a *ResponsesAPI) lookup(w http.ResponseWriter, id string) *storedResponse {
	a.mu.Lock()
	st := a.stored[id]
	a.mu.Unlock()
	if st == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Response with id '%s' not found.", id))
	}
	return st
}

func (a *ResponsesAPI) get(w http.ResponseWriter, id string) {
	if st := a.lookup(w, id); st != nil {
		writeJSON(w, st.response)
	}
}

func (a *ResponsesAPI) delete(w http.ResponseWriter, id string) {
	if a.lookup(w, id) == nil {
		return
	}
	a.mu.Lock()
	delete(a.stored, id)
	a.mu.Unlock()
	writeJSON(w, map[string]any{"id": id, "object": "response.deleted", "deleted": true})
}

// inputItems lists a response's input items: order desc (the default)
// or asc, limit 1…100 (default 20), after an item id.
func (a *ResponsesAPI) inputItems(w http.ResponseWriter, r *http.Request, id string) {
	st := a.lookup(w, id)
	if st == nil {
		return
	}
	q := r.URL.Query()
	items := append([]any(nil), st.input...)
	switch q.Get("order") {
	case "", "desc":
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	case "asc":
	default:
		writeParamError(w, "order", fmt.Sprintf("Invalid value: '%s'. Value must be one of 'asc' or 'desc'.", q.Get("order")))
		return
	}
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeParamError(w, "limit", "Invalid 'limit': integer between 1 and 100 expected.")
			return
		}
		limit = n
	}
	if after := q.Get("after"); after != "" {
		for i, it := range items {
			if it.(map[string]any)["id"] == after {
				items = items[i+1:]
				break
			}
		}
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	var first, last any
	if len(items) > 0 {
		first, last = items[0].(map[string]any)["id"], items[len(items)-1].(map[string]any)["id"]
	}
	writeJSON(w, map[string]any{"object": "list", "data": items, "first_id": first, "last_id": last, "has_more": more})
}

// create answers POST /responses.
func (a *ResponsesAPI) create(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var js map[string]any
	if err := json.Unmarshal(body, &js); err != nil {
		writeParamError(w, "", "We could not parse the JSON body of your request.")
		return
	}
	req := &ResponsesRequest{Request: Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, JSON: js, Done: r.Context().Done()}, Store: true}
	req.Model, _ = js["model"].(string)
	req.Stream, _ = js["stream"].(bool)
	if s, ok := js["store"].(bool); ok {
		req.Store = s
	}
	req.PreviousResponseID, _ = js["previous_response_id"].(string)
	if req.Model == "" {
		writeParamError(w, "model", "Missing required parameter: 'model'.")
		return
	}
	input, msg := inputItems(js["input"])
	if msg != "" {
		writeParamError(w, "input", msg)
		return
	}
	req.Input = input
	if tools, _ := js["tools"].([]any); tools != nil {
		for _, t := range tools {
			if tm, ok := t.(map[string]any); ok {
				req.Tools = append(req.Tools, tm)
			}
		}
	}
	var history []any
	if req.PreviousResponseID != "" {
		a.mu.Lock()
		prev := a.stored[req.PreviousResponseID]
		a.mu.Unlock()
		if prev == nil {
			writeCodedError(w, http.StatusBadRequest, "previous_response_id", "previous_response_not_found",
				fmt.Sprintf("Previous response with id '%s' not found.", req.PreviousResponseID))
			return
		}
		history = prev.history
	}
	for _, it := range history {
		req.Conversation = append(req.Conversation, it.(map[string]any))
	}
	req.Conversation = append(req.Conversation, req.Input...)

	a.mu.Lock()
	handler, delay := a.handler, a.delay
	a.next++
	n := a.next
	a.mu.Unlock()
	if handler == nil {
		handler = DefaultTurn
	}
	turn := handler(req)
	if turn == nil {
		turn = DefaultTurn(req)
	}
	if turn.HoldHead {
		a.hold(r)
		return
	}
	for k, v := range turn.Header {
		w.Header()[k] = v
	}
	if turn.Error != nil {
		writeAnswer(w, turn.Error)
		return
	}
	b := newBuilder(req, turn, n)
	final := b.final()
	if req.Store {
		a.store(req, b, final, history)
	}
	if !req.Stream {
		writeJSON(w, final)
		return
	}
	a.stream(w, r, turn, b.events(final), delay)
}

// store keeps a created response for GET, DELETE, input_items and
// previous_response_id.
func (a *ResponsesAPI) store(req *ResponsesRequest, b *builder, final map[string]any, history []any) {
	st := &storedResponse{response: final}
	for _, it := range req.Input {
		st.input = append(st.input, withID(it, b))
	}
	st.history = append(append([]any(nil), history...), st.input...)
	st.history = append(st.history, b.output...)
	a.mu.Lock()
	a.stored[b.id] = st
	a.mu.Unlock()
}

// withID returns item with an id, as input_items lists it.
func withID(item map[string]any, b *builder) map[string]any {
	if _, ok := item["id"]; ok {
		return item
	}
	c := make(map[string]any, len(item)+1)
	for k, v := range item {
		c[k] = v
	}
	prefix := "msg"
	if t, _ := item["type"].(string); t != "message" {
		prefix = strings.SplitN(t, "_", 2)[0]
	}
	c["id"] = b.newID(prefix)
	return c
}

// inputItems normalizes a request's input: a string is one user message,
// an item without "type" is a message, and a message's string content is
// one input_text (or output_text, for the assistant) part. A malformed
// input is reported by OpenAI's message.
func inputItems(v any) (items []map[string]any, errMsg string) {
	switch in := v.(type) {
	case nil:
		return nil, ""
	case string:
		return []map[string]any{{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": in}}}}, ""
	case []any:
		items = make([]map[string]any, 0, len(in))
		for i, x := range in {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Sprintf("Invalid type for 'input[%d]': expected an object.", i)
			}
			c := make(map[string]any, len(m)+1)
			for k, v := range m {
				c[k] = v
			}
			if _, ok := c["type"]; !ok {
				c["type"] = "message"
			}
			if s, ok := c["content"].(string); ok && c["type"] == "message" {
				part := "input_text"
				if c["role"] == "assistant" {
					part = "output_text"
				}
				c["content"] = []any{map[string]any{"type": part, "text": s}}
			}
			items = append(items, c)
		}
		return items, ""
	default:
		return nil, "Invalid type for 'input': expected a string or an array of items."
	}
}

// stream writes events as server-sent events with their "event:" lines,
// shaped by turn's ErrorAfter, StallAfter and CutAfter (which may equal
// the number of events: after the last).
func (a *ResponsesAPI) stream(w http.ResponseWriter, r *http.Request, turn *Turn, events []map[string]any, delay time.Duration) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	for i := 0; i <= len(events); i++ {
		var e map[string]any
		switch {
		case i == turn.ErrorAfter && i > 0:
			e = map[string]any{"type": "error", "code": orDefault(turn.ErrorCode, "server_error"), "message": turn.ErrorMessage, "param": nil, "sequence_number": i}
		case i == turn.StallAfter && i > 0:
			a.hold(r)
			return
		case i == turn.CutAfter && i > 0:
			panic(http.ErrAbortHandler)
		case i == len(events):
			return
		default:
			e = events[i]
		}
		if i > 0 && delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				a.onCancel()
				return
			}
		}
		if err := writeEvent(w, e); err != nil {
			a.onCancel()
			return
		}
		flusher.Flush()
		if e["type"] == "error" {
			return
		}
	}
}

func writeEvent(w io.Writer, e map[string]any) error {
	b, _ := json.Marshal(e)
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e["type"], b)
	return err
}

// hold waits until the client of r goes away or the fake is closed.
func (a *ResponsesAPI) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
		a.onCancel()
	case <-a.closing:
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeAnswer writes a JSON Answer.
func writeAnswer(w http.ResponseWriter, a *Answer) {
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(a.Body)
}

func writeParamError(w http.ResponseWriter, param, msg string) {
	writeCodedError(w, http.StatusBadRequest, param, "", msg)
}

// writeCodedError writes an invalid_request_error naming param and code
// (null when empty).
func writeCodedError(w http.ResponseWriter, status int, param, code, msg string) {
	var p, c any
	if param != "" {
		p = param
	}
	if code != "" {
		c = code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": p, "code": c}})
}
