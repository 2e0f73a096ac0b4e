package translate

import "bytes"

// The fast translation of tools, tool_choice, text.format and
// reasoning: the same decisions as responses_tools.go and
// responseFormat, on raw values. Whatever those refuse, these give up on
// (return false).

// rawTool is a tool as respTool decodes it: string and bool literals as
// written, parameters as any JSON; nil when absent or null.
type rawTool struct {
	typ, name, desc, params, strict []byte
}

// readTool reads the tool at c, checking the type of every member
// respTool decodes; null is a tool with no member.
func readTool(c *jsonCursor) (t rawTool, ok bool) {
	switch c.peek() {
	case 'n':
		c.value()
		return t, true
	case '{':
	default:
		return t, false
	}
	var seen uint32
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return t, false
		}
		v := c.value()
		var bit uint32
		ok := true
		switch string(key) {
		case "type":
			bit = 1 << 0
			t.typ, ok = stringOrNull(v)
		case "name":
			bit = 1 << 1
			t.name, ok = stringOrNull(v)
		case "description":
			bit = 1 << 2
			t.desc, ok = stringOrNull(v)
		case "parameters":
			bit = 1 << 3
			t.params = nonNull(v)
		case "strict":
			bit = 1 << 4
			t.strict, ok = boolLitOrNull(v)
		default:
			continue // defer_loading, tools, format, …
		}
		if !ok || !firstTime(&seen, bit) {
			return t, false
		}
	}
	return t, true
}

// rawChoice is a tool_choice, checked: kind is 0 when there is none,
// '"' for a string str ("auto", "none" or "required" as written), 'f'
// for type function with a name, 'a' for allowed_tools with mode auto
// or required and the names of the function tools it allows (plain
// literals).
type rawChoice struct {
	kind                 byte
	str, typ, name, mode []byte
	allowed              [][]byte
}

// readChoice reads a tool_choice (nil when absent or null).
func readChoice(v []byte) (ch rawChoice, ok bool) {
	switch {
	case v == nil:
		return ch, true
	case v[0] == '"':
		ch.kind, ch.str = '"', v
		return ch, litIs(v, "auto") || litIs(v, "none") || litIs(v, "required")
	case v[0] != '{':
		return ch, false
	}
	var seen uint32
	var tools []byte
	c := jsonCursor{b: v}
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return ch, false
		}
		mv := c.value()
		var bit uint32
		ok := true
		switch string(key) {
		case "type":
			bit = 1 << 0
			ch.typ, ok = stringOrNull(mv)
		case "name":
			bit = 1 << 1
			ch.name, ok = stringOrNull(mv)
		case "mode":
			bit = 1 << 2
			ch.mode, ok = stringOrNull(mv)
		case "tools":
			bit = 1 << 3
			tools = nonNull(mv)
			ok = tools == nil || tools[0] == '['
		default:
			continue
		}
		if !ok || !firstTime(&seen, bit) {
			return ch, false
		}
	}
	allowed := litIs(ch.typ, "allowed_tools")
	tc := jsonCursor{b: tools}
	for tools != nil && tc.element() {
		t, ok := readTool(&tc)
		if !ok || hasEscape(t.typ) {
			return ch, false // an escape might spell function
		}
		if allowed && litIs(t.typ, "function") {
			if !plainLit(t.name) {
				return ch, false
			}
			ch.allowed = append(ch.allowed, t.name)
		}
	}
	switch {
	case litIs(ch.typ, "function"):
		ch.kind = 'f'
		return ch, !isEmptyLit(ch.name)
	case allowed:
		ch.kind = 'a'
		return ch, litIs(ch.mode, "auto") || litIs(ch.mode, "required")
	}
	return ch, false // absent, or forcing a hosted tool
}

// allows reports whether an allowed_tools choice keeps the function tool
// of that name (a plain literal, not empty).
func (ch *rawChoice) allows(name []byte) bool {
	for _, a := range ch.allowed {
		if bytes.Equal(a, name) {
			return true
		}
	}
	return false
}

// tools writes the function tools, tool_choice and parallel_tool_calls
// as translateResponsesTools does, and returns the tools left out.
func (w *respWriter) tools(req *fastRespRequest) (dropped []string, ok bool) {
	tools := req.tools
	if tools != nil && tools[0] != '[' {
		return nil, false
	}
	ch, ok := readChoice(req.toolChoice)
	if !ok {
		return nil, false
	}
	mark := len(w.out)
	w.out = append(w.out, `,"tools":[`...)
	chosen := false // the function tool_choice names a function tool
	c := jsonCursor{b: tools}
	for tools != nil && c.element() {
		t, ok := readTool(&c)
		switch {
		case !ok, isEmptyLit(t.typ):
			return nil, false
		case litIs(t.typ, "function"):
			if isEmptyLit(t.name) {
				return nil, false
			}
			if ch.kind == 'a' {
				if !plainLit(t.name) {
					return nil, false
				}
				if !ch.allows(t.name) {
					continue
				}
			}
			chosen = chosen || ch.kind == 'f' && bytes.Equal(t.name, ch.name)
			w.comma()
			w.functionTool(&t)
		default:
			name, ok := droppedName(&t)
			if !ok {
				return nil, false
			}
			dropped = append(dropped, name)
		}
	}
	haveTools := w.out[len(w.out)-1] != '['
	if !haveTools {
		w.out = w.out[:mark]
	} else {
		w.out = append(w.out, ']')
	}
	return dropped, w.toolChoice(&ch, haveTools, chosen, req.parallel)
}

// functionTool writes a function tool as respChatTool.
func (w *respWriter) functionTool(t *rawTool) {
	w.out = append(w.out, `{"type":"function","function":{"name":`...)
	w.out = appendLit(w.out, t.name, false)
	if !isEmptyLit(t.desc) {
		w.out = append(w.out, `,"description":`...)
		w.out = appendLit(w.out, t.desc, false)
	}
	w.out = append(w.out, `,"parameters":`...)
	if t.params == nil {
		w.out = append(w.out, `{"type":"object","properties":{}}`...)
	} else {
		w.out = appendCompactValue(w.out, t.params)
	}
	if t.strict != nil {
		w.out = append(w.out, `,"strict":`...)
		w.out = append(w.out, t.strict...)
	}
	w.out = append(w.out, `}}`...)
}

// droppedName names a hosted tool as translateResponsesTools does: its
// type, or "namespace:NAME" / "custom:NAME".
func droppedName(t *rawTool) (string, bool) {
	typ, ok := litString(t.typ)
	if !ok {
		return "", false // an escape might spell function
	}
	if typ != "namespace" && typ != "custom" {
		return typ, true
	}
	name, ok := litString(t.name)
	return typ + ":" + name, ok
}

// toolChoice writes tool_choice and parallel_tool_calls after the tools,
// if any was written, or checks that the choice forces none.
func (w *respWriter) toolChoice(ch *rawChoice, haveTools, chosen bool, parallel []byte) bool {
	switch {
	case ch.kind == '"' && litIs(ch.str, "required"), ch.kind == 'a' && litIs(ch.mode, "required"):
		if !haveTools {
			return false // requires a tool call
		}
	case ch.kind == 'f' && !chosen:
		return false // no function tool of that name
	}
	if !haveTools {
		return true
	}
	switch ch.kind {
	case '"':
		w.out = append(w.out, `,"tool_choice":`...)
		w.out = append(w.out, ch.str...)
	case 'a':
		w.out = append(w.out, `,"tool_choice":`...)
		w.out = append(w.out, ch.mode...)
	case 'f':
		w.out = append(w.out, `,"tool_choice":{"type":"function","function":{"name":`...)
		w.out = appendLit(w.out, ch.name, false)
		w.out = append(w.out, `}}`...)
	}
	if parallel != nil {
		w.out = append(w.out, `,"parallel_tool_calls":`...)
		w.out = append(w.out, parallel...)
	}
	return true
}

// fastText is the request's text, checked: format and verbosity as
// written (nil when absent or null), and format's members as respFormat
// decodes them.
type fastText struct {
	format, verbosity               []byte
	typ, name, desc, schema, strict []byte
}

// readRespText reads text and its format.
func readRespText(v []byte) (t fastText, ok bool) {
	if v == nil {
		return t, true
	}
	if v[0] != '{' {
		return t, false
	}
	var seen uint32
	c := jsonCursor{b: v}
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return t, false
		}
		mv := c.value()
		switch string(key) {
		case "format":
			t.format = nonNull(mv)
			ok = firstTime(&seen, 1<<0)
		case "verbosity":
			t.verbosity = nonNull(mv)
			ok = firstTime(&seen, 1<<1)
		default:
			continue
		}
		if !ok {
			return t, false
		}
	}
	return t, t.readFormat()
}

// readFormat reads text.format and checks it as responseFormat does.
func (t *fastText) readFormat() bool {
	if t.format == nil {
		return true
	}
	if t.format[0] != '{' {
		return false
	}
	var seen uint32
	c := jsonCursor{b: t.format}
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return false
		}
		v := c.value()
		var bit uint32
		ok := true
		switch string(key) {
		case "type":
			bit = 1 << 0
			t.typ, ok = stringOrNull(v)
		case "name":
			bit = 1 << 1
			t.name, ok = stringOrNull(v)
		case "description":
			bit = 1 << 2
			t.desc, ok = stringOrNull(v)
		case "schema":
			bit = 1 << 3
			t.schema = nonNull(v)
		case "strict":
			bit = 1 << 4
			t.strict, ok = boolLitOrNull(v)
		default:
			continue
		}
		if !ok || !firstTime(&seen, bit) {
			return false
		}
	}
	switch {
	case litIs(t.typ, "text"), litIs(t.typ, "json_object"):
		return true
	case litIs(t.typ, "json_schema"):
		return !isEmptyLit(t.name) && t.schema != nil
	}
	return false
}

// responseFormat writes the checked text.format as response_format.
func (w *respWriter) responseFormat(t *fastText) {
	switch {
	case litIs(t.typ, "json_object"):
		w.out = append(w.out, `,"response_format":{"type":"json_object"}`...)
	case litIs(t.typ, "json_schema"):
		w.out = append(w.out, `,"response_format":{"type":"json_schema","json_schema":{"name":`...)
		w.out = appendLit(w.out, t.name, false)
		if !isEmptyLit(t.desc) {
			w.out = append(w.out, `,"description":`...)
			w.out = appendLit(w.out, t.desc, false)
		}
		w.out = append(w.out, `,"schema":`...)
		w.out = appendCompactValue(w.out, t.schema)
		if t.strict != nil {
			w.out = append(w.out, `,"strict":`...)
			w.out = append(w.out, t.strict...)
		}
		w.out = append(w.out, `}}`...)
	}
}

// fastReasoning is the request's reasoning: effort and the summary
// (or generate_summary) as string literals, nil when absent or null.
type fastReasoning struct {
	effort, summary []byte
}

// readReasoning reads reasoning as reasoningEffort and reasoningEcho do.
func readReasoning(v []byte) (r fastReasoning, ok bool) {
	if v == nil {
		return r, true
	}
	if v[0] != '{' {
		return r, false
	}
	var generate []byte
	var seen uint32
	c := jsonCursor{b: v}
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return r, false
		}
		mv := c.value()
		var bit uint32
		ok := true
		switch string(key) {
		case "effort":
			bit = 1 << 0
			r.effort, ok = stringOrNull(mv)
		case "summary":
			bit = 1 << 1
			r.summary, ok = stringOrNull(mv)
		case "generate_summary":
			bit = 1 << 2
			generate, ok = stringOrNull(mv)
		default:
			continue
		}
		if !ok || !firstTime(&seen, bit) {
			return r, false
		}
	}
	if r.summary == nil {
		r.summary = generate
	}
	return r, true
}
