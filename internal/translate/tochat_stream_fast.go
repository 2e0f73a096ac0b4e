package translate

import (
	"unicode/utf8"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

// scanChunk reads a chat.completion.chunk into c without decoding it:
// what json.Unmarshal would give a zeroed streamChunk, except that c's raw
// fields are slices of data (so they are valid only as long as data is)
// and absent ones are nil. ChatStreamToMessages and ChatStreamToResponses
// read every upstream chunk with it: encoding/json cost them about 5 µs
// and 9 allocations per event, most of it finding the few members they
// read among the ones they don't.
//
// It gives up with ok false, leaving the chunk to encoding/json, whenever
// data is not valid JSON or encoding/json would read it in its own way
// or refuse it: a member the translation reads written twice, in another
// case or with escapes in its name (encoding/json matches names without
// regard to case, Unicode folding included), or a value of another type
// than expected (a choice that is not an object, an index that is not a
// small non-negative integer). FuzzScanChunk compares the two readings.
func scanChunk(data []byte, c *streamChunk) (ok bool) {
	if !jsonscan.Valid(data) {
		return false
	}
	o, ok := openObject(data, jsonscan.SkipSpace(data, 0))
	if !ok {
		return false // null, or another type: encoding/json's to judge
	}
	c.ID, c.Usage, c.Choices = nil, nil, c.Choices[:0]
	var seen uint8
	for {
		key, more := o.next()
		if !more {
			return true
		}
		n, ok := memberOf(key, chunkNames[:], &seen)
		switch {
		case !ok:
			return false
		case n == 0:
			c.ID = o.raw()
		case n == 1:
			if o.i, ok = scanChoices(data, o.i, c); !ok {
				return false
			}
		case n == 2:
			c.Usage = o.raw()
		default:
			o.raw()
		}
	}
}

// The members of each object the translation reads, in the order
// memberOf numbers them.
var (
	chunkNames    = [...]string{"id", "choices", "usage"}
	choiceNames   = [...]string{"index", "delta", "finish_reason"}
	deltaNames    = [...]string{"content", "refusal", "tool_calls"}
	toolCallNames = [...]string{"index", "id", "function"}
	functionNames = [...]string{"name", "arguments"}
)

// memberOf returns the index in names of key (a member's name as
// written), -1 for a member the translation ignores, or ok false when
// encoding/json might read key otherwise: escaped or non-ASCII (it
// unescapes names and folds Unicode case: "ſ" matches "s"), a name in
// another case, or one already met (bit n of seen).
func memberOf(key []byte, names []string, seen *uint8) (n int, ok bool) {
	for _, c := range key {
		if c == '\\' || c >= utf8.RuneSelf {
			return -1, false
		}
	}
	for n, name := range names {
		if len(key) != len(name) {
			continue
		}
		if string(key) == name {
			if *seen&(1<<n) != 0 {
				return -1, false
			}
			*seen |= 1 << n
			return n, true
		}
		if equalFoldASCII(key, name) {
			return -1, false
		}
	}
	return -1, true
}

// equalFoldASCII reports whether the ASCII key and name are equal
// without regard to case.
func equalFoldASCII(key []byte, name string) bool {
	for i, c := range key {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if d := name[i]; 'A' <= d && d <= 'Z' {
			if c != d+'a'-'A' {
				return false
			}
		} else if c != d {
			return false
		}
	}
	return true
}

// The scanners below read the value at b[i] into their last argument
// and return the index after it, or ok false to leave the chunk to
// encoding/json. Each walks its value once: the bytes of a text delta
// are read by jsonscan.Valid and then once more, when its member is
// skipped.

// scanChoices reads the choices array (or null) into c.Choices.
func scanChoices(b []byte, i int, c *streamChunk) (int, bool) {
	if b[i] == 'n' {
		return i + len("null"), true // none, as encoding/json leaves it
	}
	a, ok := openArray(b, i)
	if !ok {
		return 0, false
	}
	for a.next() {
		if a.i, ok = scanChoice(b, a.i, nextChoice(c)); !ok {
			return 0, false
		}
	}
	return a.i, true
}

// nextChoice appends a zero choice to c.Choices, keeping the capacity of
// the tool calls of the one it reuses.
func nextChoice(c *streamChunk) *streamChoice {
	n := len(c.Choices)
	if n < cap(c.Choices) {
		c.Choices = c.Choices[:n+1]
		calls := c.Choices[n].Delta.ToolCalls[:0]
		c.Choices[n] = streamChoice{}
		c.Choices[n].Delta.ToolCalls = calls
	} else {
		c.Choices = append(c.Choices, streamChoice{})
	}
	return &c.Choices[n]
}

func scanChoice(b []byte, i int, ch *streamChoice) (int, bool) {
	o, ok := openObject(b, i)
	if !ok {
		return 0, false
	}
	var seen uint8
	for {
		key, more := o.next()
		if !more {
			return o.i, true
		}
		n, ok := memberOf(key, choiceNames[:], &seen)
		switch {
		case !ok:
			return 0, false
		case n == 0:
			if ch.Index, ok = scanIndex(o.raw()); !ok {
				return 0, false
			}
		case n == 1:
			if o.i, ok = scanDelta(b, o.i, &ch.Delta); !ok {
				return 0, false
			}
		case n == 2:
			ch.FinishReason = o.raw()
		default:
			o.raw()
		}
	}
}

func scanDelta(b []byte, i int, d *streamDelta) (int, bool) {
	if b[i] == 'n' {
		return i + len("null"), true
	}
	o, ok := openObject(b, i)
	if !ok {
		return 0, false
	}
	var seen uint8
	for {
		key, more := o.next()
		if !more {
			return o.i, true
		}
		n, ok := memberOf(key, deltaNames[:], &seen)
		switch {
		case !ok:
			return 0, false
		case n == 0:
			d.Content = o.raw()
		case n == 1:
			d.Refusal = o.raw()
		case n == 2:
			if o.i, ok = scanToolCalls(b, o.i, d); !ok {
				return 0, false
			}
		default:
			o.raw()
		}
	}
}

func scanToolCalls(b []byte, i int, d *streamDelta) (int, bool) {
	if b[i] == 'n' {
		return i + len("null"), true
	}
	a, ok := openArray(b, i)
	if !ok {
		return 0, false
	}
	for a.next() {
		d.ToolCalls = append(d.ToolCalls, streamToolCall{})
		if a.i, ok = scanToolCall(b, a.i, &d.ToolCalls[len(d.ToolCalls)-1]); !ok {
			return 0, false
		}
	}
	return a.i, true
}

func scanToolCall(b []byte, i int, tc *streamToolCall) (int, bool) {
	o, ok := openObject(b, i)
	if !ok {
		return 0, false
	}
	var seen uint8
	for {
		key, more := o.next()
		if !more {
			return o.i, true
		}
		n, ok := memberOf(key, toolCallNames[:], &seen)
		switch {
		case !ok:
			return 0, false
		case n == 0:
			if tc.Index, ok = scanIndex(o.raw()); !ok {
				return 0, false
			}
		case n == 1:
			tc.ID = o.raw()
		case n == 2:
			if o.i, ok = scanFunction(b, o.i, tc); !ok {
				return 0, false
			}
		default:
			o.raw()
		}
	}
}

func scanFunction(b []byte, i int, tc *streamToolCall) (int, bool) {
	if b[i] == 'n' {
		return i + len("null"), true
	}
	o, ok := openObject(b, i)
	if !ok {
		return 0, false
	}
	var seen uint8
	for {
		key, more := o.next()
		if !more {
			return o.i, true
		}
		n, ok := memberOf(key, functionNames[:], &seen)
		switch {
		case !ok:
			return 0, false
		case n == 0:
			tc.Function.Name = o.raw()
		case n == 1:
			tc.Function.Arguments = o.raw()
		default:
			o.raw()
		}
	}
}

// scanIndex reads an int member: null leaves it 0, as encoding/json
// does; anything but a small non-negative integer is left to it.
func scanIndex(raw []byte) (int, bool) {
	if raw[0] == 'n' {
		return 0, true
	}
	n, ok := jsonscan.Count(raw)
	return int(n), ok
}

// object walks the members of an object in valid JSON.
type object struct {
	b []byte
	i int // where the next member, or its value, starts
}

// openObject starts walking the object at b[i], or returns ok false
// when the value there is not an object.
func openObject(b []byte, i int) (object, bool) {
	if b[i] != '{' {
		return object{}, false
	}
	return object{b, i + 1}, true
}

// next returns the next member's name (as written, without its quotes),
// leaving o.i at its value, which the caller must read or skip; ok is
// false after the last member, with o.i after the closing brace.
func (o *object) next() (key []byte, ok bool) {
	b, i := o.b, jsonscan.SkipSpace(o.b, o.i)
	if i < len(b) && b[i] == ',' {
		i = jsonscan.SkipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		o.i = min(i+1, len(b)) // after the closing brace
		return nil, false
	}
	ks := i
	i = jsonscan.SkipString(b, i)
	key = b[ks+1 : max(ks+1, i-1)]
	i = jsonscan.SkipSpace(b, i) // at the colon
	o.i = min(jsonscan.SkipSpace(b, i+1), len(b)-1)
	return key, true
}

// raw returns the value at o.i and moves past it.
func (o *object) raw() []byte {
	start := o.i
	o.i = jsonscan.SkipValue(o.b, start)
	return o.b[start:o.i]
}

// array walks the elements of an array in valid JSON.
type array struct {
	b []byte
	i int // where the next element starts
}

// openArray starts walking the array at b[i], or returns ok false when
// the value there is not an array.
func openArray(b []byte, i int) (array, bool) {
	if b[i] != '[' {
		return array{}, false
	}
	return array{b, i + 1}, true
}

// next moves a.i to the next element, which the caller must read and
// move past; it returns false after the last, with a.i after the
// closing bracket.
func (a *array) next() bool {
	b, i := a.b, jsonscan.SkipSpace(a.b, a.i)
	if i < len(b) && b[i] == ',' {
		i = jsonscan.SkipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == ']' {
		a.i = min(i+1, len(b))
		return false
	}
	a.i = i
	return true
}
