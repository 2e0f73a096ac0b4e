// # Responses to Chat Completions
//
// ResponsesToChat serves an OpenAI Responses API client (Codex CLI, the
// OpenAI Agents SDK, client.responses.create) from an upstream that
// speaks Chat Completions. Every field of a Responses request has one of
// these fates:
//
//	Responses request                    Chat Completions request
//	model                                model = ResponsesOptions.Model (the remote name)
//	input, a string                      one user message
//	input[] message, role user           user message; input_text → text part, input_image → image_url part
//	                                     (image_url with detail), input_file with file_data → file part; a lone
//	                                     text part becomes string content
//	input[] message, system / developer  system message (developer becomes system: not every target knows it);
//	                                     text parts joined with "\n\n"
//	input[] message, role assistant      assistant message; output_text (and refusal) parts joined with "\n\n"
//	input[] function_call                tool_calls[] {id = call_id, function {name, arguments}} of the assistant
//	                                     message it follows (one message per run of assistant items)
//	input[] function_call_output         role tool message, tool_call_id = call_id; output text (parts joined with
//	                                     "\n"); images and files in the output go to a user message after the
//	                                     run of tool messages
//	input[] reasoning                    dropped (Chat Completions has no place for it; encrypted content cannot
//	                                     survive a change of model anyway)
//	ResponsesOptions.History             translated as input items placed before input (previous_response_id)
//	instructions                         first message, role system
//	tools[] function {name, description, tools[] {type function, function {name, description, parameters, strict}};
//	  parameters, strict}                defer_loading ignored (the tool is offered directly)
//	tools[] any other type               left out, named in DroppedTools: web_search*, file_search, computer_use*,
//	                                     code_interpreter, image_generation, mcp, local_shell, shell, apply_patch,
//	                                     tool_search (as their type); namespace and custom tools as
//	                                     "namespace:NAME" / "custom:NAME"
//	tool_choice auto / none / required   the same string; "required" with no function tool left is refused
//	tool_choice {type function, name}    {"type":"function","function":{"name":NAME}}; NAME must be a function tool
//	tool_choice {type allowed_tools}     only the allowed function tools are sent, tool_choice = its mode
//	tool_choice forcing a hosted tool    refused (tool_choice)
//	text.format json_schema              response_format {type json_schema, json_schema {name, description, schema, strict}}
//	text.format json_object / text       response_format {type json_object} / nothing
//	text.verbosity                       ignored (echoed)
//	temperature, top_p                   temperature, top_p
//	frequency_penalty, presence_penalty  frequency_penalty, presence_penalty
//	max_output_tokens                    max_tokens, or max_completion_tokens with ResponsesOptions.MaxCompletionTokens
//	parallel_tool_calls                  parallel_tool_calls (only while a function tool is left)
//	reasoning.effort                     reasoning_effort (OpenAI's field; other targets may ignore it)
//	reasoning.summary                    ignored (no summaries come back)
//	user, or else safety_identifier      user
//	stream (ResponsesOptions.Stream)     stream true, stream_options {"include_usage":true}
//	include, prompt_cache_key,           ignored: they steer OpenAI's own storage and caching
//	prompt_cache_retention,
//	client_metadata, service_tier,
//	stream_options
//	store, previous_response_id          ignored here: the gateway keeps the conversation (echoed)
//	metadata                             not sent upstream (echoed)
//	truncation disabled / auto           ignored (echoed); any other value refused
//	background false                     ignored; true is refused
//	max_tool_calls                       ignored: it limits hosted tools, which never run here (echoed)
//	top_logprobs 0                       ignored; above 0 refused (no log probabilities come back)
//	any other field                      refused (e.g. conversation, prompt)
//
// Refused with a *RequestError naming the field (a 400
// invalid_request_error): malformed JSON or wrong types, unknown fields,
// an input item of a type other than message, function_call,
// function_call_output and reasoning (e.g. item_reference,
// web_search_call, custom_tool_call), a role other than user, system,
// developer and assistant, content parts Chat Completions cannot carry
// (input_image or input_file by file_id, input_file by URL, images in
// system or assistant messages), a function_call without call_id or
// name, a function_call_output without call_id, a function tool without
// a name, a tool_choice that forces a tool left out or names no function
// tool, a text.format other than text, json_object and json_schema.
//
// ChatToResponsesResponse and ChatStreamToResponses carry the answer
// back (responses_response.go, responses_stream.go):
//
//	Chat Completions answer           Responses answer
//	message.content                   a message item {id "msg_…", role assistant, content [output_text]}
//	message.refusal                   a refusal content part of that message item
//	message.tool_calls[]              function_call items {id "fc_…", call_id = the tool call id, name, arguments}
//	reasoning_content                 dropped
//	finish_reason length              status incomplete, incomplete_details {reason max_output_tokens}
//	finish_reason content_filter      status incomplete, incomplete_details {reason content_filter}
//	any other finish_reason           status completed
//	usage.prompt_tokens               usage.input_tokens (cached tokens included, as OpenAI counts them)
//	prompt_tokens_details.cached      input_tokens_details.cached_tokens
//	usage.completion_tokens           output_tokens
//	completion_tokens_details.        output_tokens_details.reasoning_tokens
//	  reasoning_tokens
//	no usage                          usage null
//	model                             ResponseMeta.Model (the alias the client asked for)
//
// The response object echoes the request as OpenAI does: instructions,
// max_output_tokens, max_tool_calls, parallel_tool_calls (default true),
// previous_response_id, prompt_cache_key, reasoning {effort, summary},
// safety_identifier, store (default true), temperature and top_p (null
// when not given: the upstream's default applied), text (default
// {"format":{"type":"text"}}), tool_choice (default "auto"), tools as
// sent, top_logprobs, truncation (default "disabled"), user, metadata
// (default {}).

package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ResponsesOptions say how ResponsesToChat writes the upstream request.
type ResponsesOptions struct {
	// Model is the remote model name written as "model".
	Model string
	// Stream asks for a stream with usage in its last chunk.
	Stream bool
	// MaxCompletionTokens writes max_completion_tokens instead of
	// max_tokens, as OpenAI's and Azure's reasoning models require.
	MaxCompletionTokens bool
	// History is a JSON array of Responses input items that come before
	// the request's input (the gateway rebuilds it from
	// previous_response_id), or nil.
	History []byte
}

// ResponsesRequest is what ResponsesToChat made of a request.
type ResponsesRequest struct {
	// Chat is the Chat Completions request body for the upstream.
	Chat []byte
	// Input is the request's own input as a JSON array of input items,
	// as the client sent it (a string input becomes one user message item
	// with an input_text part): the gateway stores History+Input.
	Input []byte
	// DroppedTools are the hosted tools left out of the upstream request:
	// their "type", or "namespace:NAME" / "custom:NAME".
	DroppedTools []string

	// echo is the part of the response object that repeats the request,
	// compact, without braces: "background":false,…,"metadata":{}.
	echo []byte
}

// respRequest is a Responses request body. Fields that are passed on
// whole, or only echoed, stay raw.
type respRequest struct {
	Model                json.RawMessage `json:"model"` // the gateway routes on it
	Input                json.RawMessage `json:"input"`
	Instructions         json.RawMessage `json:"instructions"`
	Tools                json.RawMessage `json:"tools"`
	ToolChoice           json.RawMessage `json:"tool_choice"`
	Text                 json.RawMessage `json:"text"`
	Temperature          *float64        `json:"temperature"`
	TopP                 *float64        `json:"top_p"`
	FrequencyPenalty     *float64        `json:"frequency_penalty"`
	PresencePenalty      *float64        `json:"presence_penalty"`
	MaxOutputTokens      *int64          `json:"max_output_tokens"`
	MaxToolCalls         *int64          `json:"max_tool_calls"`
	ParallelToolCalls    *bool           `json:"parallel_tool_calls"`
	Reasoning            json.RawMessage `json:"reasoning"`
	User                 *string         `json:"user"`
	SafetyIdentifier     *string         `json:"safety_identifier"`
	Stream               *bool           `json:"stream"`
	StreamOptions        json.RawMessage `json:"stream_options"`
	Store                *bool           `json:"store"`
	PreviousResponseID   *string         `json:"previous_response_id"`
	Metadata             json.RawMessage `json:"metadata"`
	Truncation           *string         `json:"truncation"`
	Background           *bool           `json:"background"`
	TopLogprobs          *int64          `json:"top_logprobs"`
	Include              json.RawMessage `json:"include"`
	PromptCacheKey       *string         `json:"prompt_cache_key"`
	PromptCacheRetention json.RawMessage `json:"prompt_cache_retention"`
	ClientMetadata       json.RawMessage `json:"client_metadata"`
	ServiceTier          json.RawMessage `json:"service_tier"`
}

// respChatRequest is the Chat Completions request ResponsesToChat writes:
// chatRequest's fields and the few only this translation sets.
type respChatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       json.RawMessage `json:"stream_options,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	Tools               []respChatTool  `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      json.RawMessage `json:"response_format,omitempty"`
	ReasoningEffort     string          `json:"reasoning_effort,omitempty"`
	User                string          `json:"user,omitempty"`
}

type respChatTool struct {
	Type     string           `json:"type"` // "function"
	Function respChatFunction `json:"function"`
}

type respChatFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ResponsesToChat translates a Responses request body into a Chat
// Completions request body, with what the answer must echo. The table at
// the top of this file says what becomes of each field. Errors are
// *RequestError for the client's body; an error of another kind means
// opts.History is not a JSON array of items.
//
// It scans the body and copies the values that pass unchanged
// (responses_fast.go); a body the scan leaves alone, every refused one
// among them, is decoded with encoding/json instead, which gives the
// same result.
func ResponsesToChat(body []byte, opts ResponsesOptions) (*ResponsesRequest, error) {
	if r, ok := fastResponsesToChat(body, opts); ok {
		return r, nil
	}
	return decodedResponsesToChat(body, opts)
}

// decodedResponsesToChat is ResponsesToChat by encoding/json: the
// reference for fastResponsesToChat, and the translation of whatever
// that gives up on, refusals included.
func decodedResponsesToChat(body []byte, opts ResponsesOptions) (*ResponsesRequest, error) {
	var req respRequest
	if err := decodeResponsesRequest(body, &req); err != nil {
		return nil, err
	}
	if err := refuseUnsupported(&req); err != nil {
		return nil, err
	}
	out := respChatRequest{
		Model: opts.Model, Temperature: req.Temperature, TopP: req.TopP,
		FrequencyPenalty: req.FrequencyPenalty, PresencePenalty: req.PresencePenalty,
	}
	if opts.MaxCompletionTokens {
		out.MaxCompletionTokens = req.MaxOutputTokens
	} else {
		out.MaxTokens = req.MaxOutputTokens
	}
	if opts.Stream {
		out.Stream = true
		out.StreamOptions = json.RawMessage(`{"include_usage":true}`)
	}
	switch {
	case req.User != nil && *req.User != "":
		out.User = *req.User
	case req.SafetyIdentifier != nil:
		out.User = *req.SafetyIdentifier
	}
	var err error
	if out.ReasoningEffort, err = reasoningEffort(req.Reasoning); err != nil {
		return nil, err
	}
	if out.ResponseFormat, err = responseFormat(req.Text); err != nil {
		return nil, err
	}

	r := &ResponsesRequest{}
	items, input, err := inputItems(req.Input)
	if err != nil {
		return nil, err
	}
	r.Input = input
	var history []respItem
	if len(opts.History) > 0 {
		if err := json.Unmarshal(opts.History, &history); err != nil {
			return nil, fmt.Errorf("translate: the stored conversation is no array of input items: %w", err)
		}
	}
	var b chatBuilder
	b.msgs = make([]chatMessage, 0, len(history)+len(items)+1)
	b.asst = -1
	if err := b.instructions(req.Instructions); err != nil {
		return nil, err
	}
	if err := b.addItems(history, "previous_response_id"); err != nil {
		return nil, err
	}
	if err := b.addItems(items, "input"); err != nil {
		return nil, err
	}
	b.closeAssistant()
	b.flushParts()
	if len(b.msgs) == 0 {
		return nil, reqErr("input", "is required")
	}
	out.Messages = b.msgs

	if r.DroppedTools, err = translateResponsesTools(&out, req.Tools, req.ToolChoice, req.ParallelToolCalls); err != nil {
		return nil, err
	}
	if r.Chat, err = marshal(out); err != nil {
		return nil, err
	}
	if r.echo, err = responseEcho(&req); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeResponsesRequest decodes body, refusing unknown fields: a field
// this translation does not know cannot be honoured, and is never
// dropped in silence.
func decodeResponsesRequest(body []byte, req *respRequest) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return reqErr(strings.Trim(name, `"`), "is not supported for this model")
		}
		return decodeErr("", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return reqErr("", "malformed JSON: data after the request object")
	}
	return nil
}

// refuseUnsupported refuses the values of known fields that cannot be
// honoured through Chat Completions.
func refuseUnsupported(req *respRequest) error {
	if req.Background != nil && *req.Background {
		return reqErr("background", "background responses are not supported for this model")
	}
	if req.Truncation != nil && *req.Truncation != "disabled" && *req.Truncation != "auto" {
		return reqErr("truncation", "must be disabled or auto, not %q", *req.Truncation)
	}
	if req.TopLogprobs != nil && *req.TopLogprobs != 0 {
		return reqErr("top_logprobs", "log probabilities are not available for this model")
	}
	return nil
}

// reasoningEffort reads reasoning.effort.
func reasoningEffort(raw json.RawMessage) (string, error) {
	if isNone(raw) {
		return "", nil
	}
	var r struct {
		Effort *string `json:"effort"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", decodeErr("reasoning", err)
	}
	if r.Effort == nil {
		return "", nil
	}
	return *r.Effort, nil
}

// respText is the request's "text" object.
type respText struct {
	Format    json.RawMessage `json:"format"`
	Verbosity json.RawMessage `json:"verbosity"`
}

type respFormat struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

// responseFormat translates text.format into response_format.
func responseFormat(raw json.RawMessage) (json.RawMessage, error) {
	if isNone(raw) {
		return nil, nil
	}
	var t respText
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, decodeErr("text", err)
	}
	if isNone(t.Format) {
		return nil, nil
	}
	var f respFormat
	if err := json.Unmarshal(t.Format, &f); err != nil {
		return nil, decodeErr("text.format", err)
	}
	switch f.Type {
	case "text":
		return nil, nil
	case "json_object":
		return json.RawMessage(`{"type":"json_object"}`), nil
	case "json_schema":
		if f.Name == "" {
			return nil, reqErr("text.format.name", "is required")
		}
		if isNone(f.Schema) {
			return nil, reqErr("text.format.schema", "is required")
		}
		type jsonSchema struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict,omitempty"`
		}
		return marshal(struct {
			Type       string     `json:"type"`
			JSONSchema jsonSchema `json:"json_schema"`
		}{"json_schema", jsonSchema{f.Name, f.Description, f.Schema, f.Strict}})
	}
	return nil, reqErr("text.format.type", "must be text, json_object or json_schema, not %q", f.Type)
}

// inputItems decodes input (a string, an array of items, or absent) and
// returns its items and the array to store: input as given, or the
// string as one user message item.
func inputItems(raw json.RawMessage) ([]respItem, []byte, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case isNone(raw):
		return nil, []byte("[]"), nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, nil, decodeErr("input", err)
		}
		canon := append([]byte(`[{"type":"message","role":"user","content":[{"type":"input_text","text":`), raw...)
		canon = append(canon, "}]}]"...)
		var buf bytes.Buffer
		_ = json.Compact(&buf, canon) // raw is a valid string
		return []respItem{{Type: "message", Role: "user", Content: raw}}, buf.Bytes(), nil
	case raw[0] != '[':
		return nil, nil, reqErr("input", "must be a string or an array of input items")
	}
	var items []respItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, itemErr(raw, "input", err)
	}
	// raw is the decoder's copy, not the body: it can be kept as it is.
	return items, raw, nil
}

// itemErr finds which item of an array failed to decode, to name it: an
// item type the translation does not know, or a wrong field type.
func itemErr(raw json.RawMessage, param string, err error) error {
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return decodeErr(param, err)
	}
	for i, e := range elems {
		ip := fmt.Sprintf("%s[%d]", param, i)
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(e, &probe); err != nil {
			return decodeErr(ip, err)
		}
		if !knownItems[probe.Type] {
			return unknownItem(ip, probe.Type)
		}
		var it respItem
		if err := json.Unmarshal(e, &it); err != nil {
			return decodeErr(ip, err)
		}
	}
	return decodeErr(param, err)
}

// knownItems are the input item types the translation reads ("" is a
// message given without its type, as the SDKs allow).
var knownItems = map[string]bool{"": true, "message": true, "function_call": true, "function_call_output": true, "reasoning": true}

func unknownItem(param, typ string) error {
	return reqErr(param+".type", "input item type %q cannot be translated for this model", typ)
}
