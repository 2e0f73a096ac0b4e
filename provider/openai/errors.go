package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// upstreamStatusError maps an upstream error answer to what the client
// sees. The upstream's message is shown for request errors; an upstream
// authentication failure is the gateway's problem, not the client's, so it
// is a 502. endpoint is the API called: for EndpointResponses the
// upstream's error code of a request error is kept (Responses clients act
// on codes such as previous_response_not_found); for endpointResource a
// 404 is the client's (an unknown response id), passed on as it is.
func upstreamStatusError(name, endpoint string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env struct {
		Error struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Param   json.RawMessage `json:"param"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	msg := ""
	// Some servers (Gemini) answer a list holding one error envelope.
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(trimmed, &list) == nil && len(list) > 0 {
			trimmed = list[0]
		}
	}
	if json.Unmarshal(trimmed, &env) == nil {
		msg = env.Error.Message
	}
	cause := fmt.Errorf("upstream %q answered %d: %.512s", name, resp.StatusCode, raw)
	e := &llmproxy.Error{Status: resp.StatusCode, Type: llmproxy.TypeUpstream, Code: "upstream_error", Err: cause}
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Status = http.StatusBadGateway
		e.Message = fmt.Sprintf("the upstream of connection %q rejected the gateway's credentials", name)
	case s == http.StatusTooManyRequests:
		e.Type, e.Code = llmproxy.TypeRateLimit, "rate_limit_exceeded"
		e.Message = "the upstream provider is rate limiting requests; retry later"
		if msg != "" {
			e.Message += ": " + msg
		}
		e.RetryAfter = retryAfter(resp.Header)
	case s == http.StatusNotFound && endpoint == endpointResource:
		e.Type, e.Code = orDefault(env.Error.Type, llmproxy.TypeInvalidRequest), codeString(env.Error.Code)
		e.Message = orDefault(msg, "no such response")
	case s >= 400 && s < 500 && s != http.StatusNotFound:
		e.Type, e.Code = llmproxy.TypeInvalidRequest, ""
		if endpoint == llmproxy.EndpointResponses || endpoint == endpointResource {
			e.Code = codeString(env.Error.Code)
		}
		e.Message = msg
		if e.Message == "" {
			e.Message = fmt.Sprintf("the upstream rejected the request with status %d", s)
		}
		if env.Error.Param != nil {
			json.Unmarshal(env.Error.Param, &e.Param)
		}
	case s == http.StatusNotFound:
		e.Status = http.StatusBadGateway
		e.Message = fmt.Sprintf("the upstream of connection %q answered 404 (unknown remote model or endpoint)", name)
		if msg != "" {
			e.Message += ": " + msg
		}
	case s == http.StatusServiceUnavailable || s == http.StatusGatewayTimeout:
		e.Message = fmt.Sprintf("the upstream of connection %q is unavailable (%d)", name, s)
		e.RetryAfter = retryAfter(resp.Header)
	default:
		e.Status = http.StatusBadGateway
		e.Message = fmt.Sprintf("the upstream of connection %q failed (%d)", name, s)
	}
	return e
}

// retryAfter reads a Retry-After (seconds or HTTP date) or OpenAI's
// retry-after-ms header; it defaults to one second.
func retryAfter(h http.Header) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return time.Second
}

// isErrorEvent reports whether d is an error envelope rather than a chunk
// that merely mentions "error" in its text.
func isErrorEvent(d []byte) bool {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(d, &env) == nil && len(env.Error) > 0 && string(env.Error) != "null"
}

func streamError(name string, d []byte) error {
	var env struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(d, &env)
	msg := env.Error.Message
	if msg == "" {
		msg = "the upstream reported an error mid-stream"
	}
	return &llmproxy.Error{Status: http.StatusBadGateway, Type: llmproxy.TypeUpstream, Code: "upstream_error", Message: msg,
		Err: errors.New("mid-stream error from connection " + strconv.Quote(name))}
}

// endpointResource names GET and DELETE /responses/{id}[/input_items] for
// upstreamStatusError.
const endpointResource = "responses/{id}"

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// codeString returns an error code that is a JSON string (OpenAI's codes
// are strings or null; some servers send numbers, which are not kept).
func codeString(raw json.RawMessage) string {
	var c string
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c
}

// responsesStreamError is the *llmproxy.Error of a Responses stream's
// "error" event,
//
//	{"type":"error","code":"rate_limit_exceeded","message":"…","param":null,"sequence_number":3}
//
// (or a chat-style {"error":{…}} envelope from a compatible server). The
// upstream's message and code are kept; the status follows the code: 429
// for rate_limit_exceeded, 400 for a request the upstream found invalid
// (an invalid_* or context_length_exceeded code, or an
// invalid_request_error type), else 502.
func responsesStreamError(name string, d []byte) error {
	type fields struct {
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Param   *string         `json:"param"`
	}
	var ev struct {
		fields
		Error *fields `json:"error"`
	}
	json.Unmarshal(d, &ev)
	f := ev.fields
	if ev.Error != nil && f.Message == "" {
		f = *ev.Error
	} else if f.Type == "error" {
		f.Type = ""
	}
	code := codeString(f.Code)
	e := &llmproxy.Error{Status: http.StatusBadGateway, Type: llmproxy.TypeUpstream, Code: orDefault(code, "upstream_error"),
		Message: orDefault(f.Message, "the upstream reported an error mid-stream"),
		Err:     errors.New("mid-stream error from connection " + strconv.Quote(name))}
	switch {
	case code == "rate_limit_exceeded":
		e.Status, e.Type = http.StatusTooManyRequests, llmproxy.TypeRateLimit
	case f.Type == llmproxy.TypeInvalidRequest || strings.HasPrefix(code, "invalid") || code == "context_length_exceeded":
		e.Status, e.Type = http.StatusBadRequest, llmproxy.TypeInvalidRequest
		if f.Param != nil {
			e.Param = *f.Param
		}
	}
	return e
}
