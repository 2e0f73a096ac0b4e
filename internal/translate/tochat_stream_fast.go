package translate

import "github.com/go-llm-proxy/llmproxy/internal/jsonscan"

// scanChunk reads a chat.completion.chunk into c without decoding it:
// what json.Unmarshal would give a zeroed streamChunk, except that c's raw
// fields are slices of data (so they are valid only as long as data is)
// and absent ones are nil. ChatStreamToMessages and ChatStreamToResponses
// read every upstream chunk with it: encoding/json cost them about 5 µs
// and 9 allocations per event, most of it finding the few members they
// read among the ones they don't.
//
// It reads data once, checking its syntax as it goes (jsonscan.Valid
// first and a walk after it took twice as long), and gives up with ok
// false, leaving the chunk to encoding/json, whenever data is not valid
// JSON or encoding/json would read it in its own way or refuse it: a member the translation reads written twice, in another
// case or with escapes in its name (encoding/json matches names without
// regard to case, Unicode folding included), or a value of another type
// than expected (a choice that is not an object, an index that is not a
// small non-negative integer). FuzzScanChunk compares the two readings.
func scanChunk(data []byte, c *streamChunk) (ok bool) {
	o, ok := openChunkObject(data, jsonscan.SkipSpace(data, 0), 0)
	if !ok {
		return false // null, or another type: encoding/json's to judge
	}
	c.ID, c.Usage, c.Choices = nil, nil, c.Choices[:0]
	var seen uint8
	for {
		key, plain, more := o.next()
		if !more {
			return o.i >= 0 && jsonscan.SkipSpace(data, o.i) == len(data)
		}
		switch chunkMember(key, plain, chunkMembers[:], &seen) {
		case oddChunkMember:
			return false
		case 0:
			c.ID, ok = o.raw()
		case 1:
			o.i = scanChunkChoices(data, o.i, o.depth, c)
			ok = o.i >= 0
		case 2:
			c.Usage, ok = o.raw()
		default:
			_, ok = o.raw()
		}
		if !ok {
			return false
		}
	}
}

// The members of each object the translation reads, in the order
// chunkMember numbers them.
var (
	chunkMembers    = [...]string{"id", "choices", "usage"}
	choiceMembers   = [...]string{"index", "delta", "finish_reason"}
	deltaMembers    = [...]string{"content", "refusal", "tool_calls"}
	toolCallMembers = [...]string{"index", "id", "function"}
	functionMembers = [...]string{"name", "arguments"}
)

// What chunkMember says of a member that is none of names.
const (
	otherChunkMember = -1 // one the translation ignores
	oddChunkMember   = -2 // one encoding/json might read otherwise
)

// chunkMember returns the index in names of key (a member's name as
// written; plain if ASCII without escapes), otherChunkMember, or oddChunkMember
// when encoding/json might read key otherwise: escaped or non-ASCII (it
// unescapes names and folds Unicode case: "ſ" matches "s"), a name in
// another case, or one already met (bit n of seen).
func chunkMember(key []byte, plain bool, names []string, seen *uint8) int {
	if !plain {
		return oddChunkMember
	}
	for n, name := range names {
		if len(key) != len(name) {
			continue
		}
		if string(key) == name {
			if *seen&(1<<n) != 0 {
				return oddChunkMember
			}
			*seen |= 1 << n
			return n
		}
		if chunkNameFold(key, name) {
			return oddChunkMember
		}
	}
	return otherChunkMember
}

// chunkNameFold reports whether the ASCII key and name are equal
// without regard to case.
func chunkNameFold(key []byte, name string) bool {
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

// The scanners below read the value at b[i], inside depth containers,
// into their last argument and return the index after it, or -1 to
// leave the chunk to encoding/json.

// scanChunkChoices reads the choices array (or null) into c.Choices.
func scanChunkChoices(b []byte, i, depth int, c *streamChunk) int {
	if b[i] == 'n' {
		return jsonscan.LiteralEnd(b, i, "null") // none, as encoding/json leaves it
	}
	a, ok := openChunkArray(b, i, depth)
	if !ok {
		return -1
	}
	for a.next() {
		a.i = scanChunkChoice(b, a.i, a.depth, nextChunkChoice(c))
	}
	return a.i
}

// nextChunkChoice appends a zero choice to c.Choices, keeping the capacity of
// the tool calls of the one it reuses.
func nextChunkChoice(c *streamChunk) *streamChoice {
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

func scanChunkChoice(b []byte, i, depth int, ch *streamChoice) int {
	o, ok := openChunkObject(b, i, depth)
	if !ok {
		return -1
	}
	var seen uint8
	for {
		key, plain, more := o.next()
		if !more {
			return o.i
		}
		var raw []byte
		switch chunkMember(key, plain, choiceMembers[:], &seen) {
		case oddChunkMember:
			return -1
		case 0:
			if raw, ok = o.raw(); ok {
				ch.Index, ok = scanChunkIndex(raw)
			}
		case 1:
			o.i = scanChunkDelta(b, o.i, o.depth, &ch.Delta)
			ok = o.i >= 0
		case 2:
			ch.FinishReason, ok = o.raw()
		default:
			_, ok = o.raw()
		}
		if !ok {
			return -1
		}
	}
}

func scanChunkDelta(b []byte, i, depth int, d *streamDelta) int {
	if b[i] == 'n' {
		return jsonscan.LiteralEnd(b, i, "null")
	}
	o, ok := openChunkObject(b, i, depth)
	if !ok {
		return -1
	}
	var seen uint8
	for {
		key, plain, more := o.next()
		if !more {
			return o.i
		}
		switch chunkMember(key, plain, deltaMembers[:], &seen) {
		case oddChunkMember:
			return -1
		case 0:
			d.Content, ok = o.raw()
		case 1:
			d.Refusal, ok = o.raw()
		case 2:
			o.i = scanChunkToolCalls(b, o.i, o.depth, d)
			ok = o.i >= 0
		default:
			_, ok = o.raw()
		}
		if !ok {
			return -1
		}
	}
}

func scanChunkToolCalls(b []byte, i, depth int, d *streamDelta) int {
	if b[i] == 'n' {
		return jsonscan.LiteralEnd(b, i, "null")
	}
	a, ok := openChunkArray(b, i, depth)
	if !ok {
		return -1
	}
	for a.next() {
		d.ToolCalls = append(d.ToolCalls, streamToolCall{})
		a.i = scanChunkToolCall(b, a.i, a.depth, &d.ToolCalls[len(d.ToolCalls)-1])
	}
	return a.i
}

func scanChunkToolCall(b []byte, i, depth int, tc *streamToolCall) int {
	o, ok := openChunkObject(b, i, depth)
	if !ok {
		return -1
	}
	var seen uint8
	for {
		key, plain, more := o.next()
		if !more {
			return o.i
		}
		var raw []byte
		switch chunkMember(key, plain, toolCallMembers[:], &seen) {
		case oddChunkMember:
			return -1
		case 0:
			if raw, ok = o.raw(); ok {
				tc.Index, ok = scanChunkIndex(raw)
			}
		case 1:
			tc.ID, ok = o.raw()
		case 2:
			o.i = scanChunkFunction(b, o.i, o.depth, tc)
			ok = o.i >= 0
		default:
			_, ok = o.raw()
		}
		if !ok {
			return -1
		}
	}
}

func scanChunkFunction(b []byte, i, depth int, tc *streamToolCall) int {
	if b[i] == 'n' {
		return jsonscan.LiteralEnd(b, i, "null")
	}
	o, ok := openChunkObject(b, i, depth)
	if !ok {
		return -1
	}
	var seen uint8
	for {
		key, plain, more := o.next()
		if !more {
			return o.i
		}
		switch chunkMember(key, plain, functionMembers[:], &seen) {
		case oddChunkMember:
			return -1
		case 0:
			tc.Function.Name, ok = o.raw()
		case 1:
			tc.Function.Arguments, ok = o.raw()
		default:
			_, ok = o.raw()
		}
		if !ok {
			return -1
		}
	}
}

// scanChunkIndex reads an int member: null leaves it 0, as encoding/json
// does; anything but a small non-negative integer is left to it.
func scanChunkIndex(raw []byte) (int, bool) {
	if raw[0] == 'n' {
		return 0, true
	}
	n, ok := jsonscan.Count(raw)
	return int(n), ok
}
