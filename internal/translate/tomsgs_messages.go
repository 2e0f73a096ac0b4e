package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The messages of a chat request, as Messages turns: see the table in
// tomsgs.go.

// msgsTurns splits chat messages into the system prompt and the
// Messages turns, merging consecutive turns of one role.
func msgsTurns(msgs []chatMessageIn) (string, []msgTurn, error) {
	if len(msgs) == 0 {
		return "", nil, &RequestError{"messages", "messages: at least one message is required"}
	}
	var system []string
	turns := make([]msgTurn, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		var role string
		var blocks []msgBlock
		var err error
		switch m.Role {
		case "system", "developer":
			var text string
			if text, err = chatSystemText(m.Content, i); err != nil {
				return "", nil, err
			}
			if text != "" {
				system = append(system, text)
			}
			continue
		case "user":
			role = "user"
			blocks, err = msgsUserBlocks(m.Content, i)
			if err == nil && len(blocks) == 0 {
				err = &RequestError{chatMsgParam(i, ".content"), chatMsgParam(i, ".content") + ": a user message needs content"}
			}
		case "assistant":
			role = "assistant"
			blocks, err = msgsAssistantBlocks(m, i)
		case "tool":
			role = "user"
			var b msgBlock
			b, err = msgsToolResult(m, i)
			blocks = []msgBlock{b}
		case "function":
			err = &RequestError{chatMsgParam(i, ".role"), chatMsgParam(i, ".role") + ": the legacy function role is not supported; answer tool_calls with tool messages"}
		case "":
			err = &RequestError{chatMsgParam(i, ".role"), chatMsgParam(i, ".role") + ": required"}
		default:
			err = &RequestError{chatMsgParam(i, ".role"), fmt.Sprintf("%s: %q is not system, developer, user, assistant or tool", chatMsgParam(i, ".role"), m.Role)}
		}
		if err != nil {
			return "", nil, err
		}
		if len(blocks) == 0 {
			continue // an assistant message with nothing to say
		}
		if n := len(turns); n > 0 && turns[n-1].Role == role {
			turns[n-1].Content = append(turns[n-1].Content, blocks...)
		} else {
			turns = append(turns, msgTurn{Role: role, Content: blocks})
		}
	}
	if len(turns) == 0 {
		return "", nil, &RequestError{"messages", "messages: at least one user, assistant or tool message is required"}
	}
	for i := range turns {
		if turns[i].Role == "user" {
			// Messages wants a turn's tool results before anything else
			// in it; a user message sent before tool messages would
			// otherwise be refused.
			slices.SortStableFunc(turns[i].Content, func(a, b msgBlock) int {
				return toolResultRank(a) - toolResultRank(b)
			})
		}
	}
	return strings.Join(system, "\n\n"), turns, nil
}

func toolResultRank(b msgBlock) int {
	if b.Type == "tool_result" {
		return 0
	}
	return 1
}

func chatMsgParam(i int, rest string) string {
	return fmt.Sprintf("messages[%d]%s", i, rest)
}

func chatPartParam(i, j int, rest string) string {
	return fmt.Sprintf("messages[%d].content[%d]%s", i, j, rest)
}

// readChatContent reads a message's content: a string, an array of parts, or
// null (both results empty).
func readChatContent(raw json.RawMessage, i int) (string, []chatPart, error) {
	param := chatMsgParam(i, ".content")
	switch {
	case nullJSON(raw):
		return "", nil, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, &RequestError{param, param + ": malformed string"}
		}
		return s, nil, nil
	case raw[0] == '[':
		var parts []chatPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", nil, &RequestError{param, param + ": malformed content parts: " + strings.TrimPrefix(err.Error(), "json: ")}
		}
		return "", parts, nil
	}
	return "", nil, &RequestError{param, param + ": must be a string or an array of content parts"}
}

// chatTextParts joins the text parts of a system or developer message, which
// may hold nothing else.
func chatTextParts(parts []chatPart, i int) (string, error) {
	var texts []string
	for j, p := range parts {
		if p.Type != "text" {
			return "", &RequestError{chatPartParam(i, j, ".type"), fmt.Sprintf("%s: this message may hold text parts only, not %q", chatPartParam(i, j, ".type"), p.Type)}
		}
		if p.Text != "" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n\n"), nil
}

// chatSystemText is the text of a system or developer message.
func chatSystemText(raw json.RawMessage, i int) (string, error) {
	s, parts, err := readChatContent(raw, i)
	if err != nil || parts == nil {
		return s, err
	}
	return chatTextParts(parts, i)
}

// msgsUserBlocks translates a user message's content.
func msgsUserBlocks(raw json.RawMessage, i int) ([]msgBlock, error) {
	s, parts, err := readChatContent(raw, i)
	if err != nil {
		return nil, err
	}
	if parts == nil {
		if s == "" {
			return nil, nil
		}
		return []msgBlock{{Type: "text", Text: s}}, nil
	}
	blocks := make([]msgBlock, 0, len(parts))
	for j := range parts {
		p := &parts[j]
		var b msgBlock
		switch p.Type {
		case "text":
			if p.Text == "" {
				continue
			}
			b = msgBlock{Type: "text", Text: p.Text}
		case "image_url":
			b, err = msgsImageBlock(p.ImageURL, i, j)
		case "file":
			b, err = msgsDocumentBlock(p.File, i, j)
		case "input_audio":
			err = &RequestError{chatPartParam(i, j, ".type"), chatPartParam(i, j, ".type") + ": an Anthropic upstream does not take audio input; send a transcript as text"}
		default:
			err = &RequestError{chatPartParam(i, j, ".type"), fmt.Sprintf("%s: %q is not text, image_url or file", chatPartParam(i, j, ".type"), p.Type)}
		}
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// msgsImageTypes are the image types Messages accepts.
var msgsImageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// msgsImageBlock translates an image_url part.
func msgsImageBlock(u *chatImageURL, i, j int) (msgBlock, error) {
	param := chatPartParam(i, j, ".image_url.url")
	if u == nil || u.URL == "" {
		return msgBlock{}, &RequestError{param, param + ": required"}
	}
	if mt, data, ok := parseDataURL(u.URL); ok {
		if mt == "image/jpg" {
			mt = "image/jpeg"
		}
		if !msgsImageTypes[mt] {
			return msgBlock{}, &RequestError{param, fmt.Sprintf("%s: an Anthropic upstream takes JPEG, PNG, GIF or WebP images, not %q", param, mt)}
		}
		return msgBlock{Type: "image", Source: &msgSource{Type: "base64", MediaType: mt, Data: data}}, nil
	}
	if scheme, _, _ := strings.Cut(u.URL, "://"); strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http") {
		return msgBlock{Type: "image", Source: &msgSource{Type: "url", URL: u.URL}}, nil
	}
	return msgBlock{}, &RequestError{param, param + ": must be a base64 data: URL or an http(s) URL"}
}

// msgsDocumentBlock translates a file part: a PDF, or plain text.
func msgsDocumentBlock(f *chatFile, i, j int) (msgBlock, error) {
	switch {
	case f == nil:
		return msgBlock{}, &RequestError{chatPartParam(i, j, ".file"), chatPartParam(i, j, ".file") + ": required"}
	case f.FileID != "":
		return msgBlock{}, &RequestError{chatPartParam(i, j, ".file.file_id"), chatPartParam(i, j, ".file.file_id") + ": file ids name OpenAI's file storage, which an Anthropic upstream cannot read; send the file in file_data"}
	case f.FileData == "":
		return msgBlock{}, &RequestError{chatPartParam(i, j, ".file.file_data"), chatPartParam(i, j, ".file.file_data") + ": required"}
	}
	param := chatPartParam(i, j, ".file.file_data")
	mt, data, ok := parseDataURL(f.FileData)
	if !ok {
		if strings.HasPrefix(f.FileData, "data:") {
			return msgBlock{}, &RequestError{param, param + ": a data: URL must be base64"}
		}
		mt, data = "application/pdf", f.FileData // bare base64: Chat Completions takes PDFs only
	}
	b := msgBlock{Type: "document", Title: f.Filename}
	switch mt {
	case "application/pdf":
		b.Source = &msgSource{Type: "base64", MediaType: mt, Data: data}
	case "text/plain":
		text, ok := decodeBase64Text(data)
		if !ok {
			return msgBlock{}, &RequestError{param, param + ": text/plain data must be base64 of UTF-8 text"}
		}
		b.Source = &msgSource{Type: "text", MediaType: mt, Data: text}
	default:
		return msgBlock{}, &RequestError{param, fmt.Sprintf("%s: an Anthropic upstream takes PDF or plain text documents, not %q", param, mt)}
	}
	return b, nil
}

// msgsAssistantBlocks translates an assistant message: its text, then its
// tool calls.
func msgsAssistantBlocks(m *chatMessageIn, i int) ([]msgBlock, error) {
	if !nullJSON(m.FunctionCall) {
		return nil, &RequestError{chatMsgParam(i, ".function_call"), chatMsgParam(i, ".function_call") + ": the legacy function_call is not supported; use tool_calls"}
	}
	if !nullJSON(m.Audio) {
		return nil, &RequestError{chatMsgParam(i, ".audio"), chatMsgParam(i, ".audio") + ": an Anthropic upstream cannot read an earlier audio answer; send its transcript as content"}
	}
	s, parts, err := readChatContent(m.Content, i)
	if err != nil {
		return nil, err
	}
	blocks := make([]msgBlock, 0, 1+len(m.ToolCalls))
	if s != "" {
		blocks = append(blocks, msgBlock{Type: "text", Text: s})
	}
	for j, p := range parts {
		switch p.Type {
		case "text":
			if p.Text != "" {
				blocks = append(blocks, msgBlock{Type: "text", Text: p.Text})
			}
		case "refusal":
			// Messages has no refusal block; the refusal was the answer's end.
		default:
			return nil, &RequestError{chatPartParam(i, j, ".type"), fmt.Sprintf("%s: an assistant message holds text or refusal parts, not %q", chatPartParam(i, j, ".type"), p.Type)}
		}
	}
	for j := range m.ToolCalls {
		b, err := msgsToolUse(&m.ToolCalls[j], i, j)
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// msgsToolUse translates one tool call.
func msgsToolUse(tc *chatToolCall, i, j int) (msgBlock, error) {
	param := func(rest string) string { return fmt.Sprintf("messages[%d].tool_calls[%d]%s", i, j, rest) }
	switch {
	case tc.Type != "function" && tc.Type != "":
		return msgBlock{}, &RequestError{param(".type"), fmt.Sprintf("%s: only function calls can be sent to an Anthropic upstream, not %q", param(".type"), tc.Type)}
	case tc.ID == "":
		return msgBlock{}, &RequestError{param(".id"), param(".id") + ": required"}
	case tc.Function.Name == "":
		return msgBlock{}, &RequestError{param(".function.name"), param(".function.name") + ": required"}
	}
	input := bytes.TrimSpace([]byte(tc.Function.Arguments))
	if len(input) == 0 {
		input = []byte("{}")
	} else if input[0] != '{' || !json.Valid(input) {
		return msgBlock{}, &RequestError{param(".function.arguments"), param(".function.arguments") + ": must be a JSON object, as an Anthropic upstream takes a tool's input"}
	}
	return msgBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input}, nil
}

// msgsToolResult translates a tool message.
func msgsToolResult(m *chatMessageIn, i int) (msgBlock, error) {
	if m.ToolCallID == "" {
		return msgBlock{}, &RequestError{chatMsgParam(i, ".tool_call_id"), chatMsgParam(i, ".tool_call_id") + ": required"}
	}
	b := msgBlock{Type: "tool_result", ToolUseID: m.ToolCallID}
	s, parts, err := readChatContent(m.Content, i)
	if err != nil {
		return msgBlock{}, err
	}
	if parts != nil {
		// Parts become text blocks, keeping their boundaries.
		var texts []msgBlock
		for j, p := range parts {
			if p.Type != "text" {
				return msgBlock{}, &RequestError{chatPartParam(i, j, ".type"), fmt.Sprintf("%s: a tool message holds text parts only, not %q", chatPartParam(i, j, ".type"), p.Type)}
			}
			if p.Text != "" {
				texts = append(texts, msgBlock{Type: "text", Text: p.Text})
			}
		}
		if len(texts) > 0 {
			b.Content, err = marshalUnescaped(texts)
		}
	} else if s != "" {
		b.Content, err = marshalUnescaped(s)
	}
	return b, err
}
