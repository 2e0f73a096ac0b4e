package accesslog

import (
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Format is the line format of an Log made by
// NewWriter.
type Format int

const (
	// Text writes the lines slog.TextHandler would: key=value
	// pairs, values quoted only when they need to be.
	Text Format = iota
	// JSON writes the lines slog.JSONHandler would: one JSON
	// object per line.
	JSON
)

// accessLine builds one access-log line as slog's text or JSON handler
// would for a Record with no groups, no source and no ReplaceAttr. The
// keys it is given are plain ASCII words that neither format quotes or
// escapes, so they are written as they are.
type accessLine struct {
	buf  []byte
	json bool
}

// linePool holds accessLines between calls, so that a line costs no
// allocation once the pool is warm.
var linePool = sync.Pool{New: func() any { return &accessLine{buf: make([]byte, 0, 1024)} }}

// maxPooledLine is the largest buffer put back in the pool: a line with a
// huge value (a client's model name, say) should not pin its buffer.
const maxPooledLine = 16 << 10

func newAccessLine(json bool) *accessLine {
	l := linePool.Get().(*accessLine)
	l.buf = l.buf[:0]
	l.json = json
	return l
}

func (l *accessLine) free() {
	if cap(l.buf) <= maxPooledLine {
		linePool.Put(l)
	}
}

// start writes the built-in attributes: time, level and msg.
func (l *accessLine) start(t time.Time, level slog.Level, msg string) {
	if l.json {
		l.buf = append(l.buf, `{"time":`...)
		l.jsonTime(t)
		l.buf = append(l.buf, `,"level":`...)
	} else {
		l.buf = append(l.buf, "time="...)
		l.buf = appendRFC3339Millis(l.buf, t)
		l.buf = append(l.buf, " level="...)
	}
	l.value(level.String())
	l.key("msg")
	l.value(msg)
}

// end closes the line.
func (l *accessLine) end() {
	if l.json {
		l.buf = append(l.buf, '}')
	}
	l.buf = append(l.buf, '\n')
}

// key writes the separator and key of the next attribute.
func (l *accessLine) key(k string) {
	if l.json {
		l.buf = append(l.buf, ',', '"')
		l.buf = append(l.buf, k...)
		l.buf = append(l.buf, '"', ':')
	} else {
		l.buf = append(l.buf, ' ')
		l.buf = append(l.buf, k...)
		l.buf = append(l.buf, '=')
	}
}

func (l *accessLine) string(k, v string) {
	l.key(k)
	l.value(v)
}

func (l *accessLine) int(k string, v int64) {
	l.key(k)
	l.buf = strconv.AppendInt(l.buf, v, 10)
}

func (l *accessLine) bool(k string, v bool) {
	l.key(k)
	l.buf = strconv.AppendBool(l.buf, v)
}

func (l *accessLine) float(k string, v float64) {
	l.key(k)
	if !l.json {
		l.buf = strconv.AppendFloat(l.buf, v, 'g', -1, 64)
		return
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		// encoding/json refuses these, and slog writes its error instead.
		l.value("!ERROR:json: unsupported value: " + strconv.FormatFloat(v, 'g', -1, 64))
		return
	}
	l.buf = appendJSONFloat(l.buf, v)
}

// value writes a string value, quoted as the format wants it.
func (l *accessLine) value(s string) {
	if l.json {
		l.buf = append(l.buf, '"')
		l.buf = appendJSONEscaped(l.buf, s)
		l.buf = append(l.buf, '"')
		return
	}
	if textNeedsQuoting(s) {
		l.buf = strconv.AppendQuote(l.buf, s)
	} else {
		l.buf = append(l.buf, s...)
	}
}

// jsonTime writes t as slog's JSON handler does: RFC 3339 with
// nanoseconds, as time.Time.MarshalJSON, but with an error in front
// rather than no time at all when the year has not four digits.
func (l *accessLine) jsonTime(t time.Time) {
	if y := t.Year(); y < 0 || y >= 10000 {
		l.value("!ERROR:time.Time year outside of range [0,9999]")
	}
	l.buf = append(l.buf, '"')
	l.buf = t.AppendFormat(l.buf, time.RFC3339Nano)
	l.buf = append(l.buf, '"')
}

// appendRFC3339Millis appends t in RFC 3339 with exactly three digits of
// milliseconds, as slog's text handler writes its time: RFC3339Nano is
// the quick layout but trims trailing zeros, so a tenth of a millisecond
// is added to keep four digits, and the fourth is cut.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// appendJSONFloat appends a finite f as encoding/json writes a float64:
// like %g but with ES6's exponent cutoffs and no exponent padding.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// jsonPlain holds true for the bytes that go into a JSON string as they
// are: ASCII but the control characters, '"' and '\\'. (DEL is plain, and
// so are '<', '>' and '&': slog does not escape HTML.)
var jsonPlain = func() (t [256]bool) {
	for b := byte(' '); b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// textPlain holds true for the bytes that slog's text handler writes
// unquoted: jsonPlain's but space and '=', and a backslash too.
var textPlain = func() (t [256]bool) {
	for b := range utf8.RuneSelf {
		t[b] = jsonPlain[b] && b != ' ' && b != '=' || b == '\\'
	}
	return t
}()

// textNeedsQuoting reports whether slog's text handler quotes s: when it
// is empty, or has a space, '=', '"', a control character, invalid UTF-8,
// or a rune that is a space or not printable. A backslash alone does not
// need quotes.
func textNeedsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		b := s[i]
		if textPlain[b] {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			return true
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

const lowerHex = "0123456789abcdef"

// appendJSONEscaped appends s escaped for the inside of a JSON string as
// slog does (encoding/json's rules without HTML escaping): '"', '\\' and
// control characters escaped, invalid UTF-8 as \ufffd, and U+2028 and
// U+2029 escaped for JavaScript's sake.
func appendJSONEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}
