package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

var cases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`,
	`"x"`, `"\u00e9\n\"\\\/\b\f\r\t"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\x01\"", "\"a\x7f\"", `"unterminated`,
	`0`, `-0`, `01`, `-`, `1.`, `.5`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e10`, `+1`, `0x10`,
	`true`, `false`, `null`, `tru`, `nul`, `True`, `truex`, `true false`, `[true,false,null]`,
	` {"a" : [ 1 , 2 , { "b" : null } ] } `, `{"a":[1,2,{"b":null}]}}`, `[[[]]]`, `[[[]]`, `[]]`, `{}{}`,
	`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`,
	"\xff", "\"\xff\xfe\"", `{"a":"b"`, `[1 2]`, `{"a":1}x`, "\t\n\r 1 \t\n\r", "\v1", `[-]`, `[--1]`, `{"":""}`,
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

func TestNestingLimit(t *testing.T) {
	for _, n := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			s := strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
			if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
				t.Errorf("depth %d of %s: Valid = %v, json.Valid = %v", n, open, got, want)
			}
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	var answer []byte
	for _, c := range cases {
		if strings.HasPrefix(c, `{"id":"chatcmpl-1"`) {
			answer = []byte(c)
		}
	}
	b.Run("jsonvalid", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		for b.Loop() {
			Valid(answer)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(answer)))
		for b.Loop() {
			json.Valid(answer)
		}
	})
}
