package anthropictest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Call is a request the fake received.
type Call struct {
	Path     string // PathMessages or PathCountTokens (or what was asked)
	RawQuery string // e.g. "beta=true"
	Header   http.Header
	Body     []byte // as received
	// Model and Stream are the body's "model" and "stream".
	Model  string
	Stream bool
	// Done is closed when the call is over for the fake: it has
	// answered, or the client went away.
	Done <-chan struct{}

	req      request
	parseErr error
}

// request is the part of a Messages body Call's methods read.
type request struct {
	Model     string    `json:"model"`
	MaxTokens *int64    `json:"max_tokens"`
	Stream    bool      `json:"stream"`
	Messages  []message `json:"messages"`
	Tools     []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// CountTokens reports whether c is a count_tokens call.
func (c *Call) CountTokens() bool { return c.Path == PathCountTokens }

// HasTool reports whether the request offers a tool named name.
func (c *Call) HasTool(name string) bool {
	for _, t := range c.req.Tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// ToolResult is a tool_result block of the request's last message.
type ToolResult struct {
	ToolUseID string
	Content   string // its text (a string content, or its text blocks joined)
	IsError   bool
}

// ToolResults returns the tool_result blocks of the request's last
// message, the answers to the tools the previous turn called.
func (c *Call) ToolResults() []ToolResult {
	if len(c.req.Messages) == 0 {
		return nil
	}
	var out []ToolResult
	for _, b := range blocks(c.req.Messages[len(c.req.Messages)-1].Content) {
		if b.Type == "tool_result" {
			out = append(out, ToolResult{ToolUseID: b.ToolUseID, Content: text(b.Content), IsError: b.IsError})
		}
	}
	return out
}

// LastUserText returns the text of the request's last user message.
func (c *Call) LastUserText() string {
	for i := len(c.req.Messages) - 1; i >= 0; i-- {
		if m := c.req.Messages[i]; m.Role == "user" {
			return text(m.Content)
		}
	}
	return ""
}

// blocks reads a content that is a string or an array of blocks.
func blocks(raw json.RawMessage) []block {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []block{{Type: "text", Text: s}}
	}
	var bs []block
	json.Unmarshal(raw, &bs)
	return bs
}

// text joins the text of a content.
func text(raw json.RawMessage) string {
	var b strings.Builder
	for _, bl := range blocks(raw) {
		if bl.Type == "text" {
			b.WriteString(bl.Text)
		}
	}
	return b.String()
}
