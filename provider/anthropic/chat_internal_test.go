package anthropic

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// errStream is a translate.Stream that fails with err.
type errStream struct{ err error }

func (s errStream) Next() ([]byte, error) { return nil, s.err }
func (s errStream) Close() error          { return nil }

// TestChatStreamErrors: whatever ends a translated stream reaches the
// Gateway as an *llmproxy.Error: the EventStream's own as they are, the
// translation's EventError with its Anthropic type, anything else as a
// 502; io.EOF stays io.EOF.
func TestChatStreamErrors(t *testing.T) {
	own := &llmproxy.Error{Status: 529, Type: TypeOverloaded, Message: "Overloaded"}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"the event stream's", fmt.Errorf("wrapped: %w", own), 529, TypeOverloaded},
		{"an EventError", &translate.EventError{Type: "api_error", Message: "boom"}, 500, "api_error"},
		{"an EventError about the key", &translate.EventError{Type: "authentication_error", Message: "bad key sk-1"}, 502, llmproxy.TypeUpstream},
		{"anything else", errors.New("unexpected token"), 502, llmproxy.TypeUpstream},
	} {
		st := &chatStream{name: "c", src: errStream{tc.err}}
		_, err := st.Next()
		var e *llmproxy.Error
		if !errors.As(err, &e) || e.Status != tc.status || e.Type != tc.typ {
			t.Errorf("%s: %v, want %d %q", tc.name, err, tc.status, tc.typ)
		}
	}
	if _, err := (&chatStream{src: errStream{io.EOF}}).Next(); err != io.EOF {
		t.Errorf("io.EOF became %v", err)
	}
}
