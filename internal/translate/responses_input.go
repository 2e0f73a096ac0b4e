package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Responses input items into Chat Completions messages. The table in
// responses.go says what becomes of each.

// respItem is an input item of any type; which fields are set depends on
// Type. Fields of other item types are ignored.
type respItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"` // a string or an array of parts
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"` // a string or an array of parts
}

// respPart is a content part of any type.
type respPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL string `json:"image_url"`
	Detail   string `json:"detail"`
	FileID   string `json:"file_id"`
	FileData string `json:"file_data"`
	FileURL  string `json:"file_url"`
	Filename string `json:"filename"`
}

// chatBuilder collects the chat messages of a conversation. A run of
// assistant items (a message and the function calls after it, as one
// response's output) becomes one assistant message; images and files of
// tool outputs wait in parts for a user message after the tool messages,
// since nothing may come between an assistant message and its tool
// answers.
type chatBuilder struct {
	msgs  []chatMessage
	asst  int             // index of the assistant message still taking items, or -1
	text  strings.Builder // its text so far
	parts []chatPart      // images and files of tool outputs, for the next user message
}

// instructions writes the instructions as the first system message.
func (b *chatBuilder) instructions(raw json.RawMessage) error {
	if isNone(raw) {
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return reqErr("instructions", "must be a string")
	}
	if s != "" {
		b.msgs = append(b.msgs, chatMessage{Role: "system", Content: jsonString(s)})
	}
	return nil
}

// addItems translates items; param names them in errors ("input", or
// "previous_response_id" for the stored history).
func (b *chatBuilder) addItems(items []respItem, param string) error {
	for i := range items {
		ip := fmt.Sprintf("%s[%d]", param, i)
		if err := b.add(&items[i], ip); err != nil {
			return err
		}
	}
	return nil
}

func (b *chatBuilder) add(it *respItem, param string) error {
	switch it.Type {
	case "", "message":
		return b.message(it, param)
	case "function_call":
		return b.functionCall(it, param)
	case "function_call_output":
		return b.functionCallOutput(it, param)
	case "reasoning":
		return nil // nothing to carry it; it does not end the assistant's run
	}
	return unknownItem(param, it.Type)
}

func (b *chatBuilder) message(it *respItem, param string) error {
	switch it.Role {
	case "user":
		return b.user(it.Content, param+".content")
	case "system", "developer":
		text, err := partsText(it.Content, param+".content", "\n\n", false)
		if err != nil {
			return err
		}
		b.closeAssistant()
		b.flushParts()
		b.msgs = append(b.msgs, chatMessage{Role: "system", Content: jsonString(text)})
		return nil
	case "assistant":
		text, err := partsText(it.Content, param+".content", "\n\n", true)
		if err != nil {
			return err
		}
		b.openAssistant()
		if text != "" {
			if b.text.Len() > 0 {
				b.text.WriteString("\n\n")
			}
			b.text.WriteString(text)
		}
		return nil
	case "":
		return reqErr(param+".role", "is required")
	}
	return reqErr(param+".role", "must be user, system, developer or assistant, not %q", it.Role)
}

// user writes a user message, with the parts tool outputs left first.
func (b *chatBuilder) user(content json.RawMessage, param string) error {
	parts, str, isString, err := decodeParts(content, param)
	if err != nil {
		return err
	}
	b.closeAssistant()
	if isString && len(b.parts) == 0 {
		b.msgs = append(b.msgs, chatMessage{Role: "user", Content: jsonString(str)})
		return nil
	}
	out := b.parts
	b.parts = nil
	if isString {
		out = append(out, chatPart{Type: "text", Text: str})
	}
	for j := range parts {
		p, err := respUserPart(&parts[j], fmt.Sprintf("%s[%d]", param, j))
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	return b.appendUser(out)
}

// appendUser appends a user message of parts: a lone text part as string
// content.
func (b *chatBuilder) appendUser(parts []chatPart) error {
	switch {
	case len(parts) == 0:
		b.msgs = append(b.msgs, chatMessage{Role: "user", Content: jsonString("")})
	case len(parts) == 1 && parts[0].Type == "text":
		b.msgs = append(b.msgs, chatMessage{Role: "user", Content: jsonString(parts[0].Text)})
	default:
		raw, err := json.Marshal(parts)
		if err != nil {
			return err
		}
		b.msgs = append(b.msgs, chatMessage{Role: "user", Content: raw})
	}
	return nil
}

// respUserPart translates one part of a user message (or of a tool output,
// where text parts are read before).
func respUserPart(p *respPart, param string) (chatPart, error) {
	switch p.Type {
	case "input_text", "output_text":
		return chatPart{Type: "text", Text: p.Text}, nil
	case "input_image":
		if p.ImageURL == "" {
			if p.FileID != "" {
				return chatPart{}, reqErr(param+".file_id", "files by id are not available for this model; send the image as image_url")
			}
			return chatPart{}, reqErr(param+".image_url", "is required")
		}
		img := &chatImageURL{URL: p.ImageURL}
		if p.Detail != "" && p.Detail != "auto" {
			img.Detail = p.Detail
		}
		return chatPart{Type: "image_url", ImageURL: img}, nil
	case "input_file":
		switch {
		case p.FileData != "":
			return chatPart{Type: "file", File: &chatFile{Filename: p.Filename, FileData: p.FileData}}, nil
		case p.FileID != "":
			return chatPart{}, reqErr(param+".file_id", "files by id are not available for this model; send file_data")
		case p.FileURL != "":
			return chatPart{}, reqErr(param+".file_url", "files by URL are not available for this model; send file_data")
		}
		return chatPart{}, reqErr(param+".file_data", "is required")
	}
	return chatPart{}, reqErr(param+".type", "content part type %q cannot be translated for this model", p.Type)
}

// decodeParts decodes a content field: a string, or an array of parts;
// null or absent is no part.
func decodeParts(raw json.RawMessage, param string) (parts []respPart, str string, isString bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case isNone(raw):
		return nil, "", false, nil
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &str); err != nil {
			return nil, "", false, decodeErr(param, err)
		}
		return nil, str, true, nil
	case raw[0] != '[':
		return nil, "", false, reqErr(param, "must be a string or an array of content parts")
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) == nil {
			for j, e := range elems {
				var p respPart
				if err := json.Unmarshal(e, &p); err != nil {
					return nil, "", false, decodeErr(fmt.Sprintf("%s[%d]", param, j), err)
				}
			}
		}
		return nil, "", false, decodeErr(param, err)
	}
	return parts, "", false, nil
}

// partsText reads content made of text parts only, joined with sep;
// assistant allows refusal parts (read as text).
func partsText(content json.RawMessage, param, sep string, assistant bool) (string, error) {
	parts, str, isString, err := decodeParts(content, param)
	if err != nil || isString {
		return str, err
	}
	var sb strings.Builder
	for j := range parts {
		p := &parts[j]
		var t string
		switch {
		case p.Type == "input_text" || p.Type == "output_text":
			t = p.Text
		case p.Type == "refusal" && assistant:
			t = p.Refusal
		default:
			return "", reqErr(fmt.Sprintf("%s[%d].type", param, j), "content part type %q cannot be translated in this message", p.Type)
		}
		if sb.Len() > 0 && t != "" {
			sb.WriteString(sep)
		}
		sb.WriteString(t)
	}
	return sb.String(), nil
}

// openAssistant makes sure an assistant message takes the next items.
func (b *chatBuilder) openAssistant() {
	if b.asst >= 0 {
		return
	}
	b.flushParts()
	b.asst = len(b.msgs)
	b.text.Reset()
	b.msgs = append(b.msgs, chatMessage{Role: "assistant"})
}

// closeAssistant sets the open assistant message's content: its text,
// or null beside tool calls.
func (b *chatBuilder) closeAssistant() {
	if b.asst < 0 {
		return
	}
	m := &b.msgs[b.asst]
	switch {
	case b.text.Len() > 0:
		m.Content = jsonString(b.text.String())
	case len(m.ToolCalls) > 0:
		m.Content = json.RawMessage("null")
	default:
		m.Content = jsonString("")
	}
	b.asst = -1
}

// flushParts writes the parts tool outputs left as a user message.
func (b *chatBuilder) flushParts() {
	if len(b.parts) == 0 {
		return
	}
	parts := b.parts
	b.parts = nil
	_ = b.appendUser(parts) // image and file parts always encode
}

func (b *chatBuilder) functionCall(it *respItem, param string) error {
	if it.CallID == "" {
		return reqErr(param+".call_id", "is required")
	}
	if it.Name == "" {
		return reqErr(param+".name", "is required")
	}
	args := it.Arguments
	if strings.TrimSpace(args) == "" {
		args = "{}"
	}
	b.openAssistant()
	m := &b.msgs[b.asst]
	m.ToolCalls = append(m.ToolCalls, chatToolCall{ID: it.CallID, Type: "function", Function: chatFunctionCall{Name: it.Name, Arguments: args}})
	return nil
}

// functionCallOutput writes a tool message; the images and files of the
// output wait in b.parts.
func (b *chatBuilder) functionCallOutput(it *respItem, param string) error {
	if it.CallID == "" {
		return reqErr(param+".call_id", "is required")
	}
	parts, str, isString, err := decodeParts(it.Output, param+".output")
	if err != nil {
		return err
	}
	b.closeAssistant()
	if !isString {
		var sb strings.Builder
		for j := range parts {
			p := &parts[j]
			pp := fmt.Sprintf("%s.output[%d]", param, j)
			if p.Type == "input_text" || p.Type == "output_text" {
				if sb.Len() > 0 {
					sb.WriteByte('\n')
				}
				sb.WriteString(p.Text)
				continue
			}
			cp, err := respUserPart(p, pp)
			if err != nil {
				return err
			}
			b.parts = append(b.parts, cp)
		}
		str = sb.String()
	}
	b.msgs = append(b.msgs, chatMessage{Role: "tool", ToolCallID: it.CallID, Content: jsonString(str)})
	return nil
}
