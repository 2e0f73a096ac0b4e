package translate

import "slices"

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
	// contentScratch and outputScratch are scratch space for the parts of
	// the item being read.
	contentScratch, outputScratch []rawPart
}

// rawItem is an input item as respItem decodes it: string literals as
// written, nil when absent or null.
type rawItem struct {
	typ, role, callID, name, args []byte
	content, output               rawContent
}

// rawContent is a content or output member: raw is its value as
// written, nil when absent or null; parts are an array's parts, read as
// the item is, and bad says that the array is not one of parts respPart
// decodes (refused if the item is of a type that reads it).
type rawContent struct {
	raw   []byte
	parts []rawPart
	bad   bool
}

// rawPart is a content part as respPart decodes it: string literals as
// written, nil when absent or null.
type rawPart struct {
	typ, text, refusal, imageURL, detail, fileData, filename []byte
}

// instructions writes the instructions as the first message: at the
// end of w.out while it has no message, else inserted at the start of
// the messages, at.
func (w *respWriter) instructions(at int, lit []byte) {
	if isEmptyLit(lit) {
		return
	}
	end := len(w.out)
	w.out = append(w.out, `{"role":"system","content":`...)
	w.out = appendLit(w.out, lit, true)
	w.out = append(w.out, '}')
	if end == at {
		return
	}
	msg := append([]byte(nil), w.out[end:]...)
	w.out = slices.Insert(w.out[:end], at, append(msg, ',')...)
}

// conversation writes the history items and then the input at c (nil
// when the body has none), and closes what they leave open.
func (w *respWriter) conversation(c *jsonCursor, history []byte) bool {
	if len(history) > 0 && !w.items(&jsonCursor{b: history}) {
		return false
	}
	if c != nil {
		switch c.peek() {
		case 'n':
			c.value()
		case '"':
			if !w.user(rawContent{raw: c.value()}) {
				return false
			}
		case '[':
			if !w.items(c) {
				return false
			}
		default:
			return false
		}
	}
	w.closeAssistant()
	w.flushMedia()
	return true
}

// items writes the items of the array at c.
func (w *respWriter) items(c *jsonCursor) bool {
	for c.element() {
		it, ok := w.readItem(c)
		if !ok || !w.add(&it) {
			return false
		}
	}
	return true
}

// readItem reads the item at c, checking the type of every member
// respItem decodes, of whatever item type. The parts of its content and
// output go to w's scratch space, reused from item to item.
func (w *respWriter) readItem(c *jsonCursor) (it rawItem, ok bool) {
	if c.peek() != '{' {
		return it, false // null would be a message without a role
	}
	var seen uint32
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return it, false
		}
		var bit uint32
		ok := true
		switch string(key) {
		case "content":
			bit = 1 << 5
			it.content = readContent(c, &w.contentScratch)
		case "output":
			bit = 1 << 6
			it.output = readContent(c, &w.outputScratch)
		case "type":
			bit = 1 << 0
			it.typ, ok = stringOrNull(c.value())
		case "role":
			bit = 1 << 1
			it.role, ok = stringOrNull(c.value())
		case "call_id":
			bit = 1 << 2
			it.callID, ok = stringOrNull(c.value())
		case "name":
			bit = 1 << 3
			it.name, ok = stringOrNull(c.value())
		case "arguments":
			bit = 1 << 4
			it.args, ok = stringOrNull(c.value())
		default:
			c.value() // id, status, summary, encrypted_content, …
			continue
		}
		if !ok || !firstTime(&seen, bit) {
			return it, false
		}
	}
	return it, true
}

// readContent reads the content or output member at c, an array's
// parts into *scratch.
func readContent(c *jsonCursor, scratch *[]rawPart) rawContent {
	if c.peek() != '[' {
		return rawContent{raw: nonNull(c.value())}
	}
	start := c.i
	parts := (*scratch)[:0]
	for c.element() {
		p, ok := readPart(c)
		if !ok {
			c.i = start
			return rawContent{raw: c.value(), bad: true}
		}
		parts = append(parts, p)
	}
	*scratch = parts
	return rawContent{raw: c.b[start:c.i], parts: parts}
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
		if _, ok = w.joinTexts(&it.content, false, false); !ok {
			return false
		}
		w.out = append(w.out, `"}`...)
		return true
	case litIs(it.role, "assistant"):
		w.openAssistant()
		w.asstText, ok = w.joinTexts(&it.content, w.asstText, true)
		return ok
	}
	return false
}

// joinTexts writes the texts of content (a string, an array of text
// parts, refusal parts too for an assistant, or nothing) joined with
// "\n\n" after what wrote says was written before, as partsText and the
// assistant's run do together: empty texts take no separator.
func (w *respWriter) joinTexts(content *rawContent, wrote, assistant bool) (bool, bool) {
	switch raw := content.raw; {
	case raw == nil:
		return wrote, true
	case raw[0] == '"':
		return w.joinText(wrote, `\n\n`, raw), true
	case raw[0] != '[' || content.bad:
		return wrote, false
	}
	for i := range content.parts {
		p := &content.parts[i]
		switch {
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
// nothing), with the media of tool outputs first, as chatBuilder.user
// does.
func (w *respWriter) user(content rawContent) bool {
	raw := content.raw
	if raw != nil && (raw[0] != '"' && raw[0] != '[' || content.bad) {
		return false
	}
	w.closeAssistant()
	isString := raw != nil && raw[0] == '"'
	if isString && w.nMedia == 0 {
		w.comma()
		w.out = append(w.out, `{"role":"user","content":`...)
		w.out = appendLit(w.out, raw, true)
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
	if isString {
		w.comma()
		w.textPart(raw)
		n++
	}
	for i := range content.parts {
		p := &content.parts[i]
		w.comma()
		if litIs(p.typ, "input_text") || litIs(p.typ, "output_text") {
			w.textPart(p.text)
		} else {
			var ok bool
			if w.out, ok = appendMediaPart(w.out, p); !ok {
				return false
			}
		}
		n++
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
	out := it.output.raw
	w.closeAssistant()
	w.comma()
	w.out = append(w.out, `{"role":"tool","content":`...)
	switch {
	case out == nil:
		w.out = append(w.out, `""`...)
	case out[0] == '"':
		w.out = appendLit(w.out, out, true)
	case out[0] == '[' && !it.output.bad:
		if !w.outputParts(it.output.parts) {
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
func (w *respWriter) outputParts(parts []rawPart) bool {
	w.out = append(w.out, '"')
	wrote := false
	for i := range parts {
		p := &parts[i]
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
		var ok bool
		if w.media, ok = appendMediaPart(w.media, p); !ok {
			return false
		}
		w.nMedia++
	}
	w.out = append(w.out, '"')
	return true
}
