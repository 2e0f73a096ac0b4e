package translate

// Chat Completions to Messages: what becomes of each field of an OpenAI
// chat request sent to an Anthropic Messages upstream (ChatToMessages).
//
//	Chat Completions field            Messages request
//	----------------------------      ------------------------------------------------------
//	model                             replaced by MessagesOptions.Model
//	stream                            replaced by MessagesOptions.Stream
//	messages[].role system,developer  system, a string; several are joined with "\n\n" in
//	                                  order. Their position among the other messages is
//	                                  lost: Messages has one system prompt, before all turns.
//	                                  Text content only.
//	messages[].role user              a user turn: text -> text block; image_url with a
//	                                  data: URL -> image block, base64 source (media type
//	                                  from the URL; image/jpg is written image/jpeg; jpeg,
//	                                  png, gif, webp only); image_url http(s) -> image block,
//	                                  url source; detail dropped; file with file_data (a PDF
//	                                  data: URL, or bare base64, which is a PDF) -> document
//	                                  block, base64 source, title = filename; a text/plain
//	                                  data: URL -> document block, text source.
//	                                  Refused: file_id, input_audio, other URL schemes.
//	messages[].role assistant         an assistant turn: text (string or parts) -> a text
//	                                  block; tool_calls -> tool_use blocks (input = the
//	                                  arguments, which must be a JSON object; "" is {});
//	                                  refusal parts and empty text dropped; a turn left
//	                                  with no blocks is dropped. Refused: function_call,
//	                                  audio.
//	messages[].role tool              tool_result blocks (tool_use_id = tool_call_id,
//	                                  content = the text) in a user turn; consecutive tool
//	                                  messages and a following user message share one turn;
//	                                  a user turn's tool results are moved before its other
//	                                  blocks, as Messages requires.
//	messages[].role function          refused: answer tool_calls with tool messages.
//	messages[].name                   dropped: Messages has no participant names.
//	(consecutive same-role turns)     merged into one turn, blocks in order.
//	max_completion_tokens, max_tokens max_tokens (the first if both); neither ->
//	                                  MessagesOptions.DefaultMaxTokens.
//	stop (string or array)            stop_sequences (empty strings dropped).
//	temperature                       temperature, clamped to 0..1 (OpenAI's range is 0..2,
//	                                  Anthropic's 0..1: 1.5 is sent as 1).
//	top_p                             top_p. (Some Claude models refuse temperature and
//	                                  top_p together; the upstream says so.)
//	tools (type function)             tools: {name, description, input_schema = parameters,
//	                                  or {"type":"object","properties":{}} when absent or
//	                                  empty}; strict dropped. Other tool types refused.
//	tool_choice                       "auto" -> {type:auto}, "required" -> {type:any},
//	                                  "none" -> {type:none}, {type:function,function:{name}}
//	                                  -> {type:tool,name}. Without tools: auto and none are
//	                                  dropped, required and a named tool refused.
//	                                  allowed_tools and custom choices refused.
//	parallel_tool_calls: false        tool_choice.disable_parallel_tool_use: true (an auto
//	                                  choice is added if none was given; not with none).
//	user (else safety_identifier)     metadata.user_id
//	n                                 1 or absent; more refused: send n requests.
//	logprobs: true, top_logprobs > 0  refused: Anthropic returns no log probabilities.
//	response_format                   text passes; json_object, json_schema refused:
//	                                  describe the format in the prompt, or declare a tool
//	                                  whose parameters are the schema and force it with
//	                                  tool_choice.
//	audio, modalities (not text)      refused: Anthropic answers in text only.
//	functions, function_call          refused: use tools and tool_choice.
//	web_search_options                refused: no web search through this translation.
//	seed, frequency_penalty,          dropped: Messages has no equivalent (metadata is
//	presence_penalty, logit_bias,     OpenAI's stored-completion tags, not Anthropic's
//	store, metadata, reasoning_effort, metadata).
//	service_tier, stream_options,
//	prediction, verbosity,
//	prompt_cache_key, unknown fields
//
// Messages to Chat Completions, the answer (MessagesToChatResponse and
// MessagesStreamToChat):
//
//	Message field                     chat.completion
//	----------------------------      ------------------------------------------------------
//	id                                id "chatcmpl-" + id (every chunk of a stream too)
//	model                             model = the client's alias
//	content text blocks               message.content, joined with nothing (null if none)
//	content tool_use blocks           message.tool_calls {id, type function, name,
//	                                  arguments = compact input JSON}
//	content thinking, redacted_thinking, other blocks   dropped
//	stop_reason                       end_turn, stop_sequence, pause_turn -> stop;
//	                                  max_tokens, model_context_window_exceeded -> length;
//	                                  tool_use -> tool_calls; refusal -> content_filter;
//	                                  others -> stop
//	usage                             prompt_tokens = input + cache_read + cache_creation
//	                                  input tokens; completion_tokens = output_tokens;
//	                                  prompt_tokens_details.cached_tokens = cache_read

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// MessagesOptions are what ChatToMessages needs besides the request.
type MessagesOptions struct {
	// Model is the upstream's model name, written in place of the
	// client's alias.
	Model string
	// Stream asks the upstream for an event stream.
	Stream bool
	// DefaultMaxTokens is max_tokens when the client gave neither
	// max_completion_tokens nor max_tokens: Messages requires it. Zero
	// makes such a request a *RequestError.
	DefaultMaxTokens int64
}

// chatRequestIn is a chat request as ChatToMessages reads it: the shared
// fields plus those it must see to refuse.
type chatRequestIn struct {
	chatRequest
	Messages         []chatMessageIn `json:"messages"` // shadows chatRequest.Messages
	Logprobs         *bool           `json:"logprobs"`
	TopLogprobs      *int64          `json:"top_logprobs"`
	ResponseFormat   json.RawMessage `json:"response_format"`
	Audio            json.RawMessage `json:"audio"`
	Modalities       []string        `json:"modalities"`
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	SafetyIdentifier string          `json:"safety_identifier"`
}

type chatMessageIn struct {
	chatMessage
	FunctionCall json.RawMessage `json:"function_call"`
	Audio        json.RawMessage `json:"audio"`
}

// msgRequestOut is the Messages request ChatToMessages writes: turns hold
// their blocks, not raw JSON.
type msgRequestOut struct {
	msgRequest
	Messages []msgTurn `json:"messages"` // shadows msgRequest.Messages
}

type msgTurn struct {
	Role    string     `json:"role"`
	Content []msgBlock `json:"content"`
}

// emptyInputSchema is a tool's input_schema when the function declared
// no parameters: Messages requires one.
var emptyInputSchema = json.RawMessage(`{"type":"object","properties":{}}`)

// ChatToMessages translates an OpenAI Chat Completions request body into
// an Anthropic Messages request body, as the table above says. A request
// that is malformed or asks for what Messages cannot do is a
// *RequestError naming the field.
func ChatToMessages(body []byte, opts MessagesOptions) ([]byte, error) {
	var in chatRequestIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, chatDecodeError(err)
	}
	if err := refuseChatFields(&in); err != nil {
		return nil, err
	}
	var out msgRequestOut
	out.Model = opts.Model
	out.Stream = opts.Stream
	system, turns, err := msgsTurns(in.Messages)
	if err != nil {
		return nil, err
	}
	if system != "" {
		out.System, _ = json.Marshal(system)
	}
	out.Messages = turns
	if out.MaxTokens, err = msgsMaxTokens(&in, opts.DefaultMaxTokens); err != nil {
		return nil, err
	}
	if out.StopSequences, err = readChatStop(in.Stop); err != nil {
		return nil, err
	}
	if t := in.Temperature; t != nil {
		c := min(max(*t, 0), 1)
		out.Temperature = &c
	}
	out.TopP = in.TopP
	if out.Tools, err = msgsTools(in.Tools); err != nil {
		return nil, err
	}
	if out.ToolChoice, err = msgsToolChoice(in.ToolChoice, in.ParallelToolCalls, len(out.Tools) > 0); err != nil {
		return nil, err
	}
	if user := cmp.Or(in.User, in.SafetyIdentifier); user != "" {
		out.Metadata = &msgMetadata{UserID: user}
	}
	return marshalUnescaped(&out)
}

// refuseChatFields refuses the top-level fields whose meaning Messages
// cannot carry: dropping them would change the answer the client gets.
func refuseChatFields(in *chatRequestIn) error {
	switch {
	case in.N != nil && *in.N != 1:
		return &RequestError{"n", "n: an Anthropic upstream returns one choice; send n separate requests instead"}
	case in.Logprobs != nil && *in.Logprobs:
		return &RequestError{"logprobs", "logprobs: an Anthropic upstream returns no log probabilities; leave logprobs out"}
	case in.TopLogprobs != nil && *in.TopLogprobs > 0:
		return &RequestError{"top_logprobs", "top_logprobs: an Anthropic upstream returns no log probabilities; leave top_logprobs out"}
	case !nullJSON(in.Audio):
		return &RequestError{"audio", "audio: an Anthropic upstream answers in text only; leave audio out"}
	case !nullJSON(in.Functions):
		return &RequestError{"functions", "functions: the legacy functions parameter is not supported; declare them in tools"}
	case !nullJSON(in.FunctionCall):
		return &RequestError{"function_call", "function_call: the legacy function_call parameter is not supported; use tool_choice"}
	case !nullJSON(in.WebSearchOptions):
		return &RequestError{"web_search_options", "web_search_options: web search is not available through an Anthropic upstream; leave it out"}
	}
	for _, m := range in.Modalities {
		if m != "text" {
			return &RequestError{"modalities", fmt.Sprintf("modalities: an Anthropic upstream answers in text only, not %q; ask for [\"text\"]", m)}
		}
	}
	if nullJSON(in.ResponseFormat) {
		return nil
	}
	var rf struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(in.ResponseFormat, &rf); err != nil {
		return &RequestError{"response_format", "response_format: must be an object with a type"}
	}
	if rf.Type != "text" {
		return &RequestError{"response_format", fmt.Sprintf("response_format: an Anthropic upstream has no %q mode; describe the format in the prompt, or declare a tool whose parameters are the schema and force it with tool_choice", rf.Type)}
	}
	return nil
}

// msgsMaxTokens picks max_tokens: max_completion_tokens, else max_tokens,
// else the default.
func msgsMaxTokens(in *chatRequestIn, def int64) (*int64, error) {
	param, n := "max_completion_tokens", in.MaxCompletionTokens
	if n == nil {
		param, n = "max_tokens", in.MaxTokens
	}
	if n == nil {
		if def <= 0 {
			return nil, &RequestError{"max_completion_tokens", "max_completion_tokens: an Anthropic upstream requires a maximum; set max_completion_tokens"}
		}
		return &def, nil
	}
	if *n < 1 {
		return nil, &RequestError{param, param + ": must be at least 1"}
	}
	return n, nil
}

// readChatStop reads stop, a string or an array of strings.
func readChatStop(raw json.RawMessage) ([]string, error) {
	if nullJSON(raw) {
		return nil, nil
	}
	var list []string
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, &RequestError{"stop", "stop: malformed string"}
		}
		list = []string{s}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, &RequestError{"stop", "stop: must be a string or an array of strings"}
	}
	out := list[:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// msgsTools turns function tools into Messages tools.
func msgsTools(tools []chatTool) ([]msgTool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]msgTool, len(tools))
	for i, t := range tools {
		if t.Type != "function" && t.Type != "" {
			return nil, &RequestError{fmt.Sprintf("tools[%d].type", i), fmt.Sprintf("tools[%d].type: only function tools can be sent to an Anthropic upstream, not %q", i, t.Type)}
		}
		if t.Function.Name == "" {
			return nil, &RequestError{fmt.Sprintf("tools[%d].function.name", i), fmt.Sprintf("tools[%d].function.name: required", i)}
		}
		schema := bytes.TrimSpace(t.Function.Parameters)
		switch {
		case nullJSON(schema) || emptyJSONObject(schema):
			schema = emptyInputSchema
		case schema[0] != '{':
			return nil, &RequestError{fmt.Sprintf("tools[%d].function.parameters", i), fmt.Sprintf("tools[%d].function.parameters: must be a JSON Schema object", i)}
		}
		out[i] = msgTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema}
	}
	return out, nil
}

// msgsToolChoice maps tool_choice and parallel_tool_calls.
func msgsToolChoice(raw json.RawMessage, parallel *bool, haveTools bool) (*msgToolChoice, error) {
	var choice *msgToolChoice
	if !nullJSON(raw) {
		var err error
		if choice, err = parseChatToolChoice(raw); err != nil {
			return nil, err
		}
	}
	if !haveTools {
		if choice != nil && (choice.Type == "any" || choice.Type == "tool") {
			return nil, &RequestError{"tool_choice", "tool_choice: asks for a tool call but the request declares no tools"}
		}
		return nil, nil
	}
	if parallel != nil && !*parallel {
		if choice == nil {
			choice = &msgToolChoice{Type: "auto"}
		}
		choice.DisableParallelToolUse = choice.Type != "none"
	}
	return choice, nil
}

func parseChatToolChoice(raw json.RawMessage) (*msgToolChoice, error) {
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		switch s {
		case "auto":
			return &msgToolChoice{Type: "auto"}, nil
		case "required":
			return &msgToolChoice{Type: "any"}, nil
		case "none":
			return &msgToolChoice{Type: "none"}, nil
		}
		return nil, &RequestError{"tool_choice", fmt.Sprintf("tool_choice: %q is not auto, required or none", s)}
	}
	var c struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, &RequestError{"tool_choice", "tool_choice: must be a string or an object"}
	}
	if c.Type != "function" {
		return nil, &RequestError{"tool_choice", fmt.Sprintf("tool_choice: a %q choice cannot be sent to an Anthropic upstream; use auto, required, none or a function", c.Type)}
	}
	if c.Function.Name == "" {
		return nil, &RequestError{"tool_choice.function.name", "tool_choice.function.name: required"}
	}
	return &msgToolChoice{Type: "tool", Name: c.Function.Name}, nil
}

// chatDecodeError turns an encoding/json error into a *RequestError.
func chatDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// The path names embedded structs too: drop them.
		var path []string
		for _, name := range strings.Split(te.Field, ".") {
			if name != "chatRequest" && name != "chatMessage" && name != "" {
				path = append(path, name)
			}
		}
		if len(path) == 0 {
			return &RequestError{"", "the body must be a JSON object"}
		}
		field := strings.Join(path, ".")
		return &RequestError{field, fmt.Sprintf("%s: must be %s, not %s", field, jsonKindOf(te.Type), te.Value)}
	}
	return &RequestError{"", "the body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// jsonKindOf names a Go type as the JSON it decodes from.
func jsonKindOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a number"
}

// nullJSON reports whether a raw value is absent or null.
func nullJSON(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// emptyJSONObject reports whether raw is {} (with any spaces inside).
func emptyJSONObject(raw []byte) bool {
	return len(raw) >= 2 && raw[0] == '{' && len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
}

// marshalUnescaped marshals v as encoding/json does but leaves <, > and &
// as they are: the upstream gets the client's bytes, not HTML escapes.
func marshalUnescaped(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// parseDataURL splits a data: URL into its media type and base64 payload; ok
// is false when url is not a base64 data: URL.
func parseDataURL(url string) (mediaType, data string, ok bool) {
	rest, found := strings.CutPrefix(url, "data:")
	if !found {
		return "", "", false
	}
	header, data, found := strings.Cut(rest, ",")
	if !found {
		return "", "", false
	}
	params := strings.Split(header, ";")
	if params[len(params)-1] != "base64" {
		return "", "", false
	}
	return strings.ToLower(strings.TrimSpace(params[0])), data, true
}

// decodeBase64Text decodes base64 text that must be UTF-8.
func decodeBase64Text(data string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil || !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}
