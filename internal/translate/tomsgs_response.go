package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// msgAnswer is a Messages answer body: a Message, or an error object.
type msgAnswer struct {
	msgResponse
	Error *msgAnswerError `json:"error"`
}

// msgAnswerError is the error of an error answer or an error event.
type msgAnswerError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// MessagesToChatResponse translates an Anthropic Message (the answer to a
// non-streaming Messages request) into an OpenAI chat.completion whose
// model is the client's alias, as the table in tomsgs.go says. An error
// object ({"type":"error",…}) is returned as an *EventError; an answer
// that is not a Message, as an error.
func MessagesToChatResponse(msg []byte, model string) ([]byte, error) {
	var m msgAnswer
	if err := json.Unmarshal(msg, &m); err != nil {
		return nil, fmt.Errorf("translate: malformed Messages answer: %w", err)
	}
	if m.Type == "error" {
		if m.Error == nil {
			return nil, &EventError{Type: "api_error", Message: "the upstream answered with an error without details"}
		}
		return nil, &EventError{Type: m.Error.Type, Message: m.Error.Message}
	}
	if m.ID == "" {
		return nil, fmt.Errorf("translate: the Messages answer has no id")
	}
	out := chatResponse{
		ID:      "chatcmpl-" + m.ID,
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   model,
		Usage:   chatUsageOf(m.Usage),
	}
	message, err := chatMessageOf(m.Content)
	if err != nil {
		return nil, err
	}
	reason := finishReasonOfStop(m.StopReason)
	out.Choices = []chatChoice{{Index: 0, Message: message, FinishReason: &reason}}
	return marshalUnescaped(&out)
}

// chatMessageOf gathers an answer's text and tool calls.
func chatMessageOf(blocks []msgBlock) (*chatMessage, error) {
	m := &chatMessage{Role: "assistant", Content: json.RawMessage("null")}
	var text strings.Builder
	hasText := false
	for i := range blocks {
		b := &blocks[i]
		switch b.Type {
		case "text":
			hasText = true
			text.WriteString(b.Text)
		case "tool_use":
			args := []byte("{}")
			if !nullJSON(b.Input) {
				var buf bytes.Buffer
				if err := json.Compact(&buf, b.Input); err != nil {
					return nil, fmt.Errorf("translate: malformed tool_use input: %w", err)
				}
				args = buf.Bytes()
			}
			m.ToolCalls = append(m.ToolCalls, chatToolCall{
				ID:       b.ID,
				Type:     "function",
				Function: chatFunctionCall{Name: b.Name, Arguments: string(args)},
			})
		}
		// thinking, redacted_thinking and server tool blocks have no
		// place in a chat.completion.
	}
	if hasText {
		var err error
		if m.Content, err = marshalUnescaped(text.String()); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// finishReasonOfStop maps a Messages stop_reason to a Chat Completions
// finish_reason.
func finishReasonOfStop(stop *string) string {
	if stop == nil {
		return "stop"
	}
	return finishReasonOfStopName(*stop)
}

func finishReasonOfStopName(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	// end_turn, stop_sequence, pause_turn, and reasons OpenAI has no name
	// for.
	return "stop"
}

// chatUsageOf counts every input token as a prompt token: Messages counts
// cache reads and writes apart from input_tokens, OpenAI within
// prompt_tokens.
func chatUsageOf(u msgUsage) *chatUsage {
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
	return &chatUsage{
		PromptTokens:        prompt,
		CompletionTokens:    u.OutputTokens,
		TotalTokens:         prompt + u.OutputTokens,
		PromptTokensDetails: &chatPromptTokensDetails{CachedTokens: u.CacheReadInputTokens},
	}
}
