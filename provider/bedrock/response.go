package bedrock

import (
	"crypto/rand"
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/go-llm-proxy/llmproxy"
)

// finishReason maps a Bedrock stop reason to OpenAI's finish_reason.
func finishReason(r types.StopReason) string {
	switch r {
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		return "length"
	case types.StopReasonToolUse:
		return "tool_calls"
	case types.StopReasonContentFiltered, types.StopReasonGuardrailIntervened:
		return "content_filter"
	}
	// end_turn, stop_sequence, and reasons OpenAI has no name for.
	return "stop"
}

// appendResponse appends the chat.completion JSON of a Converse answer.
func appendResponse(b []byte, id string, created int64, model string, out *bedrockruntime.ConverseOutput) ([]byte, error) {
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return nil, errors.New("the answer has no message")
	}
	b = append(b, `{"id":`...)
	b = llmproxy.AppendJSONString(b, id)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = llmproxy.AppendJSONString(b, model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	text, n, uses := "", 0, 0
	for _, c := range msg.Value.Content {
		switch t := c.(type) {
		case *types.ContentBlockMemberText:
			text += t.Value
			n++
		case *types.ContentBlockMemberToolUse:
			uses++
		}
	}
	if n == 0 && uses > 0 {
		// As OpenAI: null content beside tool calls, a string otherwise.
		b = append(b, "null"...)
	} else {
		b = llmproxy.AppendJSONString(b, text)
	}
	calls := 0
	for _, c := range msg.Value.Content {
		u, ok := c.(*types.ContentBlockMemberToolUse)
		if !ok {
			continue
		}
		if calls == 0 {
			b = append(b, `,"tool_calls":[`...)
		} else {
			b = append(b, ',')
		}
		calls++
		args, err := documentJSON(u.Value.Input)
		if err != nil {
			return nil, err
		}
		b = append(b, `{"id":`...)
		b = llmproxy.AppendJSONString(b, deref(u.Value.ToolUseId))
		b = append(b, `,"type":"function","function":{"name":`...)
		b = llmproxy.AppendJSONString(b, deref(u.Value.Name))
		b = append(b, `,"arguments":`...)
		b = llmproxy.AppendJSONString(b, string(args))
		b = append(b, "}}"...)
	}
	if calls > 0 {
		b = append(b, ']')
	}
	b = append(b, `},"logprobs":null,"finish_reason":"`...)
	b = append(b, finishReason(out.StopReason)...)
	b = append(b, `"}],"usage":`...)
	b = appendUsage(b, out.Usage)
	return append(b, '}'), nil
}

// appendUsage appends OpenAI's usage object. Bedrock counts cache reads
// and writes apart from inputTokens; OpenAI's prompt_tokens include them.
func appendUsage(b []byte, u *types.TokenUsage) []byte {
	var in, out int64
	if u != nil {
		in = int64(deref32(u.InputTokens)) + int64(deref32(u.CacheReadInputTokens)) + int64(deref32(u.CacheWriteInputTokens))
		out = int64(deref32(u.OutputTokens))
	}
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, in, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, out, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, in+out, 10)
	if u != nil && u.CacheReadInputTokens != nil {
		b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
		b = strconv.AppendInt(b, int64(*u.CacheReadInputTokens), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// documentJSON is a tool input as JSON text; a missing input is {}.
func documentJSON(d document.Interface) ([]byte, error) {
	if d == nil {
		return []byte("{}"), nil
	}
	return d.MarshalSmithyDocument()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func deref32(n *int32) int32 {
	if n == nil {
		return 0
	}
	return *n
}

// newID returns a completion id like OpenAI's: "chatcmpl-" and 24
// random alphanumerics.
func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [24]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "chatcmpl-" + string(b[:])
}
