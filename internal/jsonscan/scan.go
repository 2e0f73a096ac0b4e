package jsonscan

import "bytes"

// The scanners below expect valid JSON (check it with Valid first) but
// stay within bounds on any input: on malformed input they return
// nonsense offsets no larger than len(b), never panic.

// SkipSpace returns the index of the first non-whitespace byte at or after
// b[i], or len(b).
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// SkipString returns the index after the string starting at b[i] == '"'.
func SkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return min(i, len(b))
}

// SkipValue returns the index after the JSON value at b[i].
func SkipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = SkipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// Field returns the raw value of the top-level member name of the JSON
// object b (the first, if it repeats), or nil when b is not an object or
// has no such member. name is compared with the member's key as written,
// escapes and all.
func Field(b []byte, name string) []byte {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil
	}
	i++
	for i < len(b) {
		i = SkipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return nil
		}
		ks := i
		i = SkipString(b, i)
		if i-ks < 2 {
			return nil
		}
		key := b[ks+1 : i-1]
		i = SkipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return nil
		}
		i = SkipSpace(b, i+1)
		if i >= len(b) {
			return nil
		}
		end := SkipValue(b, i)
		if string(key) == name {
			return b[i:end]
		}
		i = end
	}
	return nil
}

// Elements calls f with each element of the JSON array arr, in order,
// until f returns false. It does nothing when arr is not an array.
func Elements(arr []byte, f func(i int, elem []byte) bool) {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return
	}
	for n := 0; ; n++ {
		i = SkipSpace(arr, i+1)
		if i >= len(arr) || arr[i] == ']' {
			return
		}
		end := SkipValue(arr, i)
		if !f(n, arr[i:end]) {
			return
		}
		i = SkipSpace(arr, end)
		if i >= len(arr) || arr[i] != ',' {
			return
		}
	}
}

// Count reads a non-negative JSON integer of at most 18 digits without
// allocating.
func Count(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Kind names the JSON type of a valid value, for error messages: "a
// string", "an object", "an array", "a boolean", "null" or "a number".
func Kind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// StringBytesAfter sums the lengths (as written, quotes excluded) of the
// JSON strings that follow each occurrence of key in data; key ends with
// the string's opening quote, e.g. `"content":"`.
func StringBytesAfter(data, key []byte) int64 {
	var n int64
	for {
		i := bytes.Index(data, key)
		if i < 0 {
			return n
		}
		start := i + len(key) - 1 // at the opening quote
		end := SkipString(data, start)
		n += int64(end - start - 2)
		data = data[end:]
	}
}
