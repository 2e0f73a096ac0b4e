package translate

// The fast translation of instructions and input items: the same
// decisions as chatBuilder in responses_input.go, on raw values. Whatever
// that refuses, these give up on (return false).

// respWriter writes the Chat Completions request of a Responses request.
// It embeds the writer of the fast MessagesToChat for its buffer and the
// helpers both share (comma, joinText, textPart, closeUser); lastTool
// stays false.
type respWriter struct {
	chatWriter
	// asstAt is where the open assistant message's content begins in
	// out (its opening quote), or -1 when none is open; asstText says
	// whether it has text.
	asstAt   int
	asstText bool
	// calls are the open assistant message's tool calls, comma-separated.
	calls []byte
	// media are the image and file parts of tool outputs waiting for a
	// user message, comma-separated, as json.Marshal writes them; nMedia
	// counts them.
	media  []byte
	nMedia int
}

// rawItem is an input item as respItem decodes it: string literals as
// written, any JSON for content and output; nil when absent or null.
type rawItem struct {
	typ, role, callID, name, args []byte
	content, output               []byte
}

// rawPart is a content part as respPart decodes it: string literals as
// written, nil when absent or null.
type rawPart struct {
	typ, text, refusal, imageURL, detail, fileData, filename []byte
}

// messages writes the instructions, the history items and the input,
// and checks that there is a message.
func (w *respWriter) messages(req *fastRespRequest, history []byte) bool {
	if !isEmptyLit(req.instructions) {
		w.out = append(w.out, `{"role":"system","content":`...)
		w.out = appendLit(w.out, req.instructions, true)
		w.out = append(w.out, '}')
	}
	if len(history) > 0 && !w.items(history) {
		return false
	}
	switch in := req.input; {
	case in == nil:
	case in[0] == '"':
		if !w.user(in) {
			return false
		}
	case in[0] == '[':
		if !w.items(in) {
			return false
		}
	default:
		return false
	}
	w.closeAssistant()
	w.flushMedia()
	return w.out[len(w.out)-1] != '[' // "input is required"
}

// items writes the items of the array arr.
func (w *respWriter) items(arr []byte) bool {
	c := jsonCursor{b: arr}
	for c.element() {
		it, ok := readItem(&c)
		if !ok || !w.add(&it) {
			return false
		}
	}
	return true
}

// readItem reads the item at c, checking the type of every member
// respItem decodes, of whatever item type.
func readItem(c *jsonCursor) (it rawItem, ok bool) {
	if c.peek() != '{' {
		return it, false // null would be a message without a role
	}
	var seen uint32
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return it, false
		}
		v := c.value()
		var bit uint32
		ok := true
		switch string(key) {
		case "type":
			bit = 1 << 0
			it.typ, ok = stringOrNull(v)
		case "role":
			bit = 1 << 1
			it.role, ok = stringOrNull(v)
		case "call_id":
			bit = 1 << 2
			it.callID, ok = stringOrNull(v)
		case "name":
			bit = 1 << 3
			it.name, ok = stringOrNull(v)
		case "arguments":
			bit = 1 << 4
			it.args, ok = stringOrNull(v)
		case "content":
			bit = 1 << 5
			it.content = nonNull(v)
		case "output":
			bit = 1 << 6
			it.output = nonNull(v)
		default:
			continue // id, status, summary, encrypted_content, …
		}
		if !ok || !firstTime(&seen, bit) {
			return it, false
		}
	}
	return it, true
}

// readPart reads the content part at c, checking the type of every
// member respPart decodes.
func readPart(c *jsonCursor) (p rawPart, ok bool) {
	if c.peek() != '{' {
		return p, false // null would be a part without a type
	}
	var seen uint32
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return p, false
		}
		v := c.value()
		var dst *[]byte
		var bit uint32
		switch string(key) {
		case "type":
			dst, bit = &p.typ, 1<<0
		case "text":
			dst, bit = &p.text, 1<<1
		case "refusal":
			dst, bit = &p.refusal, 1<<2
		case "image_url":
			dst, bit = &p.imageURL, 1<<3
		case "detail":
			dst, bit = &p.detail, 1<<4
		case "file_data":
			dst, bit = &p.fileData, 1<<5
		case "filename":
			dst, bit = &p.filename, 1<<6
		case "file_id", "file_url":
			// Only read to refuse the part, which is given up on
			// anyway; still a string or null.
			if _, ok := stringOrNull(v); !ok {
				return p, false
			}
			continue
		default:
			continue
		}
		lit, ok := stringOrNull(v)
		if !ok || !firstTime(&seen, bit) {
			return p, false
		}
		*dst = lit
	}
	return p, true
}

// add writes one item, as chatBuilder.add does.
func (w *respWriter) add(it *rawItem) bool {
	switch {
	case isEmptyLit(it.typ), litIs(it.typ, "message"):
		return w.message(it)
	case litIs(it.typ, "function_call"):
		return w.functionCall(it)
	case litIs(it.typ, "function_call_output"):
		return w.functionCallOutput(it)
	case litIs(it.typ, "reasoning"):
		return true // dropped; it does not end the assistant's run
	}
	return false
}

// message writes a message item.
func (w *respWriter) message(it *rawItem) bool {
	var ok bool
	switch {
	case litIs(it.role, "user"):
		return w.user(it.content)
	case litIs(it.role, "system"), litIs(it.role, "developer"):
		w.closeAssistant()
		w.flushMedia()
		w.comma()
		w.out = append(w.out, `{"role":"system","content":"`...)
		if _, ok = w.joinTexts(it.content, false, false); !ok {
			return false
		}
		w.out = append(w.out, `"}`...)
		return true
	case litIs(it.role, "assistant"):
		w.openAssistant()
		w.asstText, ok = w.joinTexts(it.content, w.asstText, true)
		return ok
	}
	return false
}

// joinTexts writes the texts of content (a string, an array of text
// parts, refusal parts too for an assistant, or nil) joined with "\n\n"
// after what wrote says was written before, as partsText and the
// assistant's run do together: empty texts take no separator.
func (w *respWriter) joinTexts(content []byte, wrote, assistant bool) (bool, bool) {
	switch {
	case content == nil:
		return wrote, true
	case content[0] == '"':
		return w.joinText(wrote, `\n\n`, content), true
	case content[0] != '[':
		return wrote, false
	}
	c := jsonCursor{b: content}
	for c.element() {
		p, ok := readPart(&c)
		switch {
		case !ok:
			return wrote, false
		case litIs(p.typ, "input_text"), litIs(p.typ, "output_text"):
			wrote = w.joinText(wrote, `\n\n`, p.text)
		case assistant && litIs(p.typ, "refusal"):
			wrote = w.joinText(wrote, `\n\n`, p.refusal)
		default:
			return wrote, false
		}
	}
	return wrote, true
}

// user writes a user message of content (a string, an array of parts or
// nil), with the media of tool outputs first, as chatBuilder.user does.
func (w *respWriter) user(content []byte) bool {
	if content != nil && content[0] != '"' && content[0] != '[' {
		return false
	}
	w.closeAssistant()
	if content != nil && content[0] == '"' && w.nMedia == 0 {
		w.comma()
		w.out = append(w.out, `{"role":"user","content":`...)
		w.out = appendLit(w.out, content, true)
		w.out = append(w.out, '}')
		return true
	}
	mark := len(w.out)
	w.comma()
	w.out = append(w.out, `{"role":"user","content":[`...)
	partsStart := len(w.out)
	w.out = append(w.out, w.media...)
	n := w.nMedia
	w.media, w.nMedia = w.media[:0], 0
	if content != nil && content[0] == '"' {
		w.comma()
		w.textPart(content)
		n++
	} else if content != nil {
		c := jsonCursor{b: content}
		for c.element() {
			p, ok := readPart(&c)
			if !ok {
				return false
			}
			w.comma()
			if litIs(p.typ, "input_text") || litIs(p.typ, "output_text") {
				w.textPart(p.text)
			} else if w.out, ok = appendMediaPart(w.out, &p); !ok {
				return false
			}
			n++
		}
	}
	w.closeUser(mark, partsStart, n) // lastTool is false: never drops it
	return true
}

// appendMediaPart writes an image or file part as respUserPart
// translates it, and json.Marshal writes it.
func appendMediaPart(dst []byte, p *rawPart) ([]byte, bool) {
	switch {
	case litIs(p.typ, "input_image"):
		if isEmptyLit(p.imageURL) {
			return dst, false
		}
		dst = append(dst, `{"type":"image_url","image_url":{"url":`...)
		dst = appendLit(dst, p.imageURL, true)
		if !isEmptyLit(p.detail) && !litIs(p.detail, "auto") {
			if hasEscape(p.detail) {
				return dst, false // it might spell auto
			}
			dst = append(dst, `,"detail":`...)
			dst = appendLit(dst, p.detail, true)
		}
		return append(dst, `}}`...), true
	case litIs(p.typ, "input_file"):
		if isEmptyLit(p.fileData) {
			return dst, false
		}
		dst = append(dst, `{"type":"file","file":{`...)
		if !isEmptyLit(p.filename) {
			dst = append(dst, `"filename":`...)
			dst = appendLit(dst, p.filename, true)
			dst = append(dst, ',')
		}
		dst = append(dst, `"file_data":`...)
		dst = appendLit(dst, p.fileData, true)
		return append(dst, `}}`...), true
	}
	return dst, false
}

// openAssistant makes sure an assistant message takes the next items:
// its content is written as its texts come, its tool calls wait in
// w.calls.
func (w *respWriter) openAssistant() {
	if w.asstAt >= 0 {
		return
	}
	w.flushMedia()
	w.comma()
	w.out = append(w.out, `{"role":"assistant","content":"`...)
	w.asstAt = len(w.out) - 1
	w.asstText = false
	w.calls = w.calls[:0]
}

// closeAssistant ends the open assistant message: its text, or null
// beside tool calls, or "".
func (w *respWriter) closeAssistant() {
	if w.asstAt < 0 {
		return
	}
	switch {
	case w.asstText:
		w.out = append(w.out, '"')
	case len(w.calls) > 0:
		w.out = append(w.out[:w.asstAt], "null"...)
	default:
		w.out = append(w.out[:w.asstAt], `""`...)
	}
	if len(w.calls) > 0 {
		w.out = append(w.out, `,"tool_calls":[`...)
		w.out = append(w.out, w.calls...)
		w.out = append(w.out, ']')
	}
	w.out = append(w.out, '}')
	w.asstAt = -1
}

// flushMedia writes the media of tool outputs as a user message.
func (w *respWriter) flushMedia() {
	if w.nMedia == 0 {
		return
	}
	w.comma()
	w.out = append(w.out, `{"role":"user","content":[`...)
	w.out = append(w.out, w.media...)
	w.out = append(w.out, `]}`...)
	w.media, w.nMedia = w.media[:0], 0
}

// functionCall adds a tool call to the assistant message.
func (w *respWriter) functionCall(it *rawItem) bool {
	if isEmptyLit(it.callID) || isEmptyLit(it.name) {
		return false
	}
	blank, ok := blankLit(it.args)
	if !ok {
		return false
	}
	w.openAssistant()
	if len(w.calls) > 0 {
		w.calls = append(w.calls, ',')
	}
	w.calls = append(w.calls, `{"id":`...)
	w.calls = appendLit(w.calls, it.callID, false)
	w.calls = append(w.calls, `,"type":"function","function":{"name":`...)
	w.calls = appendLit(w.calls, it.name, false)
	w.calls = append(w.calls, `,"arguments":`...)
	if blank {
		w.calls = append(w.calls, `"{}"`...)
	} else {
		w.calls = appendLit(w.calls, it.args, false)
	}
	w.calls = append(w.calls, `}}`...)
	return true
}

// blankLit reports whether a string literal decodes to what
// strings.TrimSpace empties; ok false when it cannot tell cheaply (a
// literal of spaces, escapes and non-ASCII only), left to encoding/json.
func blankLit(lit []byte) (blank, ok bool) {
	unsure := false
	for i := 1; i < len(lit)-1; i++ {
		switch c := lit[i]; {
		case c == ' ':
		case c == '\\':
			unsure = true // the escape \n stands for a space, \" does not
			if lit[i+1] == 'u' {
				i += 4
			}
			i++
		case c >= 0x80:
			unsure = true // U+00A0 is a space, é is not
		default:
			return false, true // a byte that stands for itself, no space
		}
	}
	return !unsure, !unsure
}

// functionCallOutput writes a tool message; the media of the output wait
// in w.media.
func (w *respWriter) functionCallOutput(it *rawItem) bool {
	if isEmptyLit(it.callID) {
		return false
	}
	out := it.output
	w.closeAssistant()
	w.comma()
	w.out = append(w.out, `{"role":"tool","content":`...)
	switch {
	case out == nil:
		w.out = append(w.out, `""`...)
	case out[0] == '"':
		w.out = appendLit(w.out, out, true)
	case out[0] == '[':
		if !w.outputParts(out) {
			return false
		}
	default:
		return false
	}
	w.out = append(w.out, `,"tool_call_id":`...)
	w.out = appendLit(w.out, it.callID, false)
	w.out = append(w.out, '}')
	return true
}

// outputParts writes the text parts of a tool output joined with "\n",
// as functionCallOutput does (an empty text after another still takes a
// separator), and keeps its media.
func (w *respWriter) outputParts(arr []byte) bool {
	w.out = append(w.out, '"')
	wrote := false
	c := jsonCursor{b: arr}
	for c.element() {
		p, ok := readPart(&c)
		if !ok {
			return false
		}
		if litIs(p.typ, "input_text") || litIs(p.typ, "output_text") {
			if wrote {
				w.out = append(w.out, `\n`...)
			}
			w.out = appendLitInner(w.out, p.text, true)
			wrote = wrote || !isEmptyLit(p.text)
			continue
		}
		if w.nMedia > 0 {
			w.media = append(w.media, ',')
		}
		if w.media, ok = appendMediaPart(w.media, &p); !ok {
			return false
		}
		w.nMedia++
	}
	w.out = append(w.out, '"')
	return true
}
