package translate

import (
	"strconv"
	"unicode/utf8"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// fastResponsesToChat is ResponsesToChat without encoding/json, as
// fastMessagesToChat is MessagesToChat: it scans the body once for its
// members, copies the values that pass unchanged (tool parameters,
// function call arguments, texts re-encoded as encoding/json writes
// them) and writes the chat request into one buffer, the echo into
// another. On a 30 KB Codex-like body (BenchmarkResponsesToChat) it
// took an eighth of the time, with 20 allocations instead of about 2,500
// and a quarter of the memory.
//
// It handles what clients send and nothing else: whenever the body (or
// opts.History) is not valid JSON, would be refused, or holds something
// encoding/json reads in its own way (a repeated key, a key in another
// case, an escape where the translation compares a string), it gives up
// with ok false and ResponsesToChat decodes the body instead. So its
// result is always what the decoding translation makes, byte for byte
// (FuzzFastResponsesToChat compares them), and errors come from one
// place only.
func fastResponsesToChat(body []byte, opts ResponsesOptions) (r *ResponsesRequest, ok bool) {
	if !jsonscan.Valid(body) || body[jsonscan.SkipSpace(body, 0)] != '{' {
		return nil, false
	}
	history := opts.History
	if len(history) > 0 && (!jsonscan.Valid(history) || history[jsonscan.SkipSpace(history, 0)] != '[') {
		return nil, false
	}
	w := respWriter{asstAt: -1}
	w.out = make([]byte, 0, len(body)+len(history)+len(body)/8+512)
	w.out = append(w.out, `{"model":`...)
	w.out = appendGoString(w.out, opts.Model, false)
	w.out = append(w.out, `,"messages":[`...)
	var req fastRespRequest
	if !req.read(body, &w, history) || !req.honoured() {
		return nil, false
	}
	if w.out[len(w.out)-1] == '[' {
		return nil, false // no message: input is required
	}
	w.out = append(w.out, ']')
	reasoning, ok := readReasoning(req.reasoning)
	if !ok {
		return nil, false
	}
	text, ok := readRespText(req.text)
	if !ok {
		return nil, false
	}
	w.limits(&req, opts)
	dropped, ok := w.tools(&req)
	if !ok {
		return nil, false
	}
	w.responseFormat(&text)
	if !isEmptyLit(reasoning.effort) {
		w.out = append(w.out, `,"reasoning_effort":`...)
		w.out = appendLit(w.out, reasoning.effort, false)
	}
	user := req.user
	if isEmptyLit(user) {
		user = req.safetyID
	}
	if !isEmptyLit(user) {
		w.out = append(w.out, `,"user":`...)
		w.out = appendLit(w.out, user, false)
	}
	w.out = append(w.out, '}')

	echo, ok := fastEcho(&req, &reasoning, &text)
	if !ok {
		return nil, false
	}
	return &ResponsesRequest{Chat: w.out, Input: fastInput(req.input), DroppedTools: dropped, echo: echo}, true
}

// fastInput returns the input to store, as inputItems does: a copy of the
// array, or the string as one user message item.
func fastInput(input []byte) []byte {
	const prefix, suffix = `[{"type":"message","role":"user","content":[{"type":"input_text","text":`, `}]}]`
	switch {
	case input == nil:
		return []byte("[]")
	case input[0] == '"':
		b := make([]byte, 0, len(prefix)+len(input)+len(suffix))
		b = append(b, prefix...)
		b = append(b, input...)
		return append(b, suffix...)
	}
	return append([]byte(nil), input...)
}

// optFloat is a number member, parsed; set is false when it is absent or
// null.
type optFloat struct {
	f   float64
	set bool
}

// fastRespRequest holds the members of a Responses request as respRequest
// decodes them, checked for their types: raw values, string and bool
// literals as written, integers checked to fit; nil is absent or null.
type fastRespRequest struct {
	input, instructions, tools, toolChoice, text, reasoning, metadata []byte
	parallel, store                                                   []byte
	user, safetyID, previousID, truncation, cacheKey                  []byte
	maxOutput, maxToolCalls, topLogprobs                              []byte
	temperature, topP, frequencyPenalty, presencePenalty              optFloat
}

// respMembers are the members of respRequest, in its order: a body
// member of any other name is refused, and left to encoding/json.
var respMembers = [...]string{
	"model", "input", "instructions", "tools", "tool_choice", "text", "temperature", "top_p",
	"frequency_penalty", "presence_penalty", "max_output_tokens", "max_tool_calls",
	"parallel_tool_calls", "reasoning", "user", "safety_identifier", "stream", "stream_options",
	"store", "previous_response_id", "metadata", "truncation", "background", "top_logprobs",
	"include", "prompt_cache_key", "prompt_cache_retention", "client_metadata", "service_tier",
}

// read reads the members of a request body, checking the types of those
// respRequest decodes into typed fields. It writes the messages, which
// come first in the output, as it meets the input (the history before
// it), and keeps the rest in r.
func (r *fastRespRequest) read(body []byte, w *respWriter, history []byte) bool {
	var seen uint32
	messagesAt := len(w.out)
	inputRead := false
	c := jsonCursor{b: body}
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return false
		}
		var bit uint32
		for i, name := range respMembers {
			if string(key) == name {
				bit = 1 << i
				break
			}
		}
		if bit == 0 || !firstTime(&seen, bit) {
			return false // unknown (refused) or repeated
		}
		switch string(key) {
		case "input":
			start := jsonscan.SkipSpace(body, c.i)
			if !w.conversation(&c, history) {
				return false
			}
			r.input, inputRead = nonNull(body[start:c.i]), true
		case "instructions":
			var ok bool
			if r.instructions, ok = stringOrNull(c.value()); !ok {
				return false // anything else is refused
			}
			w.instructions(messagesAt, r.instructions)
		default:
			if !r.keep(string(key), c.value()) {
				return false
			}
		}
	}
	return inputRead || w.conversation(nil, history)
}

// keep checks and keeps the value v of the member key.
func (r *fastRespRequest) keep(key string, v []byte) bool {
	ok := true
	switch key {
	case "tools":
		r.tools = nonNull(v)
	case "tool_choice":
		r.toolChoice = nonNull(v)
	case "text":
		r.text = nonNull(v)
	case "reasoning":
		r.reasoning = nonNull(v)
	case "metadata":
		r.metadata = nonNull(v)
	case "temperature":
		r.temperature, ok = readFloat(v)
	case "top_p":
		r.topP, ok = readFloat(v)
	case "frequency_penalty":
		r.frequencyPenalty, ok = readFloat(v)
	case "presence_penalty":
		r.presencePenalty, ok = readFloat(v)
	case "max_output_tokens":
		r.maxOutput, ok = intOrNull(v)
	case "max_tool_calls":
		r.maxToolCalls, ok = intOrNull(v)
	case "top_logprobs":
		r.topLogprobs, ok = intOrNull(v)
	case "parallel_tool_calls":
		r.parallel, ok = boolLitOrNull(v)
	case "store":
		r.store, ok = boolLitOrNull(v)
	case "stream":
		_, ok = boolLitOrNull(v)
	case "background":
		var lit []byte
		lit, ok = boolLitOrNull(v)
		ok = ok && (lit == nil || lit[0] == 'f') // true is refused
	case "user":
		r.user, ok = stringOrNull(v)
	case "safety_identifier":
		r.safetyID, ok = stringOrNull(v)
	case "previous_response_id":
		r.previousID, ok = stringOrNull(v)
	case "truncation":
		r.truncation, ok = stringOrNull(v)
	case "prompt_cache_key":
		r.cacheKey, ok = stringOrNull(v)
	}
	// model, stream_options, include, prompt_cache_retention,
	// client_metadata and service_tier: any JSON, not read.
	return ok
}

// honoured checks what refuseUnsupported refuses (background was checked
// by keep).
func (r *fastRespRequest) honoured() bool {
	if t := r.truncation; t != nil && !litIs(t, "disabled") && !litIs(t, "auto") {
		return false
	}
	if n := r.topLogprobs; n != nil {
		if v, _ := smallInt(n); v != 0 {
			return false
		}
	}
	return true
}

// readFloat reads what encoding/json accepts for a *float64 member.
func readFloat(v []byte) (optFloat, bool) {
	switch {
	case v[0] == 'n':
		return optFloat{}, true
	case v[0] != '-' && (v[0] < '0' || v[0] > '9'):
		return optFloat{}, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return optFloat{f: f, set: true}, err == nil
}

// intOrNull checks a *int64 member: null, or an integer smallInt reads
// (anything else is left to encoding/json).
func intOrNull(v []byte) (lit []byte, ok bool) {
	if v[0] == 'n' {
		return nil, true
	}
	_, ok = smallInt(v)
	return v, ok
}

// boolLitOrNull checks a *bool member and returns its literal, nil for
// null.
func boolLitOrNull(v []byte) (lit []byte, ok bool) {
	switch v[0] {
	case 't', 'f':
		return v, true
	case 'n':
		return nil, true
	}
	return nil, false
}

// plainLit reports whether a string literal decodes to its bytes as
// written: no escape, valid UTF-8 (json.Unmarshal turns each bad byte
// into U+FFFD). Two plain literals are equal exactly when their strings
// are, and appendJSONString writes a plain literal's string as the
// literal.
func plainLit(lit []byte) bool {
	return !hasEscape(lit) && utf8.Valid(lit)
}

// litString returns the string of a plain literal ("" for nil); ok false
// for any other.
func litString(lit []byte) (string, bool) {
	if lit == nil {
		return "", true
	}
	if !plainLit(lit) {
		return "", false
	}
	return string(lit[1 : len(lit)-1]), true
}

// limits writes max_tokens (or max_completion_tokens), stream and the
// sampling numbers, in respChatRequest's order.
func (w *respWriter) limits(req *fastRespRequest, opts ResponsesOptions) {
	if req.maxOutput != nil {
		n, _ := smallInt(req.maxOutput)
		w.out = appendMaxTokens(w.out, n, opts.MaxCompletionTokens)
	}
	w.out = appendStream(w.out, opts.Stream)
	for _, m := range [...]struct {
		member string
		v      optFloat
	}{
		{`,"temperature":`, req.temperature}, {`,"top_p":`, req.topP},
		{`,"frequency_penalty":`, req.frequencyPenalty}, {`,"presence_penalty":`, req.presencePenalty},
	} {
		if m.v.set {
			w.out = append(w.out, m.member...)
			w.out = appendJSONFloat(w.out, m.v.f)
		}
	}
}

// fastEcho writes what responseEcho writes.
func fastEcho(req *fastRespRequest, reasoning *fastReasoning, text *fastText) ([]byte, bool) {
	e := echoWriter{b: make([]byte, 0, 512+len(req.instructions)+len(req.tools)+len(req.toolChoice)+len(req.text)+len(req.metadata))}
	e.b = append(e.b, `"background":false`...)
	e.raw(`,"instructions":`, req.instructions, "null")
	e.int(`,"max_output_tokens":`, req.maxOutput, "null")
	e.int(`,"max_tool_calls":`, req.maxToolCalls, "null")
	e.raw(`,"parallel_tool_calls":`, req.parallel, "true")
	e.str(`,"previous_response_id":`, req.previousID)
	e.str(`,"prompt_cache_key":`, req.cacheKey)
	e.b = append(e.b, `,"reasoning":{"effort":`...)
	e.str("", reasoning.effort)
	e.b = append(e.b, `,"summary":`...)
	e.str("", reasoning.summary)
	e.b = append(e.b, '}')
	e.str(`,"safety_identifier":`, req.safetyID)
	e.b = append(e.b, `,"service_tier":"default"`...)
	e.raw(`,"store":`, req.store, "true")
	e.float(`,"temperature":`, req.temperature, true)
	e.b = append(e.b, `,"text":{"format":`...)
	if text.format == nil {
		e.b = append(e.b, `{"type":"text"}`...)
	} else {
		e.b = appendCompactValue(e.b, text.format)
	}
	e.raw(`,"verbosity":`, text.verbosity, "")
	e.b = append(e.b, '}')
	e.raw(`,"tool_choice":`, req.toolChoice, `"auto"`)
	e.raw(`,"tools":`, req.tools, "[]")
	e.int(`,"top_logprobs":`, req.topLogprobs, "0")
	e.float(`,"top_p":`, req.topP, true)
	if req.truncation == nil {
		e.b = append(e.b, `,"truncation":"disabled"`...)
	} else {
		e.str(`,"truncation":`, req.truncation)
	}
	e.float(`,"frequency_penalty":`, req.frequencyPenalty, false)
	e.float(`,"presence_penalty":`, req.presencePenalty, false)
	e.str(`,"user":`, req.user)
	e.raw(`,"metadata":`, req.metadata, "{}")
	return e.b, !e.bad
}

// echoWriter writes the echo; bad is set by a string it cannot write as
// appendJSONString would.
type echoWriter struct {
	b   []byte
	bad bool
}

// raw writes a member's raw value compacted, or def for nil; an empty
// def leaves the member out.
func (e *echoWriter) raw(member string, v []byte, def string) {
	if v == nil && def == "" {
		return
	}
	e.b = append(e.b, member...)
	if v == nil {
		e.b = append(e.b, def...)
		return
	}
	e.b = appendCompactValue(e.b, v)
}

// int writes a checked integer as it decodes (-0 is 0).
func (e *echoWriter) int(member string, v []byte, def string) {
	if v == nil {
		e.raw(member, nil, def)
		return
	}
	n, _ := smallInt(v)
	e.b = append(e.b, member...)
	e.b = strconv.AppendInt(e.b, n, 10)
}

// float writes a number, or null when orNull (else nothing) if absent.
func (e *echoWriter) float(member string, v optFloat, orNull bool) {
	switch {
	case v.set:
		e.b = append(e.b, member...)
		e.b = appendJSONFloat(e.b, v.f)
	case orNull:
		e.b = append(e.b, member...)
		e.b = append(e.b, "null"...)
	}
}

// str writes a string literal as stringJSON writes its string, or null.
func (e *echoWriter) str(member string, lit []byte) {
	e.b = append(e.b, member...)
	switch {
	case lit == nil:
		e.b = append(e.b, "null"...)
	case plainLit(lit):
		e.b = append(e.b, lit...)
	default:
		e.bad = true
	}
}
