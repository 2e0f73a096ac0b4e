package llmproxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// A dialect is a client API the Gateway serves: OpenAI's (chat
// completions, embeddings) or Anthropic's Messages. The request path —
// authentication, routing, limits, the upstream call, the ledger — is the
// same for every dialect; a dialect owns what its clients see of it: the
// shape of errors, how stream events are framed and ended, and where the
// usage is in answers and events. A request in a dialect that its
// upstream does not speak is translated on the way (messages.go).
type dialect struct {
	// appendError appends e as the dialect's error body.
	appendError func(e *Error, b []byte) []byte
	// usage reads the usage of a whole answer.
	usage func(body []byte) (Usage, bool)
	// eventUsage reads the usage an event carries into u; final reports
	// that u now holds the stream's whole usage (Anthropic's message_start
	// holds the input counts, its message_delta the final ones). hide
	// reports that the event is there only for its usage and is withheld
	// from a client that did not ask for it.
	eventUsage func(data []byte, u *Usage, includeUsage bool) (final, hide bool)
	// writeEvent writes one stream event, framed; errors are the
	// client's connection's.
	writeEvent func(w io.Writer, data []byte) error
	// appendErrorEvent appends a stream's final error event, framed;
	// sent is how many events went before it.
	appendErrorEvent func(e *Error, b []byte, sent int) []byte
	// end is written after the last event; nil for none.
	end []byte
	// textKeys start the JSON strings of an event that carry generated
	// text, to estimate a stream's usage when the upstream gave none.
	textKeys [][]byte
}

var openAIDialect = &dialect{
	appendError: (*Error).AppendJSON,
	usage:       usageOf,
	eventUsage: func(data []byte, u *Usage, includeUsage bool) (final, hide bool) {
		if !bytes.Contains(data, usageKey) {
			return false, false
		}
		v, ok := usageOf(data)
		if !ok {
			return false, false
		}
		*u = v
		return true, !includeUsage && isUsageOnly(data)
	},
	writeEvent: func(w io.Writer, data []byte) error {
		// The ResponseWriter buffers: three writes cost no copy of ours
		// and no buffer held per open stream.
		w.Write(sseData)
		w.Write(data)
		_, err := w.Write(sseEnd)
		return err
	},
	appendErrorEvent: func(e *Error, b []byte, _ int) []byte {
		b = append(b, sseData...)
		b = e.AppendJSON(b)
		return append(b, sseEnd...)
	},
	end:      sseDone,
	textKeys: [][]byte{contentKey, argsKey},
}

var anthropicDialect = &dialect{
	appendError: appendAnthropicError,
	usage: func(body []byte) (Usage, bool) {
		var u Usage
		return u, addAnthropicUsage(jsonscan.Field(body, "usage"), &u)
	},
	eventUsage: func(data []byte, u *Usage, _ bool) (final, hide bool) {
		switch string(eventName(data)) {
		case "message_start":
			addAnthropicUsage(jsonscan.Field(jsonscan.Field(data, "message"), "usage"), u)
			return false, false
		case "message_delta":
			return addAnthropicUsage(jsonscan.Field(data, "usage"), u), false
		}
		return false, false
	},
	writeEvent: writeNamedEvent,
	appendErrorEvent: func(e *Error, b []byte, _ int) []byte {
		b = append(b, "event: error\ndata: "...)
		b = appendAnthropicError(e, b)
		return append(b, sseEnd...)
	},
	textKeys: [][]byte{[]byte(`"text":"`), []byte(`"partial_json":"`), []byte(`"thinking":"`)},
}

// responsesDialect is OpenAI's Responses API: OpenAI's errors, events
// named like Anthropic's, the usage in the response object (of the
// terminal event, for a stream).
var responsesDialect = &dialect{
	appendError: (*Error).AppendJSON,
	usage: func(body []byte) (Usage, bool) {
		var u Usage
		return u, responsesUsage(jsonscan.Field(body, "usage"), &u)
	},
	eventUsage: func(data []byte, u *Usage, _ bool) (final, hide bool) {
		switch string(eventName(data)) {
		case "response.completed", "response.incomplete", "response.failed":
			return responsesUsage(jsonscan.Field(jsonscan.Field(data, "response"), "usage"), u), false
		}
		return false, false
	},
	writeEvent: writeNamedEvent,
	appendErrorEvent: func(e *Error, b []byte, sent int) []byte {
		b = append(b, `event: error`+"\n"+`data: {"type":"error","code":`...)
		b = appendNullable(b, e.Code)
		b = append(b, `,"message":`...)
		b = AppendJSONString(b, e.Message)
		b = append(b, `,"param":`...)
		b = appendNullable(b, e.Param)
		b = append(b, `,"sequence_number":`...)
		b = strconv.AppendInt(b, int64(sent), 10)
		b = append(b, '}')
		return append(b, sseEnd...)
	},
	textKeys: [][]byte{[]byte(`"delta":"`)},
}

// writeNamedEvent writes an event whose SSE event line repeats its data's
// "type", as Anthropic's and the Responses API's streams do.
func writeNamedEvent(w io.Writer, data []byte) error {
	w.Write(sseEvent)
	w.Write(eventName(data))
	w.Write(sseEventData)
	w.Write(data)
	_, err := w.Write(sseEnd)
	return err
}

// responsesUsage reads a Responses API usage object into u: input_tokens
// (cached ones included, as OpenAI counts them), output_tokens (reasoning
// included) and input_tokens_details.cached_tokens.
func responsesUsage(raw []byte, u *Usage) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	count := func(obj []byte, name string) int64 {
		v := jsonscan.Field(obj, name)
		if len(v) == 0 || v[0] == 'n' {
			return 0
		}
		n, _ := jsonscan.Count(v)
		return n
	}
	u.PromptTokens = count(raw, "input_tokens")
	u.CompletionTokens = count(raw, "output_tokens")
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if d := jsonscan.Field(raw, "input_tokens_details"); len(d) > 0 && d[0] == '{' {
		u.CacheReadTokens = count(d, "cached_tokens")
	}
	return true
}

// countTokensDialect is Anthropic's, for answers that use no tokens.
var countTokensDialect = func() *dialect {
	d := *anthropicDialect
	d.usage = func([]byte) (Usage, bool) { return Usage{}, true }
	return &d
}()

// dialectOf returns the dialect of an endpoint's clients.
func dialectOf(endpoint string) *dialect {
	switch endpoint {
	case EndpointMessages:
		return anthropicDialect
	case EndpointCountTokens:
		return countTokensDialect
	case EndpointResponses:
		return responsesDialect
	}
	return openAIDialect
}

var (
	sseEvent     = []byte("event: ")
	sseEventData = []byte("\ndata: ")
	unknownEvent = []byte("unknown")
)

// eventName is the "type" of an Anthropic event's data, which its SSE
// event line repeats.
func eventName(data []byte) []byte {
	t := jsonscan.Field(data, "type")
	if len(t) < 2 || t[0] != '"' || bytes.IndexByte(t, '\\') >= 0 {
		return unknownEvent
	}
	return t[1 : len(t)-1]
}

// addAnthropicUsage reads an Anthropic usage object into u: the counts it
// holds replace u's (a message_delta's are cumulative, and override those
// of message_start). It reports whether raw is a usage object.
func addAnthropicUsage(raw []byte, u *Usage) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	input := u.PromptTokens - u.CacheReadTokens - u.CacheWriteTokens
	for _, f := range [...]struct {
		name string
		dst  *int64
	}{{"input_tokens", &input}, {"output_tokens", &u.CompletionTokens},
		{"cache_read_input_tokens", &u.CacheReadTokens}, {"cache_creation_input_tokens", &u.CacheWriteTokens}} {
		if v := jsonscan.Field(raw, f.name); len(v) > 0 && v[0] != 'n' {
			if n, ok := jsonscan.Count(v); ok {
				*f.dst = n
			}
		}
	}
	u.PromptTokens = input + u.CacheReadTokens + u.CacheWriteTokens
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return true
}

// statusOverloaded is Anthropic's status for an overloaded upstream.
const statusOverloaded = 529

// anthropicType is the Anthropic error type for e: the upstream's own
// when it is one of Anthropic's, else the one Anthropic uses for its
// status.
func anthropicType(e *Error) string {
	switch e.Type {
	case "overloaded_error", "api_error", "billing_error", "timeout_error", "request_too_large":
		return e.Type
	}
	switch s := e.Status; {
	case s == http.StatusUnauthorized:
		return TypeAuthentication
	case s == http.StatusPaymentRequired:
		return "billing_error"
	case s == http.StatusForbidden:
		return TypePermission
	case s == http.StatusNotFound:
		return TypeNotFound
	case s == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case s == http.StatusTooManyRequests:
		return TypeRateLimit
	case s == http.StatusGatewayTimeout:
		return "timeout_error"
	case s == statusOverloaded || s == http.StatusServiceUnavailable:
		return "overloaded_error"
	case s >= 500:
		return "api_error"
	}
	return TypeInvalidRequest
}

// appendAnthropicError appends e in Anthropic's error shape:
//
//	{"type":"error","error":{"type":…,"message":…}}
func appendAnthropicError(e *Error, b []byte) []byte {
	b = append(b, `{"type":"error","error":{"type":`...)
	b = AppendJSONString(b, anthropicType(e))
	b = append(b, `,"message":`...)
	b = AppendJSONString(b, e.Message)
	return append(b, "}}"...)
}

// writeError answers err in the dialect's error shape.
func (d *dialect) writeError(w http.ResponseWriter, err error) {
	e := AsError(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	w.Write(append(d.appendError(e, make([]byte, 0, 128)), '\n'))
}
