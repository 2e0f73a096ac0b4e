package translate

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// The helpers below let the fast MessagesToChat read valid JSON (checked
// with jsonscan.Valid first) by byte ranges and write exactly the bytes
// encoding/json would have written for the values it would have decoded:
// appendLitInner re-encodes a string literal as json.Unmarshal followed by
// json.Marshal would, without the string in between.

const lowerHex = "0123456789abcdef"

// jsonCursor reads valid JSON front to back, so that a value read
// member by member is not also skipped whole first: a function that
// reads a value (with value, or member and element for the inside
// of an object or array) leaves the cursor after it.
type jsonCursor struct {
	b []byte
	i int
}

// peek returns the first byte of the value at the cursor.
func (c *jsonCursor) peek() byte {
	c.i = jsonscan.SkipSpace(c.b, c.i)
	if c.i >= len(c.b) {
		return 0
	}
	return c.b[c.i]
}

// value returns the raw value at the cursor and moves past it.
func (c *jsonCursor) value() []byte {
	start := jsonscan.SkipSpace(c.b, c.i)
	if start >= len(c.b) {
		return nil
	}
	c.i = scanValue(c.b, start)
	return c.b[start:c.i]
}

// member moves to the next member of the object at the cursor (or whose
// previous member's value it has read) and returns its key, as written,
// with the cursor at the value, which the caller must read. After the
// last member it returns ok false, past the closing brace.
func (c *jsonCursor) member() (key []byte, ok bool) {
	b := c.b
	i := jsonscan.SkipSpace(b, c.i)
	if i < len(b) && (b[i] == '{' || b[i] == ',') {
		i = jsonscan.SkipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		c.i = min(i+1, len(b)) // past '}'
		return nil, false
	}
	ke := scanString(b, i)
	key = b[i+1 : max(ke-1, i+1)]
	i = jsonscan.SkipSpace(b, ke)
	c.i = jsonscan.SkipSpace(b, i+1) // past ':'
	return key, true
}

// element moves to the next element of the array at the cursor (or
// whose previous element it has read), which the caller must read.
// After the last element it returns false, past the closing bracket.
func (c *jsonCursor) element() bool {
	b := c.b
	i := jsonscan.SkipSpace(b, c.i)
	if i < len(b) && (b[i] == '[' || b[i] == ',') {
		i = jsonscan.SkipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == ']' {
		c.i = min(i+1, len(b))
		return false
	}
	c.i = i
	return true
}

// scanValue is jsonscan.SkipValue with scanString: the values skipped
// are mostly long strings (prompts, files).
func scanValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = scanString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	return jsonscan.SkipValue(b, i)
}

// scanString is jsonscan.SkipString by bytes.IndexByte, which looks at
// many bytes at a time: it returns the index after the string starting
// at b[i] == '"' in valid JSON.
func scanString(b []byte, i int) int {
	// Most strings are short (keys, types, ids), too short to pay for a
	// call of IndexByte: look at their first bytes one by one.
	for j := i + 1; j < min(len(b), i+24); j++ {
		if b[j] == '"' {
			return j + 1
		}
		if b[j] == '\\' {
			break
		}
	}
	for j := i + 1; j < len(b); {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		q := j + k
		p := q
		for p > i+1 && b[p-1] == '\\' {
			p--
		}
		if (q-p)%2 == 0 {
			return q + 1 // not escaped
		}
		j = q + 1
	}
	return len(b)
}

// plainKey reports whether a member key, as written, is what
// encoding/json would match against field names byte for byte: no escape,
// no upper case (it matches keys case-insensitively), nothing beyond ASCII
// (it folds "ſ" to "s" and the Kelvin sign to "k").
func plainKey(key []byte) bool {
	for _, c := range key {
		if c == '\\' || c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// firstTime marks bit in seen and reports whether it was clear: a key
// given twice is left to encoding/json, which lets the last one win and
// merges objects.
func firstTime(seen *uint32, bit uint32) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// stringOrNull returns a string literal, nil for null, and ok false for
// any other value: what encoding/json accepts for a string field.
func stringOrNull(v []byte) (lit []byte, ok bool) {
	switch v[0] {
	case '"':
		return v, true
	case 'n':
		return nil, true
	}
	return nil, false
}

// boolOrNull reads what encoding/json accepts for a bool field.
func boolOrNull(v []byte) (b, ok bool) {
	switch v[0] {
	case 't':
		return true, true
	case 'f', 'n':
		return false, true
	}
	return false, false
}

// isEmptyLit reports whether a string literal (or nil) decodes to "":
// every escape and every byte decodes to at least one byte.
func isEmptyLit(lit []byte) bool { return len(lit) <= 2 }

// litIs reports whether a string literal is s as written; a literal with
// escapes never is.
func litIs(lit []byte, s string) bool {
	return len(lit) == len(s)+2 && string(lit[1:len(lit)-1]) == s
}

// smallInt reads a JSON integer as encoding/json reads it into an int64,
// for up to 18 digits; ok false for anything else (a fraction, an
// exponent, more digits), which the caller leaves to encoding/json.
func smallInt(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	n, ok := jsonscan.Count(v)
	if neg {
		n = -n
	}
	return n, ok
}

// appendJSONFloat writes f as encoding/json writes a float64.
func appendJSONFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// plainBytes and plainBytesHTML are the bytes appendLitInner copies
// as they are: ASCII but for the backslash, and for <, > and & with
// html. (Valid JSON has no raw quote or control byte inside a string.)
var plainBytes, plainBytesHTML = plainTable(false), plainTable(true)

func plainTable(html bool) (t [256]bool) {
	for c := range utf8.RuneSelf {
		t[c] = c != '\\' && (!html || c != '<' && c != '>' && c != '&')
	}
	return t
}

// appendLit writes the string literal lit (from valid JSON) as
// json.Marshal writes the string json.Unmarshal decodes from it; html
// escapes <, > and & as json.Marshal does and a json.Encoder with
// SetEscapeHTML(false) does not. nil is the empty string.
func appendLit(dst, lit []byte, html bool) []byte {
	dst = append(dst, '"')
	dst = appendLitInner(dst, lit, html)
	return append(dst, '"')
}

// appendLitInner is appendLit without the quotes, to write several
// strings as one (encoding/json's encoding is rune by rune, and decoded
// strings are valid UTF-8, so the encoding of a concatenation is the
// concatenation of the encodings).
func appendLitInner(dst, lit []byte, html bool) []byte {
	if len(lit) < 2 {
		return dst
	}
	s := lit[1 : len(lit)-1]
	plain := &plainBytes
	if html {
		plain = &plainBytesHTML
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c == '\\' && i+1 < len(s) && s[i+1] != 'u' && s[i+1] != '/' {
			i += 2 // " \ b f n r t: written as they came
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			if c != '\\' {
				dst = append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xF])
				i++
			} else if i+1 < len(s) {
				switch e := s[i+1]; e {
				case 'u':
					r, n := decodeEscapedRune(s[i:])
					dst = appendJSONRune(dst, r, html)
					i += n
				default: // '/'
					dst = append(dst, '/')
					i += 2
				}
			} else {
				i++ // not valid JSON; stay in bounds
			}
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = appendJSONRune(dst, r, html) // U+FFFD itself for a bad byte, as json.Unmarshal decodes it
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// decodeEscapedRune decodes the \uXXXX escape (with its low surrogate, if
// a valid pair) at the start of s as json.Unmarshal does: a lone or
// broken surrogate is U+FFFD. It returns the rune and the bytes read.
func decodeEscapedRune(s []byte) (rune, int) {
	r := hex4(s)
	if r < 0 {
		return utf8.RuneError, min(len(s), 2) // not valid JSON; stay in bounds
	}
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if dec := utf16.DecodeRune(r, hex4(s[6:])); dec != utf8.RuneError {
		return dec, 12
	}
	return utf8.RuneError, 6
}

// hex4 reads `\uXXXX` at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendJSONRune writes one decoded rune as encoding/json's string encoder
// does.
func appendJSONRune(dst []byte, r rune, html bool) []byte {
	if r >= utf8.RuneSelf {
		if r == '\u2028' || r == '\u2029' {
			return append(dst, '\\', 'u', '2', '0', '2', lowerHex[r&0xF])
		}
		return utf8.AppendRune(dst, r)
	}
	c := byte(r)
	switch {
	case c == '\\' || c == '"':
		return append(dst, '\\', c)
	case c == '\b':
		return append(dst, '\\', 'b')
	case c == '\f':
		return append(dst, '\\', 'f')
	case c == '\n':
		return append(dst, '\\', 'n')
	case c == '\r':
		return append(dst, '\\', 'r')
	case c == '\t':
		return append(dst, '\\', 't')
	case c < 0x20 || html && (c == '<' || c == '>' || c == '&'):
		return append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xF])
	}
	return append(dst, c)
}

// appendGoString writes a Go string as encoding/json does: invalid UTF-8
// becomes \ufffd.
func appendGoString(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = appendJSONRune(dst, r, html)
		}
		i += size
	}
	return append(dst, '"')
}

// appendCompactValue writes a valid JSON value without insignificant
// whitespace, as encoding/json writes a json.RawMessage: strings are
// copied as they are, escapes and bad UTF-8 and all.
func appendCompactValue(dst, v []byte) []byte {
	start := 0
	for i := 0; i < len(v); {
		switch v[i] {
		case '"':
			i = scanString(v, i)
		case ' ', '\t', '\n', '\r':
			dst = append(dst, v[start:i]...)
			i = jsonscan.SkipSpace(v, i)
			start = i
		default:
			i++
		}
	}
	return append(dst, v[start:]...)
}

// appendCompactAsString writes a valid JSON value, compacted, as a JSON
// string: what json.Compact and then a json.Encoder with
// SetEscapeHTML(false) make of a tool_use input.
func appendCompactAsString(dst, v []byte) []byte {
	dst = append(dst, '"')
	start := 0
	inString := false
	for i := 0; i < len(v); {
		c := v[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(v[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				dst = append(dst, v[start:i]...)
				if size == 1 {
					dst = append(dst, `\ufffd`...) // the encoder's mark for a bad byte
				} else {
					dst = appendJSONRune(dst, r, false)
				}
				start = i + size
			}
			i += size
			continue
		}
		switch {
		case c == '"':
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', '"')
			inString = !inString
			i++
			start = i
		case c == '\\' && i+1 < len(v):
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', '\\')
			if e := v[i+1]; e == '"' || e == '\\' {
				dst = append(dst, '\\', e)
			} else {
				dst = append(dst, e)
			}
			i += 2
			start = i
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			dst = append(dst, v[start:i]...)
			i++
			start = i
		default:
			i++
		}
	}
	dst = append(dst, v[start:]...)
	return append(dst, '"')
}
