// Package bedrocktest is a fake Amazon Bedrock runtime endpoint for tests,
// written from Bedrock's public API reference. It checks what the real
// service checks before answering — the route
// (POST /model/{modelId}/converse, /converse-stream, /invoke,
// /invoke-with-response-stream, /count-tokens), a SigV4 Authorization
// header for the bedrock service with the expected access key and
// region (and, given the secret, a valid signature) — and answers
// Converse JSON, ConverseStream events in the AWS event-stream framing,
// and, for Anthropic's Messages API on InvokeModel, Anthropic's Message
// JSON or its events as InvokeModelWithResponseStream chunks (see
// Server.Messages).
//
// By default it plays a small deterministic model (see Echo and
// EchoMessages) that can also call tools, so that clients can be tested
// end to end.
package bedrocktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Operations, as in Call.Operation.
const (
	OpConverse       = "converse"
	OpConverseStream = "converse-stream"
	OpInvoke         = "invoke"
	OpInvokeStream   = "invoke-with-response-stream"
	OpCountTokens    = "count-tokens"
)

// Server is a fake Bedrock runtime endpoint. Set its fields before the
// first request.
type Server struct {
	*httptest.Server
	// Region and AccessKeyID are what the SigV4 credential scope must
	// name. SecretAccessKey, when set, makes the fake verify signatures.
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	// Handler answers a call that passed the checks; nil means Echo.
	// Anthropic Messages calls go to Messages instead.
	Handler func(*Call) *Reply
	// Messages answers the Anthropic Messages calls that passed the
	// checks: invoke and invoke-with-response-stream calls whose body
	// has an anthropic_version, and count-tokens calls. nil means
	// EchoMessages.
	Messages func(*MessagesCall) *MessagesReply
	// Betas are the anthropic_beta flags the fake accepts (others are
	// refused with "invalid beta flag", as Bedrock does); nil means
	// KnownBetas.
	Betas []string
	// Latency delays every answer: a real Bedrock never answers
	// instantly, and the SDK's stream reader races with an instant one.
	Latency time.Duration

	mu    sync.Mutex
	calls []*Call
	// closing is closed by Close, to end the waits of held answers whose
	// client has not gone away.
	closing   chan struct{}
	closeOnce sync.Once
}

// Call is a request the fake received.
type Call struct {
	Operation string // OpConverse, OpConverseStream, OpInvoke, OpInvokeStream or OpCountTokens
	ModelID   string // decoded: "anthropic.claude-3-haiku-20240307-v1:0", or an ARN
	Path      string // as sent: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
	Header    http.Header
	Body      []byte
	// Done is closed when the call is over for the fake: it has
	// answered, or the client went away (cancelled its request or closed
	// its connection).
	Done <-chan struct{}
}

// Reply is the fake's answer to a call.
type Reply struct {
	// Status is the HTTP status; zero means 200.
	Status int
	// ErrorType, for an error answer, is sent as X-Amzn-ErrorType (e.g.
	// "ThrottlingException") with Body as the error JSON.
	ErrorType string
	// Body is the answer: Converse or InvokeModel JSON, or error JSON. For
	// a ConverseStream call without Events, a Converse answer in Body is
	// turned into events by StreamEvents.
	Body []byte
	// Events are a ConverseStream answer.
	Events []Event
	// HoldOpen keeps a stream open after Events until the client goes
	// away, as a model that is slow to go on would.
	HoldOpen bool
	// Cut breaks the connection after Events, without ending the
	// stream, as a connection dropped mid-answer would.
	Cut bool
	// HoldHead makes the fake wait, before it answers anything, until
	// the client goes away.
	HoldHead bool
	// Header holds headers added to the answer; they replace the fake's
	// own (such as X-Amzn-Requestid).
	Header http.Header
}

// Event is one frame of a ConverseStream answer.
type Event struct {
	// Type is the event type (messageStart, contentBlockStart,
	// contentBlockDelta, contentBlockStop, messageStop, metadata) or, for
	// an exception, the exception type (e.g. throttlingException).
	Type      string          `json:"type"`
	Exception bool            `json:"exception,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// NewServer starts a fake with region us-east-1 and access key id
// "AKIDTEST". Close it when done.
func NewServer() *Server {
	s := &Server{Region: "us-east-1", AccessKeyID: "AKIDTEST", Latency: 5 * time.Millisecond, closing: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// NewTLSServer is NewServer over HTTPS (Bedrock API keys, sent as bearer
// tokens, are only sent over HTTPS); use the server's Client.
func NewTLSServer() *Server {
	s := &Server{Region: "us-east-1", AccessKeyID: "AKIDTEST", Latency: 5 * time.Millisecond, closing: make(chan struct{})}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
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

// Error is an error answer as Bedrock sends it.
func Error(status int, errorType, message string) *Reply {
	b, _ := json.Marshal(map[string]string{"message": message})
	return &Reply{Status: status, ErrorType: errorType, Body: b}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	// The model id is one percent-encoded path segment.
	path := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(path, "/model/")
	seg, op, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || r.Method != http.MethodPost {
		writeReply(w, Error(http.StatusNotFound, "UnknownOperationException", "no such operation: "+r.Method+" "+path))
		return
	}
	model, err := url.PathUnescape(seg)
	if err != nil || model == "" {
		writeReply(w, Error(http.StatusBadRequest, "ValidationException", "malformed model id"))
		return
	}
	switch op {
	case OpConverse, OpConverseStream, OpInvoke, OpInvokeStream, OpCountTokens:
	default:
		writeReply(w, Error(http.StatusNotFound, "UnknownOperationException", "no such operation: "+op))
		return
	}
	if reply := s.checkAuth(r, body); reply != nil {
		writeReply(w, reply)
		return
	}
	if op != OpInvoke && !json.Valid(body) {
		writeReply(w, Error(http.StatusBadRequest, "ValidationException", "the request body is not valid JSON"))
		return
	}
	c := &Call{Operation: op, ModelID: model, Path: path, Header: r.Header.Clone(), Body: body, Done: r.Context().Done()}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	if op == OpCountTokens || op == OpInvokeStream || op == OpInvoke && isMessagesBody(body) {
		s.serveMessages(w, r, c)
		return
	}
	h := s.Handler
	if h == nil {
		h = Echo
	}
	reply := h(c)
	if reply.HoldHead {
		s.hold(r)
		return
	}
	if s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	for k, v := range reply.Header {
		w.Header()[k] = v
	}
	if op == OpConverseStream && reply.Status == 0 && reply.ErrorType == "" {
		events := reply.Events
		if events == nil {
			events = StreamEvents(reply.Body)
		}
		writeEvents(w, events, s.Latency)
		if reply.HoldOpen {
			s.hold(r)
		}
		if reply.Cut {
			panic(http.ErrAbortHandler)
		}
		return
	}
	writeReply(w, reply)
}

// checkAuth checks the SigV4 Authorization header as Bedrock would, or
// a bearer token (Bedrock API key) when the fake has no access key id.
func (s *Server) checkAuth(r *http.Request, body []byte) *Reply {
	auth := r.Header.Get("Authorization")
	denied := func(msg string) *Reply {
		return Error(http.StatusForbidden, "UnrecognizedClientException", msg)
	}
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && s.AccessKeyID == "" {
		if tok == "" {
			return denied("empty API key")
		}
		return nil
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return Error(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[3] != "bedrock" || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return Error(http.StatusForbidden, "IncompleteSignatureException", "malformed Authorization header")
	}
	if scope[0] != s.AccessKeyID {
		return denied("The security token included in the request is invalid.")
	}
	if scope[2] != s.Region {
		return Error(http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to a valid region, not '"+scope[2]+"'.")
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || scope[1] != date.Format("20060102") {
		return Error(http.StatusForbidden, "IncompleteSignatureException", "missing or mismatched X-Amz-Date")
	}
	if s.SecretAccessKey == "" {
		return nil
	}
	// Sign the same request again and compare.
	req, _ := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	req.URL.RawPath = r.URL.RawPath
	req.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		if h != "host" && h != "content-length" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	req.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", s.Region, date); err != nil {
		return denied("cannot verify the signature")
	}
	if req.Header.Get("Authorization") != auth {
		return Error(http.StatusForbidden, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.")
	}
	return nil
}

func writeReply(w http.ResponseWriter, reply *Reply) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("X-Amzn-Requestid") == "" {
		w.Header().Set("X-Amzn-Requestid", "fake-request-id")
	}
	if reply.ErrorType != "" {
		w.Header().Set("X-Amzn-Errortype", reply.ErrorType)
	}
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(reply.Body)
}

func writeEvents(w http.ResponseWriter, events []Event, gap time.Duration) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	enc := eventstream.NewEncoder()
	f, _ := w.(http.Flusher)
	for i, ev := range events {
		var msg eventstream.Message
		if ev.Exception {
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
			msg.Headers.Set(":exception-type", eventstream.StringValue(ev.Type))
		} else {
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
			msg.Headers.Set(":event-type", eventstream.StringValue(ev.Type))
		}
		msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		msg.Payload = ev.Payload
		if err := enc.Encode(w, msg); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
		if gap > 0 && i == 0 {
			time.Sleep(gap / 5)
		}
	}
}

// converseAnswer is the part of a Converse answer StreamEvents and Echo use.
type converseAnswer struct {
	Output struct {
		Message struct {
			Role    string         `json:"role"`
			Content []contentBlock `json:"content"`
		} `json:"message"`
	} `json:"output"`
	StopReason string          `json:"stopReason"`
	Usage      json.RawMessage `json:"usage"`
}

type contentBlock struct {
	Text    *string `json:"text,omitempty"`
	ToolUse *struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"toolUse,omitempty"`
	ToolResult *struct {
		ToolUseID string `json:"toolUseId"`
		Content   []struct {
			Text *string `json:"text"`
		} `json:"content"`
	} `json:"toolResult,omitempty"`
}

// StreamEvents splits a Converse answer into the ConverseStream events
// Bedrock would send for it: text in word-sized deltas, tool inputs in
// two fragments.
func StreamEvents(converse []byte) []Event {
	var a converseAnswer
	json.Unmarshal(converse, &a)
	ev := func(typ string, v any) Event {
		b, _ := json.Marshal(v)
		return Event{Type: typ, Payload: b}
	}
	out := []Event{ev("messageStart", map[string]string{"role": "assistant"})}
	for i, c := range a.Output.Message.Content {
		switch {
		case c.Text != nil:
			for _, w := range splitWords(*c.Text) {
				out = append(out, ev("contentBlockDelta", map[string]any{"contentBlockIndex": i, "delta": map[string]string{"text": w}}))
			}
		case c.ToolUse != nil:
			out = append(out, ev("contentBlockStart", map[string]any{"contentBlockIndex": i, "start": map[string]any{"toolUse": map[string]string{"toolUseId": c.ToolUse.ToolUseID, "name": c.ToolUse.Name}}}))
			in := string(c.ToolUse.Input)
			for _, part := range []string{in[:len(in)/2], in[len(in)/2:]} {
				out = append(out, ev("contentBlockDelta", map[string]any{"contentBlockIndex": i, "delta": map[string]any{"toolUse": map[string]string{"input": part}}}))
			}
		default:
			continue
		}
		out = append(out, ev("contentBlockStop", map[string]any{"contentBlockIndex": i}))
	}
	out = append(out, ev("messageStop", map[string]string{"stopReason": a.StopReason}))
	usage := a.Usage
	if len(usage) == 0 {
		usage = json.RawMessage(`{"inputTokens":0,"outputTokens":0,"totalTokens":0}`)
	}
	out = append(out, ev("metadata", map[string]any{"usage": usage, "metrics": map[string]int{"latencyMs": 42}}))
	return out
}

func splitWords(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s[1:], ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// request is the part of a Converse request Echo reads.
type request struct {
	Messages []struct {
		Role    string         `json:"role"`
		Content []contentBlock `json:"content"`
	} `json:"messages"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec struct {
				Name        string `json:"name"`
				InputSchema struct {
					JSON struct {
						Required []string `json:"required"`
					} `json:"json"`
				} `json:"inputSchema"`
			} `json:"toolSpec"`
		} `json:"tools"`
	} `json:"toolConfig"`
}

// Echo is the fake's default model. Converse: when tools are offered and
// the last turn holds no tool result, it calls the first tool (required
// string arguments set to "test"); after tool results it answers "The
// tool said: …"; otherwise "You said: <last user text>". Usage counts
// words. Invoke: a Titan-like embedding derived from the text.
func Echo(c *Call) *Reply {
	if c.Operation == OpInvoke {
		return echoEmbedding(c.Body)
	}
	var req request
	json.Unmarshal(c.Body, &req)
	if len(req.Messages) == 0 {
		return Error(http.StatusBadRequest, "ValidationException", "A conversation must start with a user message.")
	}
	inWords := 0
	var lastText, toolText string
	hasResult := false
	for _, m := range req.Messages {
		for _, b := range m.Content {
			if b.Text != nil {
				inWords += len(strings.Fields(*b.Text))
				if m.Role == "user" {
					lastText = *b.Text
				}
			}
		}
	}
	last := req.Messages[len(req.Messages)-1]
	for _, b := range last.Content {
		if b.ToolResult != nil {
			hasResult = true
			for _, t := range b.ToolResult.Content {
				if t.Text != nil {
					toolText += *t.Text
				}
			}
		}
	}
	var answer map[string]any
	var outWords int
	switch {
	case hasResult:
		text := "The tool said: " + toolText
		outWords = len(strings.Fields(text))
		answer = textAnswer(text, "end_turn")
	case req.ToolConfig != nil && len(req.ToolConfig.Tools) > 0:
		spec := req.ToolConfig.Tools[0].ToolSpec
		input := map[string]string{}
		for _, r := range spec.InputSchema.JSON.Required {
			input[r] = "test"
		}
		outWords = 5
		answer = map[string]any{
			"output": map[string]any{"message": map[string]any{"role": "assistant", "content": []any{
				map[string]any{"toolUse": map[string]any{"toolUseId": "tooluse_fake1", "name": spec.Name, "input": input}},
			}}},
			"stopReason": "tool_use",
		}
	default:
		text := "You said: " + lastText
		outWords = len(strings.Fields(text))
		answer = textAnswer(text, "end_turn")
	}
	answer["usage"] = map[string]int{"inputTokens": inWords, "outputTokens": outWords, "totalTokens": inWords + outWords}
	answer["metrics"] = map[string]int{"latencyMs": 42}
	b, _ := json.Marshal(answer)
	return &Reply{Body: b}
}

// TextReply is a Converse answer with text as the assistant's message
// and the given token counts (for a ConverseStream call, the fake sends it
// as StreamEvents).
func TextReply(text string, inputTokens, outputTokens int) *Reply {
	a := textAnswer(text, "end_turn")
	a["usage"] = map[string]int{"inputTokens": inputTokens, "outputTokens": outputTokens, "totalTokens": inputTokens + outputTokens}
	a["metrics"] = map[string]int{"latencyMs": 42}
	b, _ := json.Marshal(a)
	return &Reply{Body: b}
}

// EmbeddingReply is a Titan text embeddings answer (InvokeModel) with
// the given vector and input token count.
func EmbeddingReply(vector []float64, inputTokens int) *Reply {
	b, _ := json.Marshal(map[string]any{"embedding": vector, "inputTextTokenCount": inputTokens})
	return &Reply{Body: b}
}

func textAnswer(text, stop string) map[string]any {
	return map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": []any{map[string]string{"text": text}}}},
		"stopReason": stop,
	}
}

func echoEmbedding(body []byte) *Reply {
	var in struct {
		InputText  *string `json:"inputText"`
		Dimensions int     `json:"dimensions"`
	}
	if json.Unmarshal(body, &in) != nil || in.InputText == nil {
		return Error(http.StatusBadRequest, "ValidationException", "Malformed input request: required key [inputText] not found")
	}
	if in.Dimensions == 0 {
		in.Dimensions = 1024
	}
	if in.Dimensions != 256 && in.Dimensions != 512 && in.Dimensions != 1024 {
		return Error(http.StatusBadRequest, "ValidationException", fmt.Sprintf("Malformed input request: #/dimensions: %d is not a valid enum value", in.Dimensions))
	}
	h := fnv.New64a()
	h.Write([]byte(*in.InputText))
	seed := h.Sum64()
	v := make([]float64, in.Dimensions)
	for i := range v {
		seed = seed*6364136223846793005 + 1442695040888963407
		v[i] = math.Round(float64(int64(seed>>11)%2000-1000)) / 1000
	}
	b, _ := json.Marshal(map[string]any{"embedding": v, "inputTextTokenCount": len(strings.Fields(*in.InputText))})
	return &Reply{Body: b}
}
