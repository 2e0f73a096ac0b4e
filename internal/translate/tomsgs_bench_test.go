package translate

import (
	"encoding/json"
	"os"
	"testing"
)

func BenchmarkChatToMessages(b *testing.B) {
	raw, err := os.ReadFile("testdata/tomsgs/request_tool_round_trip.json")
	if err != nil {
		b.Fatal(err)
	}
	var c tomsgsCase
	if err := json.Unmarshal(raw, &c); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(c.Input)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ChatToMessages(c.Input, *c.Options); err != nil {
			b.Fatal(err)
		}
	}
}

// loopSource yields its first event once, then the rest over and over,
// as a long answer does.
type loopSource struct {
	events [][]byte
	next   int
}

func (s *loopSource) Next() ([]byte, error) {
	e := s.events[s.next]
	s.next++
	if s.next == len(s.events) {
		s.next = 1
	}
	return e, nil
}

func (s *loopSource) Close() error { return nil }

// BenchmarkMessagesStreamToChat measures one event's translation: a text
// delta, and a tool call's start and arguments.
func BenchmarkMessagesStreamToChat(b *testing.B) {
	for _, bc := range []struct {
		name   string
		events []string
	}{
		{"text_delta", []string{msgEvStart, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, this is a token or two of text \"quoted\"."}}`}},
		{"tool_call", []string{
			msgEvStart,
			`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}`,
			`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}`,
			`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\"}"}}`,
			`{"type":"content_block_stop","index":1}`,
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := &loopSource{}
			for _, e := range bc.events {
				src.events = append(src.events, []byte(e))
			}
			s := MessagesStreamToChat(src, "alias").(*chatChunkStream)
			if _, err := s.Next(); err != nil { // the role chunk
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				// One event per iteration; the tool starts (which
				// grow s.tools) are kept to a few.
				if len(s.tools) > 8 {
					s.tools = s.tools[:0]
				}
				if _, err := s.chunk(src.events[src.next]); err != nil {
					b.Fatal(err)
				}
				src.Next()
			}
		})
	}
}
