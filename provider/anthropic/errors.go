package anthropic

import (
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

// Anthropic's error types (the "type" of an error envelope's "error"),
// besides those llmproxy names (invalid_request_error,
// authentication_error, permission_error, not_found_error,
// rate_limit_error).
const (
	TypeOverloaded      = "overloaded_error" // HTTP 529
	TypeAPI             = "api_error"        // HTTP 500
	TypeRequestTooLarge = "request_too_large"
	TypeBilling         = "billing_error"
	TypeTimeout         = "timeout_error"
)

// StatusOverloaded is Anthropic's status for an overloaded upstream.
const StatusOverloaded = 529

// envelope is Anthropic's error answer and error event:
//
//	{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_…"}
type envelope struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// statusError maps an upstream error answer to what the client sees:
//
//   - 400, 413, 422 and other request errors: the status, the upstream's
//     error type and message (the client's request is at fault);
//   - 404: the same for a Messages request (the body may name a file or
//     model the client chose); for a chat request, whose body the
//     gateway wrote, a 502 (unknown remote model or endpoint); for
//     count_tokens, an error wrapping llmproxy.ErrUnsupported;
//   - 401, 403 and 402 (billing): a 502 upstream_error that does not show
//     the upstream's words, since they are about the gateway's key;
//   - 429: rate_limit_error with the upstream's advice (retryAfter);
//   - 529: 529 overloaded_error, with any Retry-After;
//   - any other 5xx: 502 upstream_error.
func statusError(name, endpoint string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env envelope
	json.Unmarshal(raw, &env)
	msg, typ := env.Error.Message, env.Error.Type
	s := resp.StatusCode
	cause := fmt.Errorf("upstream %q answered %d: %.512s", name, s, raw)
	e := &llmproxy.Error{Status: s, Type: typ, Err: cause}
	switch {
	case s == http.StatusUnauthorized || s == http.StatusForbidden || s == http.StatusPaymentRequired:
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = fmt.Sprintf("the upstream of connection %q rejected the gateway's credentials (%d)", name, s)
	case s == http.StatusTooManyRequests:
		e.Type, e.Code = llmproxy.TypeRateLimit, "rate_limit_exceeded"
		e.Message = "the upstream provider is rate limiting requests; retry later"
		if msg != "" {
			e.Message += ": " + msg
		}
		e.RetryAfter = retryAfter(resp.Header, time.Now())
	case s == StatusOverloaded:
		e.Type = TypeOverloaded
		e.Message = orDefault(msg, fmt.Sprintf("the upstream of connection %q is overloaded", name))
		if resp.Header.Get("Retry-After") != "" {
			e.RetryAfter = retryAfter(resp.Header, time.Now())
		}
	case s == http.StatusNotFound && endpoint == llmproxy.EndpointCountTokens:
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = fmt.Sprintf("the upstream of connection %q does not count tokens", name)
		e.Err = fmt.Errorf("%w: %w", llmproxy.ErrUnsupported, cause)
	case s == http.StatusNotFound && endpoint != llmproxy.EndpointMessages:
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = fmt.Sprintf("the upstream of connection %q answered 404 (unknown remote model or endpoint)", name)
		if msg != "" {
			e.Message += ": " + msg
		}
	case s >= 400 && s < 500:
		if e.Type == "" {
			e.Type = llmproxy.TypeInvalidRequest
		}
		e.Message = orDefault(msg, fmt.Sprintf("the upstream rejected the request with status %d", s))
	default:
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = fmt.Sprintf("the upstream of connection %q failed (%d)", name, s)
		if msg != "" {
			e.Message += ": " + msg
		}
	}
	return e
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// retryAfter reads how long a rate-limited caller should wait: the
// retry-after header (seconds or an HTTP date), else the latest of the
// anthropic-ratelimit-*-reset times (RFC 3339) of the limits whose
// -remaining is 0, or of all of them when none says 0. It defaults to one
// second.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	var exhausted, any time.Time
	for k, vs := range h {
		limit, ok := strings.CutPrefix(k, "Anthropic-Ratelimit-")
		if !ok || len(vs) == 0 {
			continue
		}
		limit, ok = strings.CutSuffix(limit, "-Reset")
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, vs[0])
		if err != nil || !t.After(now) {
			continue
		}
		if t.After(any) {
			any = t
		}
		if h.Get("Anthropic-Ratelimit-"+limit+"-Remaining") == "0" && t.After(exhausted) {
			exhausted = t
		}
	}
	switch {
	case !exhausted.IsZero():
		return exhausted.Sub(now)
	case !any.IsZero():
		return any.Sub(now)
	}
	return time.Second
}

// eventError is the error of an upstream error event (data is its JSON,
// an error envelope) on connection name.
func eventError(name string, data []byte) *llmproxy.Error {
	var env envelope
	json.Unmarshal(data, &env)
	return typedError(name, env.Error.Type, env.Error.Message)
}

// typedError is a mid-stream failure of Anthropic error type typ. The
// type is kept (the Gateway shows it to Messages clients as it came);
// the status is the one Anthropic gives the type, except that an error
// about the gateway's credentials or account is a 502 upstream_error.
func typedError(name, typ, msg string) *llmproxy.Error {
	e := &llmproxy.Error{Type: typ, Message: orDefault(msg, "the upstream reported an error mid-stream"),
		Err: errors.New("mid-stream error from connection " + strconv.Quote(name))}
	switch typ {
	case TypeOverloaded:
		e.Status = StatusOverloaded
	case TypeAPI:
		e.Status = http.StatusInternalServerError
	case llmproxy.TypeRateLimit:
		e.Status = http.StatusTooManyRequests
	case llmproxy.TypeInvalidRequest:
		e.Status = http.StatusBadRequest
	case TypeRequestTooLarge:
		e.Status = http.StatusRequestEntityTooLarge
	case TypeTimeout:
		e.Status = http.StatusGatewayTimeout
	case llmproxy.TypeAuthentication, llmproxy.TypePermission, TypeBilling:
		e.Status, e.Type, e.Code = http.StatusBadGateway, llmproxy.TypeUpstream, "upstream_error"
		e.Message = fmt.Sprintf("the upstream of connection %q rejected the gateway's credentials", name)
	default:
		// not_found_error, an empty or a new type: the upstream failed.
		e.Status = http.StatusBadGateway
		if typ == "" {
			e.Type, e.Code = llmproxy.TypeUpstream, "upstream_error"
		}
	}
	return e
}
