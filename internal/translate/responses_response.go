package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Chat Completions answers carried back to a Responses client, whole
// (ChatToResponsesResponse); the stream is in responses_stream.go. The
// table in responses.go says what becomes of each field.

// ResponseMeta is what the gateway decides about the response it answers.
type ResponseMeta struct {
	ID        string    // "resp_…", chosen by the gateway (it stores the response under it)
	Model     string    // the alias the client asked for
	CreatedAt time.Time // written as created_at, in seconds
}

// respAnswer is the part of a chat.completion the translation reads.
type respAnswer struct {
	Choices []struct {
		Message *struct {
			Content   json.RawMessage `json:"content"`
			Refusal   string          `json:"refusal"`
			ToolCalls []chatToolCall  `json:"tool_calls"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *respUsage `json:"usage"`
}

// respUsage is Chat Completions usage with the details Responses reports.
type respUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// ChatToResponsesResponse translates a chat.completion answer into the
// Responses "response" object answering r, with m's id, model and time.
// The table in responses.go says what becomes of each field.
func ChatToResponsesResponse(chat []byte, r *ResponsesRequest, m ResponseMeta) ([]byte, error) {
	var a respAnswer
	if err := json.Unmarshal(chat, &a); err != nil {
		return nil, fmt.Errorf("translate: upstream chat.completion: %w", err)
	}
	if len(a.Choices) == 0 || a.Choices[0].Message == nil {
		return nil, errors.New("translate: upstream chat.completion has no choice")
	}
	c := a.Choices[0]
	text, err := chatText(c.Message.Content)
	if err != nil {
		return nil, err
	}
	finish := ""
	if c.FinishReason != nil {
		finish = *c.FinishReason
	}
	status, reason := responseStatus(finish)
	base := idBase(m.ID)
	last := len(c.Message.ToolCalls)
	if text == "" && c.Message.Refusal == "" {
		last--
	}
	itemStatus := func(i int) string {
		if i == last && status == "incomplete" {
			return "incomplete"
		}
		return "completed"
	}

	var out []byte
	n := 0
	if text != "" || c.Message.Refusal != "" {
		out = appendMessageItem(out, base, n, itemStatus(n))
		if text != "" {
			out = appendTextPart(out, innerJSON(text))
		}
		if c.Message.Refusal != "" {
			if text != "" {
				out = append(out, ',')
			}
			out = appendRefusalPart(out, innerJSON(c.Message.Refusal))
		}
		out = append(out, `],"role":"assistant"}`...)
		n++
	}
	for _, tc := range c.Message.ToolCalls {
		if n > 0 {
			out = append(out, ',')
		}
		callID := tc.ID
		if callID == "" {
			callID = "call_" + strings.TrimPrefix(m.ID, "resp_") + "_" + strconv.Itoa(n)
		}
		args := tc.Function.Arguments
		if strings.TrimSpace(args) == "" {
			args = "{}" // what OpenAI sends for a call without arguments
		}
		out = appendFunctionCallItem(out, base, n, itemStatus(n), innerJSON(args), appendJSONString(nil, callID), appendJSONString(nil, tc.Function.Name))
		n++
	}
	var usage []byte
	if a.Usage != nil {
		usage = appendUsage(nil, a.Usage)
	}
	return appendResponse(nil, r, m, status, reason, out, usage), nil
}

// responseStatus maps a finish_reason to a status and the reason it is
// incomplete.
func responseStatus(finish string) (status, reason string) {
	switch finish {
	case "length":
		return "incomplete", "max_output_tokens"
	case "content_filter":
		return "incomplete", "content_filter"
	}
	return "completed", ""
}

// idBase is the response id without its "resp_" prefix, escaped for a
// JSON string: the items' ids are made of it ("msg_BASE_0", "fc_BASE_1").
func idBase(id string) string {
	id = strings.TrimPrefix(id, "resp_")
	return string(innerJSON(id))
}

// innerJSON is s as a JSON string without its quotes: inner parts of
// JSON strings can be joined, escapes and all.
func innerJSON(s string) []byte {
	b := appendJSONString(nil, s)
	return b[1 : len(b)-1]
}

// appendItemID appends "PREFIX_BASE_N" as a JSON string.
func appendItemID(b []byte, prefix, base string, n int) []byte {
	b = append(b, '"')
	b = append(b, prefix...)
	b = append(b, base...) // escaped by idBase
	b = append(b, '_')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '"')
}

// appendMessageItem appends the head of a message item, up to and
// including the "[" of its content.
func appendMessageItem(b []byte, base string, n int, status string) []byte {
	b = append(b, `{"id":`...)
	b = appendItemID(b, "msg_", base, n)
	b = append(b, `,"type":"message","status":"`...)
	b = append(b, status...)
	return append(b, `","content":[`...)
}

// appendTextPart appends an output_text part; text is the inner of a
// JSON string.
func appendTextPart(b, text []byte) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":"`...)
	b = append(b, text...)
	return append(b, `"}`...)
}

// appendRefusalPart appends a refusal part; refusal is the inner of a
// JSON string.
func appendRefusalPart(b, refusal []byte) []byte {
	b = append(b, `{"type":"refusal","refusal":"`...)
	b = append(b, refusal...)
	return append(b, `"}`...)
}

// appendFunctionCallItem appends a function_call item: args is the inner
// of a JSON string, callID and name whole JSON strings.
func appendFunctionCallItem(b []byte, base string, n int, status string, args, callID, name []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendItemID(b, "fc_", base, n)
	b = append(b, `,"type":"function_call","status":"`...)
	b = append(b, status...)
	b = append(b, `","arguments":"`...)
	b = append(b, args...)
	b = append(b, `","call_id":`...)
	b = append(b, callID...)
	b = append(b, `,"name":`...)
	b = append(b, name...)
	return append(b, '}')
}

// appendUsage appends Responses usage made of Chat Completions usage.
func appendUsage(b []byte, u *respUsage) []byte {
	var cached, reasoning int64
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	if u.CompletionTokensDetails != nil {
		reasoning = u.CompletionTokensDetails.ReasoningTokens
	}
	total := u.TotalTokens
	if total == 0 {
		total = u.PromptTokens + u.CompletionTokens
	}
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, u.PromptTokens, 10)
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, cached, 10)
	b = append(b, `},"output_tokens":`...)
	b = strconv.AppendInt(b, u.CompletionTokens, 10)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, reasoning, 10)
	b = append(b, `},"total_tokens":`...)
	b = strconv.AppendInt(b, total, 10)
	return append(b, '}')
}

// appendResponse appends the response object: output is its items,
// comma-separated; usage nil is written null; reason is the
// incomplete_details reason, if any.
func appendResponse(b []byte, r *ResponsesRequest, m ResponseMeta, status, reason string, output, usage []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"object":"response","created_at":`...)
	b = strconv.AppendInt(b, m.CreatedAt.Unix(), 10)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","error":null,"incomplete_details":`...)
	if reason == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"reason":"`...)
		b = append(b, reason...)
		b = append(b, `"}`...)
	}
	b = append(b, `,"model":`...)
	b = appendJSONString(b, m.Model)
	b = append(b, ',')
	if r != nil && len(r.echo) > 0 {
		b = append(b, r.echo...)
		b = append(b, ',')
	}
	b = append(b, `"output":[`...)
	b = append(b, output...)
	b = append(b, `],"usage":`...)
	if usage == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, usage...)
	}
	return append(b, '}')
}
