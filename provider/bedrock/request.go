package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydocument "github.com/aws/smithy-go/document"

	"github.com/go-llm-proxy/llmproxy"
)

// The parts of an OpenAI chat completion request that Bedrock can honour.
// Other fields (response_format, logprobs, seed, user…) have no Converse
// equivalent and are ignored, as OpenAI-compatible servers commonly do.
type chatRequest struct {
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *float64        `json:"max_tokens"`
	MaxCompletionTokens *float64        `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	N                   *float64        `json:"n"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []chatToolCall  `json:"tool_calls"`
	ToolCallID *string         `json:"tool_call_id"`
}

type contentPart struct {
	Type     string          `json:"type"`
	Text     *string         `json:"text"`
	Refusal  *string         `json:"refusal"`
	ImageURL json.RawMessage `json:"image_url"`
}

type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// translateRequest turns an OpenAI chat completion body into a Converse
// call on modelID. Errors are *llmproxy.Error 400s naming the parameter.
func translateRequest(body []byte, modelID string) (*bedrockruntime.ConverseInput, error) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, decodeError(err)
	}
	in := &bedrockruntime.ConverseInput{ModelId: aws.String(modelID)}
	if err := inferenceConfig(&req, in); err != nil {
		return nil, err
	}
	tr := translator{}
	for i := range req.Messages {
		if err := tr.message(i, &req.Messages[i]); err != nil {
			return nil, err
		}
	}
	if err := tr.check(); err != nil {
		return nil, err
	}
	in.System = tr.system
	in.Messages = tr.msgs
	tc, err := toolConfig(&req, tr.toolNames)
	if err != nil {
		return nil, err
	}
	in.ToolConfig = tc
	return in, nil
}

// streamInput is in as a ConverseStream call.
func streamInput(in *bedrockruntime.ConverseInput) *bedrockruntime.ConverseStreamInput {
	return &bedrockruntime.ConverseStreamInput{
		ModelId:         in.ModelId,
		Messages:        in.Messages,
		System:          in.System,
		InferenceConfig: in.InferenceConfig,
		ToolConfig:      in.ToolConfig,
	}
}

// decodeError explains why a body does not decode into chatRequest.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return llmproxy.BadRequest("", "the request body must be a JSON object")
		}
		return llmproxy.BadRequest(field, "%s has the wrong type: got a JSON %s, expected %s", field, te.Value, jsonType(te.Type.String()))
	}
	return llmproxy.BadRequest("", "the request body is not valid JSON")
}

func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string" || goType == "*string":
		return "a string"
	case strings.Contains(goType, "float"), strings.Contains(goType, "int"):
		return "a number"
	}
	return "an object"
}

func inferenceConfig(req *chatRequest, in *bedrockruntime.ConverseInput) error {
	var ic types.InferenceConfiguration
	set := false
	if req.N != nil && *req.N != 1 {
		return llmproxy.BadRequest("n", "Bedrock returns one choice per request; n must be 1")
	}
	max, name := req.MaxCompletionTokens, "max_completion_tokens"
	if max == nil {
		max, name = req.MaxTokens, "max_tokens"
	}
	if max != nil {
		v := *max
		if v != math.Trunc(v) || v < 1 || v > math.MaxInt32 {
			return llmproxy.BadRequest(name, "%s must be a positive integer", name)
		}
		ic.MaxTokens = aws.Int32(int32(v))
		set = true
	}
	if t := req.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return llmproxy.BadRequest("temperature", "temperature must be between 0 and 2")
		}
		ic.Temperature = aws.Float32(float32(*t))
		set = true
	}
	if t := req.TopP; t != nil {
		if *t < 0 || *t > 1 {
			return llmproxy.BadRequest("top_p", "top_p must be between 0 and 1")
		}
		ic.TopP = aws.Float32(float32(*t))
		set = true
	}
	if raw := req.Stop; len(raw) > 0 && string(raw) != "null" {
		var one string
		var many []string
		if json.Unmarshal(raw, &one) == nil {
			many = []string{one}
		} else if json.Unmarshal(raw, &many) != nil {
			return llmproxy.BadRequest("stop", "stop must be a string or an array of strings")
		}
		for _, s := range many {
			if s != "" {
				ic.StopSequences = append(ic.StopSequences, s)
			}
		}
		set = set || len(ic.StopSequences) > 0
	}
	if set {
		in.InferenceConfig = &ic
	}
	return nil
}

// translator accumulates Bedrock messages, merging consecutive turns of
// the same role (Bedrock requires user and assistant to alternate).
type translator struct {
	system []types.SystemContentBlock
	msgs   []types.Message
	// toolNames lists, in order, the tool names used by assistant turns.
	toolNames []string
}

func (t *translator) add(role types.ConversationRole, blocks []types.ContentBlock) {
	if len(blocks) == 0 {
		return
	}
	if n := len(t.msgs); n > 0 && t.msgs[n-1].Role == role {
		t.msgs[n-1].Content = append(t.msgs[n-1].Content, blocks...)
		return
	}
	t.msgs = append(t.msgs, types.Message{Role: role, Content: blocks})
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func (t *translator) message(i int, m *chatMessage) error {
	param := fmt.Sprintf("messages[%d]", i)
	switch m.Role {
	case "system", "developer":
		texts, err := textContent(param, m.Content)
		if err != nil {
			return err
		}
		for _, s := range texts {
			t.system = append(t.system, &types.SystemContentBlockMemberText{Value: s})
		}
	case "user":
		blocks, err := userContent(param, m.Content)
		if err != nil {
			return err
		}
		t.add(types.ConversationRoleUser, blocks)
	case "assistant":
		texts, err := textContent(param, m.Content)
		if err != nil {
			return err
		}
		blocks := make([]types.ContentBlock, 0, len(texts)+len(m.ToolCalls))
		for _, s := range texts {
			blocks = append(blocks, &types.ContentBlockMemberText{Value: s})
		}
		for j := range m.ToolCalls {
			b, err := t.toolUse(fmt.Sprintf("%s.tool_calls[%d]", param, j), &m.ToolCalls[j])
			if err != nil {
				return err
			}
			blocks = append(blocks, b)
		}
		t.add(types.ConversationRoleAssistant, blocks)
	case "tool":
		if m.ToolCallID == nil || *m.ToolCallID == "" {
			return llmproxy.BadRequest(param+".tool_call_id", "a tool message needs the tool_call_id of the call it answers")
		}
		texts, err := textContent(param, m.Content)
		if err != nil {
			return err
		}
		if len(texts) == 0 {
			// Bedrock needs some content; an empty result is still an answer.
			texts = []string{"(no output)"}
		}
		content := make([]types.ToolResultContentBlock, len(texts))
		for j, s := range texts {
			content[j] = &types.ToolResultContentBlockMemberText{Value: s}
		}
		t.add(types.ConversationRoleUser, []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
			ToolUseId: m.ToolCallID,
			Content:   content,
		}}})
	case "function":
		return llmproxy.BadRequest(param+".role", "the deprecated function role is not supported for Bedrock models; use tools and tool messages")
	case "":
		return llmproxy.BadRequest(param+".role", "every message needs a role")
	default:
		return llmproxy.BadRequest(param+".role", "unknown role %q: expected system, developer, user, assistant or tool", m.Role)
	}
	return nil
}

func (t *translator) toolUse(param string, c *chatToolCall) (types.ContentBlock, error) {
	if c.Type != "" && c.Type != "function" {
		return nil, llmproxy.BadRequest(param+".type", "only function tool calls are supported, got %q", c.Type)
	}
	if c.ID == "" {
		return nil, llmproxy.BadRequest(param+".id", "a tool call needs an id")
	}
	if c.Function.Name == "" {
		return nil, llmproxy.BadRequest(param+".function.name", "a tool call needs a function name")
	}
	args := c.Function.Arguments
	if blank(args) {
		args = "{}"
	}
	input, err := decodeDocument([]byte(args))
	if err == errEmptyKey {
		return nil, llmproxy.BadRequest(param+".function.arguments", "Bedrock cannot take tool call arguments with an empty object key")
	}
	if err != nil {
		return nil, llmproxy.BadRequest(param+".function.arguments", "the arguments of a tool call must be a JSON object")
	}
	if _, ok := input.(map[string]any); !ok {
		return nil, llmproxy.BadRequest(param+".function.arguments", "the arguments of a tool call must be a JSON object")
	}
	t.toolNames = append(t.toolNames, c.Function.Name)
	return &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
		ToolUseId: aws.String(c.ID),
		Name:      aws.String(c.Function.Name),
		Input:     document.NewLazyDocument(input),
	}}, nil
}

// check enforces what Bedrock requires of a conversation and that
// OpenAI's own API would also reject: it starts with a user turn, and
// every tool call is answered by the turn after it, and only there.
func (t *translator) check() error {
	if len(t.msgs) == 0 {
		return llmproxy.BadRequest("messages", "messages must include at least one user message with content")
	}
	if t.msgs[0].Role != types.ConversationRoleUser {
		return llmproxy.BadRequest("messages", "for Bedrock models the conversation must start with a user message (after any system messages)")
	}
	var calls map[string]bool // the previous assistant turn's unanswered tool calls
	for i := range t.msgs {
		m := &t.msgs[i]
		if m.Role == types.ConversationRoleAssistant {
			if len(calls) > 0 {
				return unanswered(calls)
			}
			calls = nil
			for _, b := range m.Content {
				if u, ok := b.(*types.ContentBlockMemberToolUse); ok {
					if calls == nil {
						calls = map[string]bool{}
					}
					id := *u.Value.ToolUseId
					if _, dup := calls[id]; dup {
						return llmproxy.BadRequest("messages", "the tool call id %q is used twice in one assistant turn", id)
					}
					calls[id] = true
				}
			}
			continue
		}
		// A user turn: tool results first, as Bedrock's models require.
		results := 0
		for _, b := range m.Content {
			r, ok := b.(*types.ContentBlockMemberToolResult)
			if !ok {
				continue
			}
			id := *r.Value.ToolUseId
			if !calls[id] {
				return llmproxy.BadRequest("messages", "the tool message with tool_call_id %q does not answer a tool call of the preceding assistant message", id)
			}
			calls[id] = false
			results++
		}
		for _, pending := range calls {
			if pending {
				return unanswered(calls)
			}
		}
		calls = nil
		if results > 0 && results < len(m.Content) {
			sorted := make([]types.ContentBlock, 0, len(m.Content))
			for _, b := range m.Content {
				if _, ok := b.(*types.ContentBlockMemberToolResult); ok {
					sorted = append(sorted, b)
				}
			}
			for _, b := range m.Content {
				if _, ok := b.(*types.ContentBlockMemberToolResult); !ok {
					sorted = append(sorted, b)
				}
			}
			m.Content = sorted
		}
	}
	if len(calls) > 0 {
		return unanswered(calls)
	}
	// An assistant turn at the end is a prefill for the answer; Claude
	// models refuse one that ends with whitespace.
	if last := &t.msgs[len(t.msgs)-1]; last.Role == types.ConversationRoleAssistant {
		if txt, ok := last.Content[len(last.Content)-1].(*types.ContentBlockMemberText); ok {
			last.Content[len(last.Content)-1] = &types.ContentBlockMemberText{Value: strings.TrimRight(txt.Value, " \t\r\n")}
		}
	}
	return nil
}

func unanswered(calls map[string]bool) error {
	var id string
	for k, pending := range calls {
		if pending && (id == "" || k < id) {
			id = k
		}
	}
	return llmproxy.BadRequest("messages", "the tool call %q has no tool message answering it; an assistant message with tool_calls must be followed by one tool message per call", id)
}

// textContent reads content that may only hold text: a string, an array
// of text parts, or null. Blank texts are dropped (Bedrock rejects them).
func textContent(param string, raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, llmproxy.BadRequest(param+".content", "content must be a string or an array of content parts")
		}
		if blank(s) {
			return nil, nil
		}
		return []string{s}, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, llmproxy.BadRequest(param+".content", "content must be a string or an array of content parts")
	}
	var out []string
	for j, p := range parts {
		var s *string
		switch p.Type {
		case "text":
			s = p.Text
		case "refusal":
			s = p.Refusal
		default:
			return nil, llmproxy.BadRequest(fmt.Sprintf("%s.content[%d].type", param, j), "this message may only have text parts, got %q", p.Type)
		}
		if s == nil {
			return nil, llmproxy.BadRequest(fmt.Sprintf("%s.content[%d].%s", param, j, p.Type), "a %s part needs its %q field", p.Type, p.Type)
		}
		if !blank(*s) {
			out = append(out, *s)
		}
	}
	return out, nil
}

// userContent reads a user message's content: text and images.
func userContent(param string, raw json.RawMessage) ([]types.ContentBlock, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || raw[0] == '"' {
		texts, err := textContent(param, raw)
		if len(texts) == 0 {
			return nil, err
		}
		return []types.ContentBlock{&types.ContentBlockMemberText{Value: texts[0]}}, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, llmproxy.BadRequest(param+".content", "content must be a string or an array of content parts")
	}
	blocks := make([]types.ContentBlock, 0, len(parts))
	for j, p := range parts {
		pp := fmt.Sprintf("%s.content[%d]", param, j)
		switch p.Type {
		case "text":
			if p.Text == nil {
				return nil, llmproxy.BadRequest(pp+".text", "a text part needs its \"text\" field")
			}
			if !blank(*p.Text) {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: *p.Text})
			}
		case "image_url":
			img, err := imageBlock(pp+".image_url", p.ImageURL)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, img)
		default:
			return nil, llmproxy.BadRequest(pp+".type", "content parts of type %q are not supported for Bedrock models; use text and image_url", p.Type)
		}
	}
	return blocks, nil
}

// imageBlock decodes an image_url part, which must hold a base64 data URL.
func imageBlock(param string, raw json.RawMessage) (types.ContentBlock, error) {
	var url string
	var obj struct {
		URL string `json:"url"`
	}
	switch {
	case json.Unmarshal(raw, &obj) == nil && obj.URL != "":
		url = obj.URL
	case json.Unmarshal(raw, &url) == nil && url != "":
	default:
		return nil, llmproxy.BadRequest(param, "an image_url part needs a url")
	}
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		return nil, llmproxy.BadRequest(param+".url", "Bedrock models need images inline: send the image as a base64 data URL (data:image/png;base64,…), not a link")
	}
	mime, data, ok := strings.Cut(rest, ",")
	mime, isBase64 := strings.CutSuffix(mime, ";base64")
	if !ok || !isBase64 {
		return nil, llmproxy.BadRequest(param+".url", "an image data URL must be base64-encoded: data:image/png;base64,…")
	}
	var format types.ImageFormat
	switch strings.ToLower(mime) {
	case "image/png":
		format = types.ImageFormatPng
	case "image/jpeg", "image/jpg":
		format = types.ImageFormatJpeg
	case "image/gif":
		format = types.ImageFormatGif
	case "image/webp":
		format = types.ImageFormatWebp
	default:
		return nil, llmproxy.BadRequest(param+".url", "Bedrock models accept png, jpeg, gif and webp images, got %q", mime)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(data, "="))
	}
	if err != nil || len(b) == 0 {
		return nil, llmproxy.BadRequest(param+".url", "the image data URL does not hold valid base64 data")
	}
	return &types.ContentBlockMemberImage{Value: types.ImageBlock{
		Format: format,
		Source: &types.ImageSourceMemberBytes{Value: b},
	}}, nil
}

// toolConfig translates tools and tool_choice. used lists the tools named
// by earlier tool calls: Bedrock refuses tool blocks in the conversation
// without a tool configuration declaring them, so undeclared ones get a
// permissive schema.
func toolConfig(req *chatRequest, used []string) (*types.ToolConfiguration, error) {
	choice, forced, err := toolChoice(req.ToolChoice)
	if err != nil {
		return nil, err
	}
	if choice == "none" && len(used) == 0 {
		// Bedrock has no "none": offering no tools is the same.
		return nil, nil
	}
	tc := &types.ToolConfiguration{}
	declared := make(map[string]bool, len(req.Tools))
	for i, t := range req.Tools {
		param := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, llmproxy.BadRequest(param+".type", "only function tools are supported for Bedrock models, got %q", t.Type)
		}
		if t.Function == nil || t.Function.Name == "" {
			return nil, llmproxy.BadRequest(param+".function.name", "a function tool needs a name")
		}
		f := t.Function
		if declared[f.Name] {
			return nil, llmproxy.BadRequest(param+".function.name", "the tool %q is declared twice", f.Name)
		}
		declared[f.Name] = true
		var schema any = map[string]any{"type": "object", "properties": map[string]any{}}
		if p := bytes.TrimSpace(f.Parameters); len(p) > 0 && string(p) != "null" {
			schema, err = decodeDocument(p)
			if err == errEmptyKey {
				return nil, llmproxy.BadRequest(param+".function.parameters", "Bedrock cannot take a parameters schema with an empty object key")
			}
			if _, ok := schema.(map[string]any); err != nil || !ok {
				return nil, llmproxy.BadRequest(param+".function.parameters", "the parameters of a function tool must be a JSON schema object")
			}
		}
		spec := types.ToolSpecification{
			Name:        aws.String(f.Name),
			InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(schema)},
		}
		if f.Description != "" {
			spec.Description = aws.String(f.Description)
		}
		tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: spec})
	}
	for _, name := range used {
		if !declared[name] {
			declared[name] = true
			tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: types.ToolSpecification{
				Name:        aws.String(name),
				InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{"type": "object"})},
			}})
		}
	}
	if len(tc.Tools) == 0 {
		if choice == "required" || forced != "" {
			return nil, llmproxy.BadRequest("tool_choice", "tool_choice %s needs tools", choice)
		}
		return nil, nil
	}
	switch {
	case forced != "":
		if !slicesContainsTool(req.Tools, forced) {
			return nil, llmproxy.BadRequest("tool_choice", "tool_choice names the function %q, which is not in tools", forced)
		}
		tc.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(forced)}}
	case choice == "required":
		tc.ToolChoice = &types.ToolChoiceMemberAny{}
	case choice == "auto":
		tc.ToolChoice = &types.ToolChoiceMemberAuto{}
	}
	return tc, nil
}

func slicesContainsTool(tools []chatTool, name string) bool {
	for _, t := range tools {
		if t.Function != nil && t.Function.Name == name {
			return true
		}
	}
	return false
}

// toolChoice reads tool_choice: "auto", "none", "required", or a named
// function (returned as forced). An absent choice is "".
func toolChoice(raw json.RawMessage) (choice, forced string, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", "", nil
	}
	if json.Unmarshal(raw, &choice) == nil {
		switch choice {
		case "auto", "none", "required":
			return choice, "", nil
		}
		return "", "", llmproxy.BadRequest("tool_choice", "tool_choice must be auto, none, required or a function, got %q", choice)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Type != "function" || obj.Function.Name == "" {
		return "", "", llmproxy.BadRequest("tool_choice", `tool_choice must be "auto", "none", "required" or {"type":"function","function":{"name":…}}`)
	}
	return "function", obj.Function.Name, nil
}

// decodeDocument decodes JSON for a Bedrock document, keeping numbers
// exact: the SDK's document encoder writes smithy document.Number
// verbatim, while float64 would round large integers. The encoder cannot
// write an empty object key, so such documents are refused here.
func decodeDocument(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return numbers(v)
}

var errEmptyKey = errors.New("an object has an empty key")

func numbers(v any) (any, error) {
	var err error
	switch x := v.(type) {
	case json.Number:
		return smithydocument.Number(x), nil
	case map[string]any:
		for k, e := range x {
			if k == "" {
				return nil, errEmptyKey
			}
			if x[k], err = numbers(e); err != nil {
				return nil, err
			}
		}
	case []any:
		for i, e := range x {
			if x[i], err = numbers(e); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}
