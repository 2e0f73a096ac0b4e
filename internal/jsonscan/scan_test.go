package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestField(t *testing.T) {
	body := []byte(` { "a" : 1 , "usage":{"x":[1,{"y":"}"}]}, "s":"q\"uote", "usage":2 } `)
	for _, c := range []struct{ name, want string }{
		{"a", "1"}, {"usage", `{"x":[1,{"y":"}"}]}`}, {"s", `"q\"uote"`}, {"x", ""}, {"y", ""},
	} {
		if got := Field(body, c.name); string(got) != c.want {
			t.Errorf("Field(%q) = %q; want %q", c.name, got, c.want)
		}
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{`, `{"a"`, `{"a":`, `{"a":"`, `{"a":1`, `{"a":"\`, `{"a":[1,2`} {
		Field([]byte(bad), "a") // must not panic
		Field([]byte(bad), "b")
	}
}

func TestElements(t *testing.T) {
	var got []string
	Elements([]byte(` [ {"role":"user"} , "s" ,[1,2], 3 ] `), func(i int, e []byte) bool {
		got = append(got, string(e))
		return true
	})
	want := []string{`{"role":"user"}`, `"s"`, `[1,2]`, `3`}
	if len(got) != len(want) {
		t.Fatalf("Elements = %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d = %q; want %q", i, got[i], want[i])
		}
	}
	n := 0
	Elements([]byte(`[]`), func(int, []byte) bool { n++; return true })
	Elements([]byte(`{}`), func(int, []byte) bool { n++; return true })
	if n != 0 {
		t.Errorf("empty array or an object: %d elements", n)
	}
}

// FuzzScan checks Field and Elements against encoding/json on every valid
// input, and that neither panics on any input.
func FuzzScan(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"usage":{"prompt_tokens":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{"model", "messages", "usage", "a", ""} {
			Field(b, name)
		}
		Elements(b, func(int, []byte) bool { return true })
		if !Valid(b) {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) == nil && obj != nil {
			// encoding/json keeps the last of repeated keys and unescapes
			// them; Field finds the first as written: compare on keys that
			// appear once, unescaped.
			for k, v := range obj {
				if bytes.Count(b, []byte(`"`+k+`"`)) != 1 {
					continue
				}
				if got := Field(b, k); !bytes.Equal(got, bytes.TrimSpace(v)) {
					t.Fatalf("Field(%q) = %q; encoding/json: %q", k, got, v)
				}
			}
		}
		var arr []json.RawMessage
		if json.Unmarshal(b, &arr) == nil && arr != nil {
			var got [][]byte
			Elements(b, func(_ int, e []byte) bool { got = append(got, e); return true })
			if len(got) != len(arr) {
				t.Fatalf("Elements found %d; encoding/json %d", len(got), len(arr))
			}
			for i := range arr {
				if !bytes.Equal(got[i], bytes.TrimSpace(arr[i])) {
					t.Fatalf("element %d = %q; encoding/json: %q", i, got[i], arr[i])
				}
			}
		}
	})
}
