package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// tomsgsSeeds returns the inputs of the golden cases of one direction.
func tomsgsSeeds(f *testing.F, direction string) []json.RawMessage {
	files, _ := filepath.Glob("testdata/tomsgs/*.json")
	var seeds []json.RawMessage
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var c tomsgsCase
		if err := json.Unmarshal(raw, &c); err != nil {
			f.Fatal(err)
		}
		if c.Direction == direction {
			seeds = append(seeds, c.Input)
		}
	}
	return seeds
}

// FuzzChatToMessages: any body gives either a *RequestError or a valid
// Messages request with max_tokens, at least one turn, roles alternating,
// no empty turn, and tool results first in their turn.
func FuzzChatToMessages(f *testing.F) {
	for _, s := range tomsgsSeeds(f, "request") {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`))
	f.Add([]byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":" {} "}}]},{"role":"tool","tool_call_id":"c"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := ChatToMessages(body, MessagesOptions{Model: "m", DefaultMaxTokens: 64})
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("not a *RequestError with a message: %#v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		var req msgRequestOut
		if err := json.Unmarshal(out, &req); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if req.MaxTokens == nil || *req.MaxTokens < 1 || len(req.Messages) == 0 {
			t.Fatalf("no max_tokens or no messages: %s", out)
		}
		for i, m := range req.Messages {
			if len(m.Content) == 0 || (i > 0 && m.Role == req.Messages[i-1].Role) {
				t.Fatalf("turn %d empty or of the previous turn's role: %s", i, out)
			}
			other := false // a block other than a tool result came
			for _, b := range m.Content {
				if b.Type == "tool_use" && (len(b.Input) == 0 || b.Input[0] != '{') {
					t.Fatalf("tool_use input not an object: %s", out)
				}
				if b.Type == "tool_result" && other {
					t.Fatalf("turn %d: a tool result after other blocks: %s", i, out)
				}
				other = other || b.Type != "tool_result"
			}
		}
		if req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 1) {
			t.Fatalf("temperature %v", *req.Temperature)
		}
	})
}

// FuzzMessagesStreamToChat feeds lines of the input as events and checks
// the chunk invariants (checkChatChunks).
func FuzzMessagesStreamToChat(f *testing.F) {
	for _, s := range tomsgsSeeds(f, "stream") {
		var events []json.RawMessage
		if err := json.Unmarshal(s, &events); err != nil {
			f.Fatal(err)
		}
		var seed bytes.Buffer
		for _, e := range events {
			json.Compact(&seed, e)
			seed.WriteByte('\n')
		}
		f.Add(seed.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var events []json.RawMessage
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			events = append(events, line)
		}
		chunks, err := readChatChunks(MessagesStreamToChat(newMsgEventSource(events), "alias"))
		checkChatChunks(t, chunks, err)
	})
}

// FuzzMessagesToChatResponse: any answer gives an error or valid JSON.
func FuzzMessagesToChatResponse(f *testing.F) {
	for _, s := range tomsgsSeeds(f, "response") {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := MessagesToChatResponse(msg, "alias")
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
	})
}
