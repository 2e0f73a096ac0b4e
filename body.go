package llmproxy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// span is a byte range [start, end) of a value in a request body; end is
// zero when the field is absent.
type span struct{ start, end int }

func (s span) present() bool { return s.end > 0 }

// bodyFields records where the top-level fields the gateway cares about
// are in a client's JSON body, so that it can rewrite "model" and add
// "stream_options" without decoding and re-encoding the rest.
type bodyFields struct {
	model, stream, streamOptions, maxTokens, maxCompletionTokens, messages, input span
	system, tools                                                                 span // Anthropic's (tools: the Responses API's too)
	maxOutputTokens, store, previousResponseID, instructions                      span // the Responses API's
	opening, closing                                                              int  // indexes of the object's '{' and final '}'
}

// parsedBody is what the router needs to know about a request body.
type parsedBody struct {
	fields       bodyFields
	model        string
	stream       bool
	includeUsage bool  // the client asked for stream usage itself
	maxTokens    int64 // max_completion_tokens, else max_tokens (max_output_tokens for responses); 0 if unset
	// The Responses API's conversation state: store (true unless the
	// body says false) and previous_response_id.
	store      bool
	previousID string
}

// parseBody checks that body is a JSON object and reads the fields the
// gateway needs for endpoint (EndpointChat or EndpointEmbeddings). Errors
// are *Error 400s that name the problem.
func parseBody(body []byte, endpoint string) (*parsedBody, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, BadRequest("", "the request body is empty; send a JSON object")
	}
	if !jsonscan.Valid(body) {
		return nil, BadRequest("", "the request body is not valid JSON%s", syntaxHint(body))
	}
	// encoding/json accepts invalid UTF-8 in strings; JSON (RFC 8259)
	// does not, and upstreams refuse it after a paid round trip.
	if !utf8.Valid(body) {
		return nil, BadRequest("", "the request body is not valid JSON: invalid UTF-8 at byte %d", invalidUTF8At(body))
	}
	p := &parsedBody{}
	var err error
	if p.fields, err = locateFields(body); err != nil {
		return nil, err
	}
	f := &p.fields
	if !f.model.present() {
		return nil, BadRequest("model", "you must provide a model parameter")
	}
	raw := body[f.model.start:f.model.end]
	if raw[0] != '"' {
		return nil, BadRequest("model", "model must be a string, got %s", jsonscan.Kind(raw))
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		p.model = string(raw[1 : len(raw)-1]) // valid JSON, no escapes: the text itself
	} else if json.Unmarshal(raw, &p.model) != nil {
		return nil, BadRequest("model", "model must be a string, got %s", jsonscan.Kind(raw))
	}
	if p.model == "" {
		return nil, BadRequest("model", "you must provide a model parameter")
	}
	if f.stream.present() {
		switch raw := string(body[f.stream.start:f.stream.end]); raw {
		case "true":
			p.stream = true
		case "false", "null":
		default:
			return nil, BadRequest("stream", "stream must be a boolean, got %s", jsonscan.Kind([]byte(raw)))
		}
	}
	if f.streamOptions.present() {
		raw := body[f.streamOptions.start:f.streamOptions.end]
		if string(raw) != "null" {
			include, ok := includeUsage(raw)
			if !ok {
				return nil, BadRequest("stream_options", "stream_options must be an object with a boolean include_usage")
			}
			if include {
				if !p.stream {
					return nil, BadRequest("stream_options", "stream_options is only allowed when stream is true")
				}
				p.includeUsage = true
			}
		}
	}
	for _, s := range []span{f.maxTokens, f.maxCompletionTokens} {
		if !s.present() {
			continue
		}
		raw := string(body[s.start:s.end])
		if raw == "null" {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			name := "max_tokens"
			if s == f.maxCompletionTokens {
				name = "max_completion_tokens"
			}
			return nil, BadRequest(name, "%s must be a non-negative integer, got %s", name, raw)
		}
		p.maxTokens = n
	}
	switch endpoint {
	case EndpointChat:
		if err := checkMessages(body, f.messages); err != nil {
			return nil, err
		}
	case EndpointMessages, EndpointCountTokens:
		if err := checkMessagesRequest(body, p, endpoint); err != nil {
			return nil, err
		}
	case EndpointResponses:
		if err := checkResponsesRequest(body, p); err != nil {
			return nil, err
		}
	case EndpointEmbeddings:
		if !f.input.present() {
			return nil, BadRequest("input", "you must provide an input parameter")
		}
		if p.stream {
			return nil, BadRequest("stream", "embeddings cannot be streamed")
		}
	}
	return p, nil
}

// locateFields finds the top-level fields the gateway reads in body, which
// must be valid JSON (both callers check it first). It fails when body is
// not an object or repeats one of them.
func locateFields(body []byte) (bodyFields, error) {
	var f bodyFields
	i := jsonscan.SkipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return f, BadRequest("", "the request body must be a JSON object")
	}
	f.opening = i
	i++
	for {
		i = jsonscan.SkipSpace(body, i)
		if body[i] == '}' {
			f.closing = i
			return f, nil
		}
		if body[i] == ',' {
			i = jsonscan.SkipSpace(body, i+1)
		}
		keyStart := i
		i = jsonscan.SkipString(body, i)
		key := body[keyStart+1 : i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			json.Unmarshal(body[keyStart:i], &k)
			key = []byte(k)
		}
		i = jsonscan.SkipSpace(body, i) + 1 // ':'
		i = jsonscan.SkipSpace(body, i)
		v := span{i, jsonscan.SkipValue(body, i)}
		i = v.end
		var dst *span
		switch string(key) {
		case "model":
			dst = &f.model
		case "stream":
			dst = &f.stream
		case "stream_options":
			dst = &f.streamOptions
		case "max_tokens":
			dst = &f.maxTokens
		case "max_completion_tokens":
			dst = &f.maxCompletionTokens
		case "messages":
			dst = &f.messages
		case "input":
			dst = &f.input
		case "system":
			dst = &f.system
		case "tools":
			dst = &f.tools
		case "max_output_tokens":
			dst = &f.maxOutputTokens
		case "store":
			dst = &f.store
		case "previous_response_id":
			dst = &f.previousResponseID
		case "instructions":
			dst = &f.instructions
		default:
			continue
		}
		if dst.present() {
			return f, BadRequest(string(key), "the field %q appears more than once", key)
		}
		*dst = v
	}
}

// checkMessages checks that the messages field (at s in body) is a
// non-empty array whose every element is an object with a string "role",
// reading only the elements' top-level members: an upstream would refuse
// anything else after a paid round trip, and some answer it with a 500.
func checkMessages(body []byte, s span) error {
	if !s.present() {
		return BadRequest("messages", "you must provide a messages parameter")
	}
	arr := body[s.start:s.end]
	if arr[0] != '[' {
		return BadRequest("messages", "messages must be an array, got %s", jsonscan.Kind(arr))
	}
	if len(bytes.TrimSpace(arr[1:len(arr)-1])) == 0 {
		return BadRequest("messages", "messages must not be empty")
	}
	var err error
	jsonscan.Elements(arr, func(i int, m []byte) bool {
		var role []byte
		if m[0] == '{' {
			role = jsonscan.Field(m, "role")
			if role != nil && role[0] == '"' {
				return true
			}
		}
		param := "messages[" + strconv.Itoa(i) + "]"
		switch {
		case m[0] != '{':
			err = BadRequest(param, "%s must be an object, got %s", param, jsonscan.Kind(m))
		case role == nil:
			err = BadRequest(param+".role", "%s must have a role", param)
		default:
			err = BadRequest(param+".role", "%s.role must be a string, got %s", param, jsonscan.Kind(role))
		}
		return false
	})
	return err
}

// checkMessagesRequest checks the fields of an Anthropic Messages (or
// count_tokens) body that the gateway relies on, as Anthropic's API does:
// max_tokens a positive integer (not needed to count tokens), messages as
// for chat, system a string or an array, tools an array.
func checkMessagesRequest(body []byte, p *parsedBody, endpoint string) error {
	f := &p.fields
	if f.maxCompletionTokens.present() && endpoint == EndpointMessages {
		return BadRequest("max_completion_tokens", "max_completion_tokens is not a Messages API field; use max_tokens")
	}
	if endpoint == EndpointMessages {
		if !f.maxTokens.present() || string(body[f.maxTokens.start:f.maxTokens.end]) == "null" {
			return BadRequest("max_tokens", "max_tokens: Field required")
		}
		if p.maxTokens < 1 {
			return BadRequest("max_tokens", "max_tokens must be at least 1")
		}
	}
	if err := checkMessages(body, f.messages); err != nil {
		return err
	}
	if f.system.present() {
		if raw := body[f.system.start:f.system.end]; raw[0] != '"' && raw[0] != '[' {
			return BadRequest("system", "system must be a string or an array of text blocks, got %s", jsonscan.Kind(raw))
		}
	}
	if f.tools.present() {
		if raw := body[f.tools.start:f.tools.end]; raw[0] != '[' {
			return BadRequest("tools", "tools must be an array, got %s", jsonscan.Kind(raw))
		}
	}
	return nil
}

// checkResponsesRequest checks the fields of a Responses API body that the
// gateway relies on: input a string or an array, max_output_tokens a
// positive integer, store a boolean, previous_response_id and
// instructions strings.
func checkResponsesRequest(body []byte, p *parsedBody) error {
	f := &p.fields
	raw := func(s span) []byte { return body[s.start:s.end] }
	if !f.input.present() {
		return BadRequest("input", "you must provide an input parameter")
	}
	if in := raw(f.input); in[0] != '"' && in[0] != '[' {
		return BadRequest("input", "input must be a string or an array of input items, got %s", jsonscan.Kind(in))
	}
	if f.maxOutputTokens.present() && string(raw(f.maxOutputTokens)) != "null" {
		n, err := strconv.ParseInt(string(raw(f.maxOutputTokens)), 10, 64)
		if err != nil || n < 1 {
			return BadRequest("max_output_tokens", "max_output_tokens must be a positive integer, got %s", raw(f.maxOutputTokens))
		}
		p.maxTokens = n
	}
	p.store = true
	if f.store.present() {
		switch string(raw(f.store)) {
		case "false":
			p.store = false
		case "true", "null":
		default:
			return BadRequest("store", "store must be a boolean, got %s", jsonscan.Kind(raw(f.store)))
		}
	}
	for _, s := range []struct {
		name string
		at   span
	}{{"previous_response_id", f.previousResponseID}, {"instructions", f.instructions}} {
		if v := raw(s.at); s.at.present() && v[0] != '"' && string(v) != "null" {
			return BadRequest(s.name, "%s must be a string, got %s", s.name, jsonscan.Kind(v))
		}
	}
	if f.previousResponseID.present() && body[f.previousResponseID.start] == '"' {
		if err := json.Unmarshal(raw(f.previousResponseID), &p.previousID); err != nil || p.previousID == "" {
			return BadRequest("previous_response_id", "previous_response_id must be a response id")
		}
	}
	if f.tools.present() && raw(f.tools)[0] != '[' && string(raw(f.tools)) != "null" {
		return BadRequest("tools", "tools must be an array, got %s", jsonscan.Kind(raw(f.tools)))
	}
	return nil
}

// invalidUTF8At returns the offset of the first invalid UTF-8 byte of b.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// syntaxHint says where a body stops being valid JSON.
func syntaxHint(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	if se, ok := err.(*json.SyntaxError); ok {
		if se.Offset >= int64(len(body)) {
			return " (it ends too early: truncated?)"
		}
		return " (" + se.Error() + " at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	}
	return ""
}

// includeUsage reads stream_options (valid JSON) as encoding/json reads it
// into struct{ IncludeUsage *bool }: ok is false unless it is an object
// whose include_usage members (matched without regard to case, the last
// one winning) are booleans or null.
func includeUsage(obj []byte) (include, ok bool) {
	if obj[0] != '{' {
		return false, false
	}
	for i := jsonscan.SkipSpace(obj, 1); obj[i] != '}'; {
		if obj[i] == ',' {
			i = jsonscan.SkipSpace(obj, i+1)
		}
		keyStart := i
		i = jsonscan.SkipString(obj, i)
		key := obj[keyStart:i]
		i = jsonscan.SkipSpace(obj, jsonscan.SkipSpace(obj, i)+1) // past ':'
		end := jsonscan.SkipValue(obj, i)
		if isIncludeUsage(key) {
			switch string(obj[i:end]) {
			case "true":
				include = true
			case "false":
				include = false
			case "null":
			default:
				return false, false
			}
		}
		i = jsonscan.SkipSpace(obj, end)
	}
	return include, true
}

// isIncludeUsage reports whether the quoted key names include_usage, by
// encoding/json's case-insensitive match.
func isIncludeUsage(quoted []byte) bool {
	const name = "include_usage"
	text := quoted[1 : len(quoted)-1]
	plain := bytes.IndexByte(text, '\\') < 0
	for _, c := range text {
		plain = plain && c < utf8.RuneSelf
	}
	if plain {
		return bytes.EqualFold(text, []byte(name))
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && strings.EqualFold(k, name)
}

// rewriteBody returns body with the model value replaced by remote and,
// when stream is set, stream_options.include_usage forced on.
func rewriteBody(body []byte, f *bodyFields, remote string, stream bool) []byte {
	var opts []byte // replacement for the stream_options value, if any
	insertOpts := false
	if stream {
		if !f.streamOptions.present() {
			insertOpts = true
		} else {
			raw := body[f.streamOptions.start:f.streamOptions.end]
			m := map[string]json.RawMessage{}
			json.Unmarshal(raw, &m) // validated by parseBody; null leaves m empty
			if string(m["include_usage"]) != "true" {
				m["include_usage"] = json.RawMessage("true")
				opts, _ = json.Marshal(m)
			}
		}
	}
	const usageField = `,"stream_options":{"include_usage":true}`
	out := make([]byte, 0, len(body)+len(remote)+len(usageField))
	type edit struct {
		s    span
		with []byte
	}
	var model []byte // the model value, written into out below when nil
	modelAt := f.model
	if !modelAt.present() { // a Request built without one: add it first
		modelAt = span{f.opening + 1, f.opening + 1}
		model = append(AppendJSONString([]byte(`"model":`), remote), ',')
		if jsonscan.SkipSpace(body, f.opening+1) == f.closing { // {}: no comma after it
			model = model[:len(model)-1]
			if insertOpts {
				model, insertOpts = append(model, usageField...), false
			}
		}
	}
	edits := [2]edit{{modelAt, model}, {}}
	n := 1
	if opts != nil {
		edits[1] = edit{f.streamOptions, opts}
		n = 2
		if edits[1].s.start < edits[0].s.start {
			edits[0], edits[1] = edits[1], edits[0]
		}
	}
	prev := 0
	for _, e := range edits[:n] {
		out = append(out, body[prev:e.s.start]...)
		if e.with == nil {
			out = AppendJSONString(out, remote)
		} else {
			out = append(out, e.with...)
		}
		prev = e.s.end
	}
	if insertOpts {
		out = append(out, body[prev:f.closing]...)
		out = append(out, usageField...)
		prev = f.closing
	}
	return append(out, body[prev:]...)
}
