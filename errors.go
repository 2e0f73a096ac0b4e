package llmproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// Sentinel errors returned (wrapped) by Storage implementations and the
// admin operations. Check them with errors.Is.
var (
	// ErrNotFound: the record, or a record it refers to, does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a record with the same unique name exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInUse: the record cannot be deleted while others refer to it.
	ErrInUse = errors.New("in use")
	// ErrInvalid: the record or request is malformed.
	ErrInvalid = errors.New("invalid")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Error is an error answered to a client in OpenAI's shape:
//
//	{"error":{"message":…,"type":…,"param":…,"code":…}}
//
// with Status as the HTTP status. Err, the internal cause, is never shown
// to the client.
type Error struct {
	Status  int
	Message string
	Type    string // e.g. "invalid_request_error"
	Param   string // the offending parameter, if any
	Code    string // e.g. "model_not_found"
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Error types used by OpenAI and by the gateway.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeUpstream       = "upstream_error"
	TypeServer         = "server_error"
)

// BadRequest returns a 400 invalid_request_error naming param.
func BadRequest(param, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// UpstreamError returns a 502 upstream_error wrapping cause.
func UpstreamError(msg string, cause error) *Error {
	return &Error{Status: http.StatusBadGateway, Type: TypeUpstream, Code: "upstream_error", Message: msg, Err: cause}
}

// AsError converts any error into the *Error to answer with: an *Error in
// the chain is used as is; a context deadline becomes a 504; anything else
// a 500 whose message reveals nothing internal.
func AsError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Type: TypeUpstream, Code: "upstream_timeout", Message: "the upstream did not answer in time", Err: err}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer. 499 as nginx does.
		return &Error{Status: 499, Type: TypeInvalidRequest, Code: "client_closed_request", Message: "the client closed the request", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Type: TypeServer, Message: "internal error", Err: err}
}

// AppendJSON appends the OpenAI error envelope of e to b.
func (e *Error) AppendJSON(b []byte) []byte {
	b = append(b, `{"error":{"message":`...)
	b = AppendJSONString(b, e.Message)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, e.Type)
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, e.Code)
	return append(b, "}}"...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return AppendJSONString(b, s)
}

// WriteError answers err to the client in OpenAI's error shape.
func WriteError(w http.ResponseWriter, err error) { openAIDialect.writeError(w, err) }

// retryAfterSeconds is d as a Retry-After value: whole seconds, rounded up.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// AppendJSONString appends s to b as a JSON string. Invalid UTF-8 becomes
// U+FFFD, so the output is always valid JSON.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
