// Package jsonscan reads JSON without decoding it: Valid checks that bytes
// are one JSON value, and the scanners find values in valid JSON by their
// byte ranges, so that the gateway can read and rewrite a few top-level
// fields of a body or an event without decoding and re-encoding the rest.
//
// Valid does what encoding/json.Valid does, several times faster: the gateway checks every
// request body, every answer and every streamed event, and json.Valid's
// byte-at-a-time state machine was 8% of its CPU under load.
//
// It accepts exactly what json.Valid accepts (FuzzValid compares them),
// including its nesting limit, and like it does not check UTF-8. It does
// not recurse, so deep nesting costs no goroutine stack.
package jsonscan

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// Valid reports whether b is exactly one JSON value, with optional
// whitespace around it.
func Valid(b []byte) bool {
	var arr [32]byte
	stack := arr[:0] // '{' or '[' for each open container
	i := SkipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; c {
		case '{', '[':
			end := byte('}')
			if c == '[' {
				end = ']'
			}
			i = SkipSpace(b, i+1)
			if i < len(b) && b[i] == end {
				i++
				break // an empty container is a whole value
			}
			if len(stack) >= maxDepth {
				return false
			}
			stack = append(stack, c)
			if c == '{' {
				if i = member(b, i); i < 0 {
					return false
				}
			}
			continue // its first value
		case '"':
			if i = str(b, i); i < 0 {
				return false
			}
		case 't':
			if i = LiteralEnd(b, i, "true"); i < 0 {
				return false
			}
		case 'f':
			if i = LiteralEnd(b, i, "false"); i < 0 {
				return false
			}
		case 'n':
			if i = LiteralEnd(b, i, "null"); i < 0 {
				return false
			}
		default:
			if i = NumberEnd(b, i); i < 0 {
				return false
			}
		}
		// A value ended at i: close containers until one wants another.
		for {
			i = SkipSpace(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i = SkipSpace(b, i+1)
				if top == '{' {
					if i = member(b, i); i < 0 {
						return false
					}
				}
				break // the next value
			}
			if (top == '{' && b[i] != '}') || (top == '[' && b[i] != ']') {
				return false
			}
			stack = stack[:len(stack)-1]
			i++
		}
	}
}

// member reads `"key" :` and the space after it, returning where the
// member's value starts, or -1.
func member(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = str(b, i); i < 0 {
		return -1
	}
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return SkipSpace(b, i+1)
}

// str reads the string starting at b[i] == '"' and returns the index after
// its closing quote, or -1.
func str(b []byte, i int) int {
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// LiteralEnd returns the index after lit (true, false or null) at b[i], or
// -1 when b does not hold it there.
func LiteralEnd(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// NumberEnd reads the JSON number
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i] and returns the
// index after it, or -1.
func NumberEnd(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
