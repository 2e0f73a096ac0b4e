package translate

// The fast translation of system prompts and turns: the same decisions
// as systemText, appendUser and appendAssistant in tochat.go, on raw
// values. Whatever those refuse, these give up on (return false).

// rawBlock is a content block as msgBlock decodes it, by its raw values:
// string literals as written, nil when absent or null.
type rawBlock struct {
	typ, text, title, id, name, toolUseID []byte
	input, content                        []byte // any JSON, as written
	source                                rawSource
	hasSource, isError                    bool
}

// rawSource is the source of an image or a document.
type rawSource struct {
	typ, mediaType, data, url []byte
}

// litText is the type of the block a string content stands for.
var litText = []byte(`"text"`)

// readBlocks reads a content field at c as contentBlocksKind does into
// dst's array: a string is one text block; null or absent (c nil) is
// none.
func readBlocks(c *jsonCursor, dst []rawBlock) (blocks []rawBlock, isString, ok bool) {
	blocks = dst[:0]
	if c == nil {
		return blocks, false, true
	}
	switch c.peek() {
	case 'n':
		c.value()
		return blocks, false, true
	case '"':
		return append(blocks, rawBlock{typ: litText, text: c.value()}), true, true
	case '[':
	default:
		return blocks, false, false
	}
	for c.element() {
		b, ok := readBlock(c)
		if !ok {
			return blocks, false, false
		}
		blocks = append(blocks, b)
	}
	return blocks, false, true
}

// readRawBlocks is readBlocks of a raw value, nil when absent.
func readRawBlocks(v []byte, dst []rawBlock) (blocks []rawBlock, isString, ok bool) {
	if v == nil {
		return readBlocks(nil, dst)
	}
	return readBlocks(&jsonCursor{b: v}, dst)
}

// readBlock reads the block at c, checking the type of every member
// msgBlock decodes, of whatever block type: encoding/json refuses a wrong
// type in a member the translation then drops.
func readBlock(c *jsonCursor) (b rawBlock, ok bool) {
	if c.peek() != '{' {
		return b, false
	}
	var seen uint32
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return b, false
		}
		if string(key) == "source" {
			if !firstTime(&seen, 1<<7) {
				return b, false
			}
			if c.peek() == 'n' {
				c.value()
				continue
			}
			b.hasSource = true
			if b.source, ok = readSource(c); !ok {
				return b, false
			}
			continue
		}
		mv := c.value()
		var bit uint32
		ok := true
		switch string(key) {
		case "type":
			bit = 1 << 0
			b.typ, ok = stringOrNull(mv)
		case "text":
			bit = 1 << 1
			b.text, ok = stringOrNull(mv)
		case "title":
			bit = 1 << 2
			b.title, ok = stringOrNull(mv)
		case "id":
			bit = 1 << 3
			b.id, ok = stringOrNull(mv)
		case "name":
			bit = 1 << 4
			b.name, ok = stringOrNull(mv)
		case "tool_use_id":
			bit = 1 << 5
			b.toolUseID, ok = stringOrNull(mv)
		case "thinking", "signature", "data":
			// Not read, so a repeat does not matter; only the type.
			if _, ok := stringOrNull(mv); !ok {
				return b, false
			}
			continue
		case "input":
			bit = 1 << 8
			b.input = mv
		case "content":
			bit = 1 << 9
			b.content = mv
		case "is_error":
			bit = 1 << 10
			b.isError, ok = boolOrNull(mv)
		default:
			continue // cache_control, citations, …: dropped
		}
		if !ok || !firstTime(&seen, bit) {
			return b, false
		}
	}
	return b, true
}

// readSource reads the source of an image or a document at c.
func readSource(c *jsonCursor) (s rawSource, ok bool) {
	if c.peek() != '{' {
		return s, false
	}
	var seen uint32
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return s, false
		}
		mv := c.value()
		var bit uint32
		ok := true
		switch string(key) {
		case "type":
			bit = 1 << 0
			s.typ, ok = stringOrNull(mv)
		case "media_type":
			bit = 1 << 1
			s.mediaType, ok = stringOrNull(mv)
		case "data":
			bit = 1 << 2
			s.data, ok = stringOrNull(mv)
		case "url":
			bit = 1 << 3
			s.url, ok = stringOrNull(mv)
		default:
			continue
		}
		if !ok || !firstTime(&seen, bit) {
			return s, false
		}
	}
	return s, true
}

// system writes the top-level system prompt as a system message, with
// no comma before it, if it has any text.
func (w *chatWriter) system(v []byte) (wrote, ok bool) {
	if v == nil {
		return false, true
	}
	if w.blocks, _, ok = readRawBlocks(v, w.blocks); !ok {
		return false, false
	}
	mark := len(w.out)
	w.out = append(w.out, `{"role":"system","content":`...)
	if wrote, ok = w.systemText(); !ok {
		return false, false
	}
	if !wrote {
		w.out = w.out[:mark]
		return false, true
	}
	w.out = append(w.out, '}')
	return true, true
}

// systemText writes the blocks of a system prompt as one string, as
// systemText does, and reports whether it had any text.
func (w *chatWriter) systemText() (wrote, ok bool) {
	w.out = append(w.out, '"')
	for i := range w.blocks {
		b := &w.blocks[i]
		if !litIs(b.typ, "text") {
			return false, false
		}
		wrote = w.joinText(wrote, `\n\n`, b.text)
	}
	w.out = append(w.out, '"')
	return wrote, true
}

// joinText writes text after sep (as encoded) if anything was written before it, as
// the strings.Builder joins of tochat.go do, and reports whether
// anything is written now.
func (w *chatWriter) joinText(wrote bool, sep string, text []byte) bool {
	if isEmptyLit(text) {
		return wrote
	}
	if wrote {
		w.out = append(w.out, sep...)
	}
	w.out = appendLitInner(w.out, text, true)
	return true
}

// message writes the element of messages at c.
func (w *chatWriter) message(c *jsonCursor) bool {
	if c.peek() != '{' {
		return false
	}
	var role []byte
	var isString bool
	var seen uint32
	w.blocks = w.blocks[:0] // content absent: no block
	for key, more := c.member(); more; key, more = c.member() {
		if !plainKey(key) {
			return false
		}
		var ok bool
		switch string(key) {
		case "role":
			if role, ok = stringOrNull(c.value()); !ok || !firstTime(&seen, 1) {
				return false
			}
		case "content":
			if !firstTime(&seen, 2) {
				return false
			}
			if w.blocks, isString, ok = readBlocks(c, w.blocks); !ok {
				return false
			}
		default:
			c.value()
		}
	}
	switch {
	case litIs(role, "user"):
		return w.user(isString)
	case litIs(role, "assistant"):
		return w.assistant()
	case litIs(role, "system"):
		w.comma()
		w.out = append(w.out, `{"role":"system","content":`...)
		if _, ok := w.systemText(); !ok {
			return false
		}
		w.out = append(w.out, '}')
		w.lastTool = false
		return true
	}
	return false
}

// user writes a user turn, its blocks in w.blocks, as appendUser does:
// its tool results as tool messages, then one user message with their
// images and the rest.
func (w *chatWriter) user(isString bool) bool {
	if isString {
		w.comma()
		w.out = append(w.out, `{"role":"user","content":`...)
		w.out = appendLit(w.out, w.blocks[0].text, true)
		w.out = append(w.out, '}')
		w.lastTool = false
		return true
	}
	w.images = w.images[:0]
	for i := range w.blocks {
		if b := &w.blocks[i]; litIs(b.typ, "tool_result") && !w.toolMessage(b) {
			return false
		}
	}
	mark := len(w.out)
	w.comma()
	w.out = append(w.out, `{"role":"user","content":[`...)
	partsStart := len(w.out)
	for i := range w.images {
		w.comma()
		w.imagePart(&w.images[i])
	}
	parts := len(w.images)
	for i := range w.blocks {
		b := &w.blocks[i]
		switch {
		case litIs(b.typ, "tool_result"), litIs(b.typ, "thinking"), litIs(b.typ, "redacted_thinking"):
			continue
		case litIs(b.typ, "text"):
			w.comma()
			w.textPart(b.text)
		case litIs(b.typ, "image"):
			if !validImage(b) {
				return false
			}
			w.comma()
			w.imagePart(b)
		case litIs(b.typ, "document"):
			w.comma()
			if !w.documentPart(b) {
				return false
			}
		default:
			return false
		}
		parts++
	}
	w.lastTool = w.closeUser(mark, partsStart, parts)
	return true
}

// closeUser ends the user message begun at mark: none after tool
// messages if it has no part, string content for a lone text part. It
// returns whether the last message is still a tool message.
func (w *chatWriter) closeUser(mark, partsStart, parts int) bool {
	const emptyText, textPrefix = `{"type":"text"}`, `{"type":"text","text":`
	switch {
	case parts == 0 && w.lastTool:
		w.out = w.out[:mark] // a turn of tool results alone
		return true
	case parts == 0:
		w.out = append(w.out[:partsStart-1], `""}`...)
	case parts == 1 && string(w.out[partsStart:partsStart+len(`{"type":"text"`)]) == `{"type":"text"`:
		// The part's text is encoded as json.Marshal encodes string
		// content: move it over the '['.
		part := w.out[partsStart:]
		n := copy(w.out[partsStart-1:], `""`)
		if len(part) > len(emptyText) {
			n = copy(w.out[partsStart-1:], part[len(textPrefix):len(part)-1])
		}
		w.out = append(w.out[:partsStart-1+n], '}')
	default:
		w.out = append(w.out, `]}`...)
	}
	return false
}

// textPart writes a text content part; an empty text is left out, as
// chatPart's omitempty does.
func (w *chatWriter) textPart(text []byte) {
	w.out = append(w.out, `{"type":"text"`...)
	if !isEmptyLit(text) {
		w.out = append(w.out, `,"text":`...)
		w.out = appendLit(w.out, text, true)
	}
	w.out = append(w.out, '}')
}

// validImage checks an image block as imagePart does.
func validImage(b *rawBlock) bool {
	s := &b.source
	switch {
	case !b.hasSource:
		return false
	case litIs(s.typ, "base64"):
		return !isEmptyLit(s.mediaType) && !isEmptyLit(s.data)
	case litIs(s.typ, "url"):
		return !isEmptyLit(s.url)
	}
	return false
}

// imagePart writes a checked image block as an image_url part.
func (w *chatWriter) imagePart(b *rawBlock) {
	s := &b.source
	w.out = append(w.out, `{"type":"image_url","image_url":{"url":`...)
	if litIs(s.typ, "url") {
		w.out = appendLit(w.out, s.url, true)
	} else {
		w.out = append(w.out, `"data:`...)
		w.out = appendLitInner(w.out, s.mediaType, true)
		w.out = append(w.out, `;base64,`...)
		w.out = appendLitInner(w.out, s.data, true)
		w.out = append(w.out, '"')
	}
	w.out = append(w.out, `}}`...)
}

// documentPart writes a document block as documentPart does: a PDF as a
// file part, a text document as a text part.
func (w *chatWriter) documentPart(b *rawBlock) bool {
	s := &b.source
	switch {
	case !b.hasSource:
		return false
	case litIs(s.typ, "base64") && litIs(s.mediaType, "application/pdf"):
		w.out = append(w.out, `{"type":"file","file":{"filename":`...)
		if isEmptyLit(b.title) {
			w.out = append(w.out, `"document.pdf"`...)
		} else {
			w.out = appendLit(w.out, b.title, true)
		}
		w.out = append(w.out, `,"file_data":"data:application/pdf;base64,`...)
		w.out = appendLitInner(w.out, s.data, true)
		w.out = append(w.out, `"}}`...)
		return true
	case litIs(s.typ, "text"):
		w.textPart(s.data)
		return true
	}
	return false
}

// toolMessage writes a tool_result block as a tool message, as
// toolResult does, and keeps its images for the user message.
func (w *chatWriter) toolMessage(b *rawBlock) bool {
	if isEmptyLit(b.toolUseID) {
		return false
	}
	var ok bool
	if w.inner, _, ok = readRawBlocks(b.content, w.inner); !ok {
		return false
	}
	w.comma()
	w.out = append(w.out, `{"role":"tool","content":"`...)
	if b.isError {
		w.out = append(w.out, "Error: "...)
	}
	n := 0
	for i := range w.inner {
		c := &w.inner[i]
		switch {
		case litIs(c.typ, "text"):
			w.sepLine(n)
			w.out = appendLitInner(w.out, c.text, true)
			n++
		case litIs(c.typ, "image"):
			if !validImage(c) {
				return false
			}
			w.images = append(w.images, *c)
		case litIs(c.typ, "document"):
			if !c.hasSource || !litIs(c.source.typ, "text") {
				return false
			}
			w.sepLine(n)
			w.out = appendLitInner(w.out, c.source.data, true)
			n++
		default:
			return false
		}
	}
	w.out = append(w.out, `","tool_call_id":`...)
	w.out = appendLit(w.out, b.toolUseID, false)
	w.out = append(w.out, '}')
	w.lastTool = true
	return true
}

// sepLine writes the newline between the texts of a tool result.
func (w *chatWriter) sepLine(n int) {
	if n > 0 {
		w.out = append(w.out, `\n`...)
	}
}

// assistant writes an assistant turn, its blocks in w.blocks, as
// appendAssistant does: text as string content, tool_use blocks as
// tool_calls, thinking dropped.
func (w *chatWriter) assistant() bool {
	calls := false
	for i := range w.blocks {
		b := &w.blocks[i]
		switch {
		case litIs(b.typ, "text"), litIs(b.typ, "thinking"), litIs(b.typ, "redacted_thinking"):
		case litIs(b.typ, "tool_use"):
			if isEmptyLit(b.id) || isEmptyLit(b.name) {
				return false
			}
			calls = true
		default:
			return false
		}
	}
	w.comma()
	w.out = append(w.out, `{"role":"assistant","content":`...)
	textStart := len(w.out)
	w.out = append(w.out, '"')
	wrote := false
	for i := range w.blocks {
		if b := &w.blocks[i]; litIs(b.typ, "text") {
			wrote = w.joinText(wrote, `\n\n`, b.text)
		}
	}
	switch {
	case wrote:
		w.out = append(w.out, '"')
	case calls:
		w.out = append(w.out[:textStart], "null"...)
	default:
		w.out = append(w.out[:textStart], `""`...)
	}
	if calls {
		w.toolCalls()
	}
	w.out = append(w.out, '}')
	w.lastTool = false
	return true
}

// toolCalls writes the checked tool_use blocks of w.blocks as
// tool_calls.
func (w *chatWriter) toolCalls() {
	w.out = append(w.out, `,"tool_calls":[`...)
	for i := range w.blocks {
		b := &w.blocks[i]
		if !litIs(b.typ, "tool_use") {
			continue
		}
		w.comma()
		w.out = append(w.out, `{"id":`...)
		w.out = appendLit(w.out, b.id, false)
		w.out = append(w.out, `,"type":"function","function":{"name":`...)
		w.out = appendLit(w.out, b.name, false)
		w.out = append(w.out, `,"arguments":`...)
		if b.input == nil || b.input[0] == 'n' {
			w.out = append(w.out, `"{}"`...)
		} else {
			w.out = appendCompactAsString(w.out, b.input)
		}
		w.out = append(w.out, `}}`...)
	}
	w.out = append(w.out, ']')
}
