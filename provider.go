package llmproxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// Provider sends OpenAI-shaped requests to one upstream connection and
// returns OpenAI-shaped answers. Passthrough providers (OpenAI, Google,
// Azure, compatible servers) forward the client's body with only the model
// rewritten; translating providers (Bedrock) map it to their own API and
// back.
//
// A Provider is built for one Connection by a NewProviderFunc and is used
// by many goroutines at once. The context is the client request's: when
// the client goes away it is cancelled, and the upstream call must stop.
//
// Errors: an upstream that answers with an error is returned as an *Error
// (wrapped in the chain) with the status the client should see: the
// upstream's 400 with its message, 429 with RetryAfter, an upstream
// authentication failure as 502 upstream_error (never as the client's own
// key being wrong). Any other error (connection refused, a malformed
// answer) is answered as 502.
type Provider interface {
	// ChatCompletion serves POST /v1/chat/completions. For a streaming
	// request (req.Stream) it returns a Response with Stream set, and must
	// emit the usage chunk (an event with "usage") whenever the upstream
	// can report it: the gateway asks for it and hides it from clients
	// that did not.
	ChatCompletion(ctx context.Context, req *Request) (*Response, error)
}

// Embedder is implemented by providers that serve POST /v1/embeddings.
// For a provider without it the gateway answers 400 "model does not
// support embeddings".
type Embedder interface {
	Embeddings(ctx context.Context, req *Request) (*Response, error)
}

// A Messenger serves Anthropic's Messages API (POST /v1/messages) natively.
// For a provider without it, or whose NativeMessages is false for the
// model, the Gateway translates the request to Chat Completions, calls
// ChatCompletion and translates the answer back.
type Messenger interface {
	// NativeMessages reports whether Messages serves remoteModel (a
	// Bedrock connection serves Anthropic's models natively, others
	// through Converse).
	NativeMessages(remoteModel string) bool
	// Messages sends req (Endpoint EndpointMessages; UpstreamBody has
	// the client's Messages body with only "model" changed) and returns
	// Anthropic's answer unchanged: for a non-streaming request the
	// Message JSON as Body (with its "usage"); for a stream a Stream
	// whose Next returns each event's data as it arrives, "ping" events
	// included: a JSON object whose "type" is the event's name
	// ("message_start" … "message_stop"), then io.EOF. An "error" event
	// is returned as an *Error carrying the event's type and message.
	Messages(ctx context.Context, req *Request) (*Response, error)
}

// A Responder serves OpenAI's Responses API (POST /v1/responses) natively.
// For a provider without it, or whose NativeResponses is false for the
// model, the Gateway translates the request to Chat Completions (keeping
// the conversation state itself) and the answer back.
type Responder interface {
	// NativeResponses reports whether Responses serves remoteModel.
	NativeResponses(remoteModel string) bool
	// Responses sends req (Endpoint EndpointResponses; UpstreamBody has
	// the client's body with only "model" changed) and returns the
	// upstream's answer unchanged: for a non-streaming request the
	// response object as Body (with its "usage"); for a stream a Stream
	// whose Next returns each event's data as it arrives: a JSON object
	// whose "type" is the event's name ("response.created" …
	// "response.completed", "response.incomplete" or "response.failed"),
	// then io.EOF. An "error" event is returned as an *Error.
	Responses(ctx context.Context, req *Request) (*Response, error)
	// ResponseResource forwards GET or DELETE /v1/responses/{path} to the
	// upstream, where path is a response id or "ID/input_items" and
	// rawQuery the client's query string; the answer is the upstream's
	// (an *Error for an error status).
	ResponseResource(ctx context.Context, method, path, rawQuery string) (*Response, error)
}

// A TokenCounter serves POST /v1/messages/count_tokens from its upstream.
// Without it, or when CountTokens returns an error wrapping
// ErrUnsupported, the Gateway answers its own estimate.
type TokenCounter interface {
	// CountTokens returns the input tokens of req (Endpoint
	// EndpointCountTokens: a Messages body without max_tokens).
	CountTokens(ctx context.Context, req *Request) (int64, error)
}

// ErrUnsupported is returned (wrapped) by an optional provider operation
// that the connection or model cannot serve.
var ErrUnsupported = errors.New("not supported by this provider")

// NewProviderFunc builds the Provider of one connection. It is called when
// the configuration snapshot is (re)loaded, so it must not do network I/O;
// an error marks the connection unusable (its requests answer 502) and is
// logged.
type NewProviderFunc func(conn Connection, opts ProviderOptions) (Provider, error)

// ProviderOptions are what the Gateway shares with every provider.
type ProviderOptions struct {
	// HTTPClient is a client with a tuned transport shared by all
	// providers; it has no timeout of its own (contexts bound calls).
	HTTPClient *http.Client
	// Logger never receives a secret from a provider.
	Logger *slog.Logger
}

// Request is a client request on its way to a provider. The Gateway builds
// it from what it parsed; a Request built as a literal (in a provider's
// tests, say) is just as usable: UpstreamBody then finds the fields it
// rewrites on its first call.
type Request struct {
	// Body is the client's JSON body, unchanged.
	Body []byte
	// Model is the alias the client named; RemoteModel the model name on
	// the chosen connection.
	Model       string
	RemoteModel string
	// Stream is true when the client asked for a server-sent event stream.
	Stream bool
	// Header holds the client's request headers (the gateway removes
	// Authorization, api-key and x-api-key before a provider sees them).
	Header http.Header
	// Endpoint is the API the Body is in: EndpointChat (the zero value
	// means it too), EndpointEmbeddings, EndpointMessages,
	// EndpointCountTokens or EndpointResponses.
	Endpoint string
	// fields is where the top-level values of Body are; zero until
	// located.
	fields bodyFields
}

// UpstreamBody returns Body with "model" set to RemoteModel and, for a
// chat stream, "stream_options":{"include_usage":true} so the upstream
// reports usage (a Messages stream reports it unasked). Every other byte of the client's body is kept as it was. A Body
// that is not a JSON object is returned as it is, for the upstream to
// refuse.
func (r *Request) UpstreamBody() []byte {
	if r.fields.closing == 0 {
		if !jsonscan.Valid(r.Body) {
			return r.Body
		}
		f, err := locateFields(r.Body)
		if err != nil {
			return r.Body
		}
		r.fields = f
	}
	chatStream := r.Stream && (r.Endpoint == "" || r.Endpoint == EndpointChat)
	return rewriteBody(r.Body, &r.fields, r.RemoteModel, chatStream)
}

// Usage is token usage as OpenAI reports it. PromptTokens counts every
// input token, those read from or written to a prompt cache included (as
// OpenAI's prompt_tokens does; Anthropic's input_tokens is PromptTokens
// minus both cache counts). TotalTokens is what limits count.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
	// CacheReadTokens are prompt tokens read from the upstream's prompt
	// cache (OpenAI's prompt_tokens_details.cached_tokens, Anthropic's
	// cache_read_input_tokens); CacheWriteTokens those written to it
	// (Anthropic's cache_creation_input_tokens).
	CacheReadTokens  int64 `json:"-"`
	CacheWriteTokens int64 `json:"-"`
}

// Response is a provider's answer in OpenAI's shape.
type Response struct {
	// StatusCode is the HTTP status for the client; zero means 200.
	StatusCode int
	// Header holds upstream headers to pass on to the client (e.g.
	// openai-processing-ms). The upstream's X-Request-Id reaches the
	// client as X-Upstream-Request-Id: the client's X-Request-Id is the
	// Gateway's, as in its access log and ledger. May be nil.
	Header http.Header
	// Body is the whole answer of a non-streaming request: OpenAI JSON
	// with a top-level "usage".
	Body []byte
	// Stream is set for a streaming request.
	Stream EventStream
}

// EventStream yields the data of a chat.completion.chunk stream, one event
// at a time, without the "data: " prefix and without the final [DONE].
type EventStream interface {
	// Next returns the next event's data. The slice is only valid until
	// the next call. It returns io.EOF after the last event ([DONE]), and
	// any other error when the stream broke (an upstream error event, a
	// cut connection, malformed data); an *Error in the chain is shown to
	// the client as an SSE error event.
	Next() ([]byte, error)
	// Close releases the upstream connection. It may be called before
	// the end of the stream (the client went away).
	Close() error
}

// A BufferedStream knows how much of its upcoming events has already
// arrived. The Gateway uses it to send a stream's response head together
// with its first event when both came at once; without it the head goes
// out at once, so that a client waiting for a slow first token knows its
// stream has started.
type BufferedStream interface {
	EventStream
	// Buffered returns the bytes of the events still to come that have
	// arrived.
	Buffered() int
}

// A ReadyStream can tell whether its next event is already there. The
// Gateway uses it to flush events that arrived together in one write,
// once the next one is not there yet; without it every event is flushed
// on its own. Either way no event waits for a later one.
type ReadyStream interface {
	EventStream
	// Ready reports whether Next would return without waiting for the
	// upstream.
	Ready() bool
}
