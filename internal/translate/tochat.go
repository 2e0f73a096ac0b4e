// # Messages to Chat Completions
//
// MessagesToChat serves an Anthropic Messages client (Claude Code, the
// Anthropic SDKs) from an upstream that speaks Chat Completions. Every
// field of a Messages request has one of these fates:
//
//	Messages request                 Chat Completions request
//	model                            model = ChatOptions.Model (the remote name)
//	max_tokens                       max_tokens, or max_completion_tokens with ChatOptions.MaxCompletionTokens
//	system (string or text blocks)   first message, role system; blocks joined with "\n\n"; cache_control dropped
//	messages[] role system           a system message in place (Claude Code sends one after the user turn)
//	messages[] role user, string     user message with string content
//	  text block                     text part (a lone text part becomes string content)
//	  image, source base64           image_url part, url = data:MEDIA_TYPE;base64,DATA
//	  image, source url              image_url part, url as given
//	  document, base64 PDF           file part, file_data = data:application/pdf;base64,DATA, filename = title or "document.pdf"
//	  document, text source          text part
//	  tool_result                    role tool message, tool_call_id = tool_use_id, placed before the
//	                                 rest of the turn; content = its text (text blocks joined with "\n");
//	                                 is_error true: the text is prefixed with "Error: "
//	  image inside tool_result       image_url part of a user message that follows the tool messages
//	messages[] role assistant        assistant message; text blocks joined with "\n\n" into string content
//	  tool_use                       tool_calls[] {id, type function, function {name, arguments = input compacted}}
//	  thinking, redacted_thinking    dropped (no Chat Completions equivalent; signatures cannot survive)
//	cache_control (anywhere)         dropped
//	tools[] custom (type absent)     tools[] {type function, function {name, description, parameters = input_schema}}
//	tools[] server tools             dropped (web_search_*, bash_*, text_editor_*, computer_*, code_execution_*, …)
//	tool_choice auto / any / none    "auto" / "required" / "none"
//	tool_choice tool {name}          {"type":"function","function":{"name":NAME}}
//	disable_parallel_tool_use        parallel_tool_calls false
//	stop_sequences                   stop
//	temperature, top_p               temperature, top_p
//	metadata.user_id                 user
//	stream (ChatOptions.Stream)      stream true, stream_options {"include_usage":true}
//	top_k, thinking, service_tier,   dropped
//	container, mcp_servers, and
//	any unknown field
//
// Refused with a *RequestError (a 400 invalid_request_error): malformed
// JSON or wrong types, missing messages, a role other than user,
// assistant or system, block types Chat Completions cannot carry (e.g.
// search_result, server_tool_use, a document from a URL or the Files API),
// images in assistant turns, a tool_use without a name, a custom tool
// without a name, an unknown tool_choice type.
//
// ChatToMessagesResponse and ChatStreamToMessages carry the answer back:
//
//	Chat Completions answer           Messages answer
//	id                                id = "msg_" + id
//	message.content (or refusal)      one text block, first
//	message.tool_calls[]              tool_use blocks, input = the parsed arguments; arguments that are
//	                                  not a JSON object are kept as {"_raw_arguments": TEXT}
//	reasoning_content                 dropped (no signature to give it)
//	finish_reason stop                stop_reason end_turn (stop_sequence is always null: OpenAI does
//	                                  not say which stop sequence matched)
//	finish_reason length              max_tokens
//	tool_calls, function_call         tool_use (also whenever tool calls are present, unless length)
//	content_filter                    refusal
//	usage.prompt_tokens               input_tokens = prompt_tokens - prompt_tokens_details.cached_tokens
//	prompt_tokens_details.cached      cache_read_input_tokens; cache_creation_input_tokens is 0
//	usage.completion_tokens           output_tokens
//	model                             the alias the client asked for

package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ChatOptions say how MessagesToChat writes the upstream request.
type ChatOptions struct {
	// Model is the remote model name written as "model".
	Model string
	// Stream asks for a stream with usage in its last chunk.
	Stream bool
	// MaxCompletionTokens writes max_completion_tokens instead of
	// max_tokens, as OpenAI's and Azure's reasoning models require.
	MaxCompletionTokens bool
}

// RequestError is a client request that cannot be translated: malformed,
// or asking for something the target dialect cannot express. The gateway
// answers it as a 400 invalid_request_error naming Param.
type RequestError struct {
	Param   string // the offending field, e.g. "messages[2].content[0].type"
	Message string
}

func (e *RequestError) Error() string {
	if e.Param == "" {
		return e.Message
	}
	return e.Param + ": " + e.Message
}

func reqErr(param, format string, args ...any) error {
	return &RequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// decodeErr turns a json decoding error into a RequestError naming the
// field when encoding/json knows it.
func decodeErr(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		param := te.Field
		if prefix != "" {
			param = strings.TrimSuffix(prefix+"."+param, ".")
		}
		return reqErr(param, "must not be a JSON %s", te.Value)
	}
	return reqErr(prefix, "malformed JSON: %v", err)
}

// MessagesToChat translates an Anthropic Messages request body into a
// Chat Completions request body. The table at the top of this file says
// what becomes of each field. Errors are *RequestError.
//
// It scans the body and copies the values that pass unchanged
// (tochat_fast.go); a body the scan leaves alone, every refused one
// among them, is decoded with encoding/json instead, which gives the
// same bytes.
func MessagesToChat(body []byte, opts ChatOptions) ([]byte, error) {
	if out, ok := fastMessagesToChat(body, opts); ok {
		return out, nil
	}
	return decodedMessagesToChat(body, opts)
}

// decodedMessagesToChat is MessagesToChat by encoding/json: the
// reference for fastMessagesToChat, and the translation of whatever that
// gives up on, refusals included.
func decodedMessagesToChat(body []byte, opts ChatOptions) ([]byte, error) {
	var req msgRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, decodeErr("", err)
	}
	if req.Messages == nil {
		return nil, reqErr("messages", "is required")
	}
	out := chatRequest{Model: opts.Model, Temperature: req.Temperature, TopP: req.TopP}
	if opts.MaxCompletionTokens {
		out.MaxCompletionTokens = req.MaxTokens
	} else {
		out.MaxTokens = req.MaxTokens
	}
	if opts.Stream {
		out.Stream = true
		out.StreamOptions = json.RawMessage(`{"include_usage":true}`)
	}
	if len(req.StopSequences) > 0 {
		out.Stop, _ = json.Marshal(req.StopSequences)
	}
	if req.Metadata != nil {
		out.User = req.Metadata.UserID
	}

	sys, err := systemText(req.System, "system")
	if err != nil {
		return nil, err
	}
	out.Messages = make([]chatMessage, 0, len(req.Messages)+2)
	if sys != "" {
		out.Messages = append(out.Messages, chatMessage{Role: "system", Content: jsonString(sys)})
	}
	for i, m := range req.Messages {
		if out.Messages, err = appendMessage(out.Messages, m, fmt.Sprintf("messages[%d]", i)); err != nil {
			return nil, err
		}
	}
	if err := translateTools(&out, req.Tools, req.ToolChoice); err != nil {
		return nil, err
	}
	return marshal(out)
}

// marshal encodes v without HTML escaping (the texts are prompts, not
// markup, and stay readable in golden files).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// contentBlocks decodes a content field: a string (returned as one text
// block) or an array of blocks; null or absent is no block.
func contentBlocks(raw json.RawMessage, param string) ([]msgBlock, error) {
	blocks, _, err := contentBlocksKind(raw, param)
	return blocks, err
}

// contentBlocksKind is contentBlocks that also tells whether the content
// was a plain string.
func contentBlocksKind(raw json.RawMessage, param string) (blocks []msgBlock, isString bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return nil, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, decodeErr(param, err)
		}
		return []msgBlock{{Type: "text", Text: s}}, true, nil
	}
	if raw[0] != '[' {
		return nil, false, reqErr(param, "must be a string or an array of content blocks")
	}
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, false, blockErr(raw, param, err)
	}
	return blocks, false, nil
}

// knownBlocks are the block types msgBlock decodes; others (search_result,
// server_tool_use, …) may have fields of other shapes.
var knownBlocks = map[string]bool{"text": true, "image": true, "document": true, "tool_use": true, "tool_result": true, "thinking": true, "redacted_thinking": true}

// blockErr finds which block of an array failed to decode, to name it:
// a block type the translation does not know, or a wrong field type.
func blockErr(raw json.RawMessage, param string, err error) error {
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return decodeErr(param, err)
	}
	for i, e := range elems {
		bp := fmt.Sprintf("%s[%d]", param, i)
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(e, &probe); err != nil {
			return decodeErr(bp, err)
		}
		if !knownBlocks[probe.Type] {
			return reqErr(bp+".type", "block type %q cannot be translated for this model", probe.Type)
		}
		var b msgBlock
		if err := json.Unmarshal(e, &b); err != nil {
			return decodeErr(bp, err)
		}
	}
	return decodeErr(param, err)
}

// systemText reads a system prompt (a string or text blocks) as one
// string, blocks joined with blank lines.
func systemText(raw json.RawMessage, param string) (string, error) {
	blocks, err := contentBlocks(raw, param)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for i, b := range blocks {
		if b.Type != "text" {
			return "", reqErr(fmt.Sprintf("%s[%d].type", param, i), "a system prompt holds text blocks only, not %q", b.Type)
		}
		if sb.Len() > 0 && b.Text != "" {
			sb.WriteString("\n\n")
		}
		sb.WriteString(b.Text)
	}
	return sb.String(), nil
}

func appendMessage(out []chatMessage, m msgMessage, param string) ([]chatMessage, error) {
	switch m.Role {
	case "system":
		s, err := systemText(m.Content, param+".content")
		if err != nil {
			return nil, err
		}
		return append(out, chatMessage{Role: "system", Content: jsonString(s)}), nil
	case "user":
		return appendUser(out, m.Content, param+".content")
	case "assistant":
		return appendAssistant(out, m.Content, param+".content")
	}
	return nil, reqErr(param+".role", "must be user, assistant or system, not %q", m.Role)
}

// appendUser writes a user turn: its tool results first, as tool
// messages right after the assistant turn that called them, then one
// user message with the images of those results and the rest of the
// turn.
func appendUser(out []chatMessage, content json.RawMessage, param string) ([]chatMessage, error) {
	blocks, isString, err := contentBlocksKind(content, param)
	if err != nil {
		return nil, err
	}
	if isString {
		return append(out, chatMessage{Role: "user", Content: jsonString(blocks[0].Text)}), nil
	}
	var parts []chatPart
	for i, b := range blocks {
		bp := fmt.Sprintf("%s[%d]", param, i)
		if b.Type == "tool_result" {
			msg, images, err := toolResult(b, bp)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
			parts = append(parts, images...)
		}
	}
	for i, b := range blocks {
		bp := fmt.Sprintf("%s[%d]", param, i)
		switch b.Type {
		case "tool_result":
		case "thinking", "redacted_thinking":
		default:
			p, err := userPart(b, bp)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		if len(out) > 0 && out[len(out)-1].Role == "tool" {
			return out, nil // a turn of tool results alone
		}
		return append(out, chatMessage{Role: "user", Content: jsonString("")}), nil
	}
	if len(parts) == 1 && parts[0].Type == "text" {
		return append(out, chatMessage{Role: "user", Content: jsonString(parts[0].Text)}), nil
	}
	raw, err := json.Marshal(parts)
	if err != nil {
		return nil, err
	}
	return append(out, chatMessage{Role: "user", Content: raw}), nil
}

// userPart translates one block of a user turn into a content part.
func userPart(b msgBlock, param string) (chatPart, error) {
	switch b.Type {
	case "text":
		return chatPart{Type: "text", Text: b.Text}, nil
	case "image":
		return imagePart(b, param)
	case "document":
		return documentPart(b, param)
	case "tool_use":
		return chatPart{}, reqErr(param+".type", "tool_use blocks belong in assistant turns")
	}
	return chatPart{}, reqErr(param+".type", "block type %q cannot be translated for this model", b.Type)
}

func imagePart(b msgBlock, param string) (chatPart, error) {
	s := b.Source
	if s == nil {
		return chatPart{}, reqErr(param+".source", "is required")
	}
	switch s.Type {
	case "base64":
		if s.MediaType == "" || s.Data == "" {
			return chatPart{}, reqErr(param+".source", "a base64 source needs media_type and data")
		}
		return chatPart{Type: "image_url", ImageURL: &chatImageURL{URL: "data:" + s.MediaType + ";base64," + s.Data}}, nil
	case "url":
		if s.URL == "" {
			return chatPart{}, reqErr(param+".source.url", "is required")
		}
		return chatPart{Type: "image_url", ImageURL: &chatImageURL{URL: s.URL}}, nil
	}
	return chatPart{}, reqErr(param+".source.type", "image source %q cannot be translated for this model", s.Type)
}

func documentPart(b msgBlock, param string) (chatPart, error) {
	s := b.Source
	if s == nil {
		return chatPart{}, reqErr(param+".source", "is required")
	}
	switch {
	case s.Type == "base64" && s.MediaType == "application/pdf":
		name := b.Title
		if name == "" {
			name = "document.pdf"
		}
		return chatPart{Type: "file", File: &chatFile{Filename: name, FileData: "data:application/pdf;base64," + s.Data}}, nil
	case s.Type == "text":
		return chatPart{Type: "text", Text: s.Data}, nil
	}
	return chatPart{}, reqErr(param+".source", "document source %q (%s) cannot be translated for this model", s.Type, s.MediaType)
}

// toolResult translates a tool_result block into a tool message and the
// image parts it carried.
func toolResult(b msgBlock, param string) (chatMessage, []chatPart, error) {
	if b.ToolUseID == "" {
		return chatMessage{}, nil, reqErr(param+".tool_use_id", "is required")
	}
	blocks, err := contentBlocks(b.Content, param+".content")
	if err != nil {
		return chatMessage{}, nil, err
	}
	var sb strings.Builder
	if b.IsError {
		sb.WriteString("Error: ")
	}
	var images []chatPart
	n := 0
	for i, c := range blocks {
		cp := fmt.Sprintf("%s.content[%d]", param, i)
		switch c.Type {
		case "text":
			if n > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(c.Text)
			n++
		case "image":
			p, err := imagePart(c, cp)
			if err != nil {
				return chatMessage{}, nil, err
			}
			images = append(images, p)
		case "document":
			if c.Source == nil || c.Source.Type != "text" {
				return chatMessage{}, nil, reqErr(cp+".source", "only text documents can be translated inside a tool_result")
			}
			if n > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(c.Source.Data)
			n++
		default:
			return chatMessage{}, nil, reqErr(cp+".type", "block type %q cannot be translated inside a tool_result", c.Type)
		}
	}
	return chatMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: jsonString(sb.String())}, images, nil
}

// appendAssistant writes an assistant turn: its text as string content,
// its tool_use blocks as tool_calls; thinking is dropped.
func appendAssistant(out []chatMessage, content json.RawMessage, param string) ([]chatMessage, error) {
	blocks, err := contentBlocks(content, param)
	if err != nil {
		return nil, err
	}
	var sb strings.Builder
	msg := chatMessage{Role: "assistant"}
	for i, b := range blocks {
		bp := fmt.Sprintf("%s[%d]", param, i)
		switch b.Type {
		case "text":
			if sb.Len() > 0 && b.Text != "" {
				sb.WriteString("\n\n")
			}
			sb.WriteString(b.Text)
		case "tool_use":
			call, err := toolCall(b, bp)
			if err != nil {
				return nil, err
			}
			msg.ToolCalls = append(msg.ToolCalls, call)
		case "thinking", "redacted_thinking":
		default:
			return nil, reqErr(bp+".type", "block type %q cannot be translated in an assistant turn", b.Type)
		}
	}
	switch {
	case sb.Len() > 0:
		msg.Content = jsonString(sb.String())
	case len(msg.ToolCalls) > 0:
		msg.Content = json.RawMessage("null")
	default:
		msg.Content = jsonString("")
	}
	return append(out, msg), nil
}

func toolCall(b msgBlock, param string) (chatToolCall, error) {
	if b.ID == "" {
		return chatToolCall{}, reqErr(param+".id", "is required")
	}
	if b.Name == "" {
		return chatToolCall{}, reqErr(param+".name", "is required")
	}
	args := "{}"
	if in := bytes.TrimSpace(b.Input); len(in) > 0 && !bytes.Equal(in, []byte("null")) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, in); err != nil {
			return chatToolCall{}, reqErr(param+".input", "malformed JSON")
		}
		args = buf.String()
	}
	return chatToolCall{ID: b.ID, Type: "function", Function: chatFunctionCall{Name: b.Name, Arguments: args}}, nil
}

// translateTools writes the client tools as functions, drops server
// tools, and maps tool_choice; with no function left, tool_choice and
// parallel_tool_calls are left out (OpenAI refuses them without tools).
func translateTools(out *chatRequest, tools []msgTool, choice *msgToolChoice) error {
	for i, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			continue // a server tool, run by Anthropic: nobody would run it here
		}
		if t.Name == "" {
			return reqErr(fmt.Sprintf("tools[%d].name", i), "is required")
		}
		params := t.InputSchema
		if len(bytes.TrimSpace(params)) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, chatTool{Type: "function", Function: chatFunction{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	if choice == nil {
		return nil
	}
	var c json.RawMessage
	switch choice.Type {
	case "auto":
		c = json.RawMessage(`"auto"`)
	case "any":
		c = json.RawMessage(`"required"`)
	case "none":
		c = json.RawMessage(`"none"`)
	case "tool":
		if choice.Name == "" {
			return reqErr("tool_choice.name", "is required when type is tool")
		}
		c, _ = json.Marshal(chatTool{Type: "function", Function: chatFunction{Name: choice.Name}})
	default:
		return reqErr("tool_choice.type", "must be auto, any, tool or none, not %q", choice.Type)
	}
	if len(out.Tools) == 0 {
		return nil
	}
	out.ToolChoice = c
	if choice.DisableParallelToolUse && choice.Type != "none" {
		f := false
		out.ParallelToolCalls = &f
	}
	return nil
}
