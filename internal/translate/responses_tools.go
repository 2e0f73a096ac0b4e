package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// Responses tools and tool_choice into Chat Completions, and the echo of
// the request in the response object.

// respTool is a tool of any type; function tools use every field.
type respTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// respToolChoice is an object tool_choice.
type respToolChoice struct {
	Type  string     `json:"type"`
	Name  string     `json:"name"`
	Mode  string     `json:"mode"`  // allowed_tools
	Tools []respTool `json:"tools"` // allowed_tools: {type, name}
}

// translateResponsesTools writes the function tools, leaves the hosted
// ones out (returning their names) and maps tool_choice. With no function
// left, tool_choice and parallel_tool_calls are left out too (OpenAI
// refuses them without tools), unless the choice forces a tool call.
func translateResponsesTools(out *respChatRequest, rawTools, rawChoice json.RawMessage, parallel *bool) ([]string, error) {
	var tools []json.RawMessage
	if !isNone(rawTools) {
		if err := json.Unmarshal(rawTools, &tools); err != nil {
			return nil, decodeErr("tools", err)
		}
	}
	var dropped []string
	for i, raw := range tools {
		tp := fmt.Sprintf("tools[%d]", i)
		var t respTool
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, decodeErr(tp, err)
		}
		switch t.Type {
		case "function":
			if t.Name == "" {
				return nil, reqErr(tp+".name", "is required")
			}
			params := t.Parameters
			if isNone(params) {
				params = json.RawMessage(`{"type":"object","properties":{}}`)
			}
			out.Tools = append(out.Tools, respChatTool{Type: "function", Function: respChatFunction{Name: t.Name, Description: t.Description, Parameters: params, Strict: t.Strict}})
		case "":
			return nil, reqErr(tp+".type", "is required")
		case "namespace", "custom":
			dropped = append(dropped, t.Type+":"+t.Name)
		default:
			dropped = append(dropped, t.Type)
		}
	}
	choice, err := toolChoice(out, rawChoice, dropped)
	if err != nil {
		return nil, err
	}
	if len(out.Tools) > 0 {
		out.ToolChoice = choice
		out.ParallelToolCalls = parallel
	}
	return dropped, nil
}

// toolChoice maps tool_choice; allowed_tools narrows out.Tools.
func toolChoice(out *respChatRequest, raw json.RawMessage, dropped []string) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if isNone(raw) {
		return nil, nil
	}
	if raw[0] == '"' {
		switch string(raw) {
		case `"auto"`, `"none"`:
			return raw, nil
		case `"required"`:
			if len(out.Tools) == 0 {
				return nil, forcesDropped(dropped)
			}
			return raw, nil
		}
		return nil, reqErr("tool_choice", "must be auto, none, required or an object, not %s", raw)
	}
	var c respToolChoice
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, decodeErr("tool_choice", err)
	}
	switch c.Type {
	case "function":
		if c.Name == "" {
			return nil, reqErr("tool_choice.name", "is required")
		}
		if !slices.ContainsFunc(out.Tools, func(t respChatTool) bool { return t.Function.Name == c.Name }) {
			return nil, reqErr("tool_choice.name", "%q is no function tool of this request", c.Name)
		}
		return marshal(chatTool{Type: "function", Function: chatFunction{Name: c.Name}})
	case "allowed_tools":
		return allowedTools(out, &c, dropped)
	case "":
		return nil, reqErr("tool_choice.type", "is required")
	}
	return nil, reqErr("tool_choice", "forces the hosted tool %q, which this model cannot run", c.Type)
}

// allowedTools keeps the function tools c allows and returns its mode.
func allowedTools(out *respChatRequest, c *respToolChoice, dropped []string) (json.RawMessage, error) {
	if c.Mode != "auto" && c.Mode != "required" {
		return nil, reqErr("tool_choice.mode", "must be auto or required, not %q", c.Mode)
	}
	out.Tools = slices.DeleteFunc(out.Tools, func(t respChatTool) bool {
		return !slices.ContainsFunc(c.Tools, func(a respTool) bool { return a.Type == "function" && a.Name == t.Function.Name })
	})
	if len(out.Tools) == 0 {
		if c.Mode == "required" {
			return nil, forcesDropped(dropped)
		}
		return nil, nil
	}
	return jsonString(c.Mode), nil
}

func forcesDropped(dropped []string) error {
	if len(dropped) == 0 {
		return reqErr("tool_choice", "requires a tool call, but the request has no function tool")
	}
	return reqErr("tool_choice", "requires a tool call, but the only tools are hosted tools this model cannot run (%s)", dropped[0])
}

// responseEcho writes the request fields the response object repeats,
// compact, as "key":value pairs without braces.
func responseEcho(req *respRequest) ([]byte, error) {
	b := make([]byte, 0, 256+len(req.Tools)+len(req.Instructions))
	var err error
	field := func(name string, raw json.RawMessage, def string) {
		if err != nil {
			return
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		if isNone(bytes.TrimSpace(raw)) {
			b = append(b, def...)
			return
		}
		b, err = appendCompact(b, raw)
	}
	field("background", nil, "false")
	field("instructions", req.Instructions, "null")
	field("max_output_tokens", intJSON(req.MaxOutputTokens), "null")
	field("max_tool_calls", intJSON(req.MaxToolCalls), "null")
	field("parallel_tool_calls", boolJSON(req.ParallelToolCalls), "true")
	field("previous_response_id", stringJSON(req.PreviousResponseID), "null")
	field("prompt_cache_key", stringJSON(req.PromptCacheKey), "null")
	reasoning, rerr := reasoningEcho(req.Reasoning)
	if rerr != nil {
		return nil, rerr
	}
	field("reasoning", reasoning, "")
	field("safety_identifier", stringJSON(req.SafetyIdentifier), "null")
	field("service_tier", nil, `"default"`)
	field("store", boolJSON(req.Store), "true")
	field("temperature", floatJSON(req.Temperature), "null")
	text, terr := textEcho(req.Text)
	if terr != nil {
		return nil, terr
	}
	field("text", text, "")
	field("tool_choice", req.ToolChoice, `"auto"`)
	field("tools", req.Tools, "[]")
	field("top_logprobs", intJSON(req.TopLogprobs), "0")
	field("top_p", floatJSON(req.TopP), "null")
	field("truncation", stringJSON(req.Truncation), `"disabled"`)
	if req.FrequencyPenalty != nil {
		field("frequency_penalty", floatJSON(req.FrequencyPenalty), "")
	}
	if req.PresencePenalty != nil {
		field("presence_penalty", floatJSON(req.PresencePenalty), "")
	}
	field("user", stringJSON(req.User), "null")
	field("metadata", req.Metadata, "{}")
	return b, err
}

// appendCompact appends raw without insignificant space: the echo goes
// into SSE data lines, which must not hold a newline.
func appendCompact(b []byte, raw json.RawMessage) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func intJSON(v *int64) json.RawMessage {
	if v == nil {
		return nil
	}
	return strconv.AppendInt(nil, *v, 10)
}

func floatJSON(v *float64) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(*v) // a decoded number always encodes
	return b
}

func boolJSON(v *bool) json.RawMessage {
	if v == nil {
		return nil
	}
	return strconv.AppendBool(nil, *v)
}

func stringJSON(v *string) json.RawMessage {
	if v == nil {
		return nil
	}
	return appendJSONString(nil, *v)
}

// reasoningEcho normalizes reasoning to {"effort":…,"summary":…}.
func reasoningEcho(raw json.RawMessage) (json.RawMessage, error) {
	var r struct {
		Effort          *string `json:"effort"`
		Summary         *string `json:"summary"`
		GenerateSummary *string `json:"generate_summary"` // the older name of summary
	}
	if !isNone(raw) {
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, decodeErr("reasoning", err)
		}
	}
	if r.Summary == nil {
		r.Summary = r.GenerateSummary
	}
	b := append([]byte(`{"effort":`), orNull(stringJSON(r.Effort))...)
	b = append(b, `,"summary":`...)
	b = append(b, orNull(stringJSON(r.Summary))...)
	return append(b, '}'), nil
}

// textEcho normalizes text to {"format":…} (and verbosity if given).
func textEcho(raw json.RawMessage) (json.RawMessage, error) {
	var t respText
	if !isNone(raw) {
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, decodeErr("text", err)
		}
	}
	b := []byte(`{"format":`)
	if isNone(t.Format) {
		b = append(b, `{"type":"text"}`...)
	} else {
		b = append(b, t.Format...)
	}
	if !isNone(t.Verbosity) {
		b = append(b, `,"verbosity":`...)
		b = append(b, t.Verbosity...)
	}
	return append(b, '}'), nil
}

func orNull(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}
