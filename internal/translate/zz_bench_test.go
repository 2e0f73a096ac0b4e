package translate

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/jsonscan"
)

func zzBody(b *testing.B) []byte {
	raw, _ := os.ReadFile("testdata/tochat/request_claude_code.json")
	var c struct{ Input json.RawMessage }
	json.Unmarshal(raw, &c)
	var req map[string]json.RawMessage
	json.Unmarshal(c.Input, &req)
	var msgs []json.RawMessage
	json.Unmarshal(req["messages"], &msgs)
	grown := msgs
	for len(grown) < 120 {
		grown = append(grown, msgs[1:]...)
	}
	req["messages"], _ = json.Marshal(grown)
	body, _ := json.Marshal(req)
	return body
}

func BenchmarkZZValid(b *testing.B) {
	body := zzBody(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		jsonscan.Valid(body)
	}
}
func BenchmarkZZFast(b *testing.B) {
	body := zzBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		fastMessagesToChat(body, ChatOptions{Model: "m"})
	}
}

func BenchmarkZZSkip(b *testing.B) {
	body := zzBody(b)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		skipValue(body, 0)
	}
}
func BenchmarkZZTranscode(b *testing.B) {
	body := zzBody(b)
	var out []byte
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		out = appendLitInner(out[:0], body, true)
	}
}
