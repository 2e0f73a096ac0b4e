package translate

import "github.com/go-llm-proxy/llmproxy/internal/jsonscan"

// A JSON walk that checks syntax as it goes, for scanChunk: it accepts
// only what encoding/json.Valid accepts (FuzzScanChunk compares them),
// so that a chunk it reads is one encoding/json would have read too.
// It may turn down some valid JSON (a deeply nested value it does not
// read), which scanChunk then leaves to encoding/json.

// chunkMaxNesting is encoding/json's limit on nested arrays and objects.
const chunkMaxNesting = 10000

// chunkObject walks the members of a JSON object.
type chunkObject struct {
	b     []byte
	i     int  // where the next member, or after next its value, starts; -1 once the JSON proved invalid
	depth int  // the containers open, this one included
	after bool // a member was read: a comma or the closing brace comes next
}

// openChunkObject starts walking the object at b[i] (i < len(b)), inside
// depth containers, or returns ok false when the value there is not an
// object.
func openChunkObject(b []byte, i, depth int) (chunkObject, bool) {
	if i >= len(b) || b[i] != '{' {
		return chunkObject{}, false
	}
	return chunkObject{b: b, i: i + 1, depth: depth + 1}, true
}

// next reads up to the next member's value, leaving o.i there for the
// caller to read it and set o.i after it. It returns the member's name as
// written, without its quotes, and whether the name is plain (ASCII
// without escapes); more is false after the closing brace (o.i after it)
// or when the JSON is invalid (o.i -1).
func (o *chunkObject) next() (key []byte, plain, more bool) {
	b, i := o.b, o.i
	if i < 0 {
		return nil, false, false
	}
	i = jsonscan.SkipSpace(b, i)
	if i < len(b) && b[i] == '}' {
		o.i = i + 1
		return nil, false, false
	}
	if o.after {
		if i >= len(b) || b[i] != ',' {
			o.i = -1
			return nil, false, false
		}
		i = jsonscan.SkipSpace(b, i+1)
	}
	o.after = true
	if i >= len(b) || b[i] != '"' {
		o.i = -1
		return nil, false, false
	}
	end, plain := chunkStringEnd(b, i)
	if end < 0 {
		o.i = -1
		return nil, false, false
	}
	key = b[i+1 : end-1]
	i = jsonscan.SkipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		o.i = -1
		return nil, false, false
	}
	i = jsonscan.SkipSpace(b, i+1)
	if i >= len(b) {
		o.i = -1
		return nil, false, false
	}
	o.i = i
	return key, plain, true
}

// raw checks the value at o.i and returns it, moving past it; ok is
// false (and o.i -1) when it is invalid.
func (o *chunkObject) raw() (raw []byte, ok bool) {
	start := o.i
	o.i = chunkValueEnd(o.b, start, o.depth)
	if o.i < 0 {
		return nil, false
	}
	return o.b[start:o.i], true
}

// chunkArray walks the elements of a JSON array.
type chunkArray struct {
	b     []byte
	i     int // where the next element starts; -1 once the JSON proved invalid
	depth int
	after bool // an element was read: a comma or the closing bracket comes next
}

// openChunkArray starts walking the array at b[i] (i < len(b)), inside depth
// containers, or returns ok false when the value there is not an array.
func openChunkArray(b []byte, i, depth int) (chunkArray, bool) {
	if b[i] != '[' {
		return chunkArray{}, false
	}
	return chunkArray{b: b, i: i + 1, depth: depth + 1}, true
}

// next moves a.i to the next element, for the caller to read it and set
// a.i after it (or to -1 if it is invalid); it returns false after the
// closing bracket (a.i after it) or when the JSON is invalid (a.i -1).
func (a *chunkArray) next() bool {
	b, i := a.b, a.i
	if i < 0 {
		return false
	}
	i = jsonscan.SkipSpace(b, i)
	if i < len(b) && b[i] == ']' {
		a.i = i + 1
		return false
	}
	if a.after {
		if i >= len(b) || b[i] != ',' {
			a.i = -1
			return false
		}
		i = jsonscan.SkipSpace(b, i+1)
	}
	a.after = true
	if i >= len(b) || b[i] == ']' {
		a.i = -1
		return false
	}
	a.i = i
	return true
}

// chunkValueEnd returns the index after the valid JSON value at b[i],
// inside depth containers, or -1.
func chunkValueEnd(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := chunkStringEnd(b, i)
		return end
	case '{', '[':
		// Rare in the members read or skipped: checked apart. A value of
		// n bytes nests at most n/2 deep.
		end := jsonscan.SkipValue(b, i)
		if depth+(end-i)/2 > chunkMaxNesting || !jsonscan.Valid(b[i:end]) {
			return -1
		}
		return end
	case 't':
		return jsonscan.LiteralEnd(b, i, "true")
	case 'f':
		return jsonscan.LiteralEnd(b, i, "false")
	case 'n':
		return jsonscan.LiteralEnd(b, i, "null")
	}
	return jsonscan.NumberEnd(b, i)
}

// Classes of bytes in a JSON string, for chunkStringEnd.
const (
	chunkStrPlain   = iota // printable ASCII but the quote and the backslash
	chunkStrQuote          // the closing quote
	chunkStrEscape         // a backslash
	chunkStrControl        // a control character: invalid
	chunkStrHigh           // a byte of a non-ASCII character
)

// chunkStrClass is each byte's class: one table look-up per byte keeps the
// loop over the plain ones, nearly all of them, tight.
var chunkStrClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c < 0x20:
			t[c] = chunkStrControl
		case c == '"':
			t[c] = chunkStrQuote
		case c == '\\':
			t[c] = chunkStrEscape
		case c >= 0x80:
			t[c] = chunkStrHigh
		}
	}
	return t
}()

// chunkStringEnd returns the index after the valid JSON string at b[i] ==
// '"', or -1, and whether it is plain: ASCII without escapes. Like
// encoding/json it does not check UTF-8.
func chunkStringEnd(b []byte, i int) (end int, plain bool) {
	plain = true
	i++
	for {
		for i < len(b) && chunkStrClass[b[i]] == chunkStrPlain {
			i++
		}
		if i >= len(b) {
			return -1, false
		}
		switch chunkStrClass[b[i]] {
		case chunkStrQuote:
			return i + 1, plain
		case chunkStrHigh:
			plain = false
			i++
		case chunkStrEscape:
			plain = false
			if i = chunkEscapeEnd(b, i); i < 0 {
				return -1, false
			}
		default:
			return -1, false
		}
	}
}

// chunkEscapeEnd returns the index after the valid escape at b[i] == '\\',
// or -1.
func chunkEscapeEnd(b []byte, i int) int {
	if i+1 >= len(b) {
		return -1
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2
	case 'u':
		if i+6 > len(b) {
			return -1
		}
		for _, h := range b[i+2 : i+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return -1
			}
		}
		return i + 6
	}
	return -1
}
