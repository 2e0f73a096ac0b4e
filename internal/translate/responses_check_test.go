package translate_test

import (
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/internal/translate"
)

// A well-ordered stream: a message, then a function call. Its lines are
// changed one way or another to make the broken streams below.
var ckGood = []string{
	`{"type":"response.created","sequence_number":0,"response":{"status":"in_progress","output":[]}}`,
	`{"type":"response.in_progress","sequence_number":1,"response":{"status":"in_progress","output":[]}}`,
	`{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[]}}`,
	`{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":""}}`,
	`{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hel"}`,
	`{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"lo"}`,
	`{"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hello"}`,
	`{"type":"response.content_part.done","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Hello"}}`,
	`{"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","text":"Hello"}]}}`,
	`{"type":"response.output_item.added","sequence_number":9,"output_index":1,"item":{"id":"fc_2","type":"function_call","status":"in_progress","arguments":"","call_id":"c","name":"f"}}`,
	`{"type":"response.function_call_arguments.delta","sequence_number":10,"item_id":"fc_2","output_index":1,"delta":"{\"a\":"}`,
	`{"type":"response.function_call_arguments.delta","sequence_number":11,"item_id":"fc_2","output_index":1,"delta":"1}"}`,
	`{"type":"response.function_call_arguments.done","sequence_number":12,"item_id":"fc_2","output_index":1,"arguments":"{\"a\":1}"}`,
	`{"type":"response.output_item.done","sequence_number":13,"output_index":1,"item":{"id":"fc_2","type":"function_call","status":"completed","arguments":"{\"a\":1}","call_id":"c","name":"f"}}`,
	`{"type":"response.completed","sequence_number":14,"response":{"status":"completed","output":[{"id":"msg_1","type":"message"},{"id":"fc_2","type":"function_call"}]}}`,
}

func ckEvents(lines []string) [][]byte {
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = []byte(l)
	}
	return out
}

// edit returns ckGood with line i replaced (or removed when with is
// ""), after the replacements of old→new in it.
func ckEdit(i int, pairs ...string) []string {
	out := append([]string(nil), ckGood...)
	out[i] = strings.NewReplacer(pairs...).Replace(out[i])
	return out
}

func ckWithout(i int) []string {
	out := append([]string(nil), ckGood[:i]...)
	return append(out, ckGood[i+1:]...)
}

func ckSwap(i, j int) []string {
	out := append([]string(nil), ckGood...)
	out[i], out[j] = out[j], out[i]
	return out
}

func TestCheckResponsesEventsAccepts(t *testing.T) {
	if err := translate.CheckResponsesEvents(ckEvents(ckGood)); err != nil {
		t.Fatal(err)
	}
	// Events it does not know are fine where they name an open item.
	withReasoning := append([]string(nil), ckGood[:3]...)
	withReasoning = append(withReasoning, `{"type":"response.output_text.annotation.added","sequence_number":3,"output_index":0}`)
	withReasoning = append(withReasoning, ckGood[3:]...)
	for i := 4; i < len(withReasoning); i++ {
		withReasoning[i] = strings.Replace(withReasoning[i], `"sequence_number":`, `"sequence_number":1`, 1)
	}
	if err := translate.CheckResponsesEvents(ckEvents(withReasoning)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckResponsesEventsRejects(t *testing.T) {
	for _, c := range []struct {
		name   string
		events []string
		want   string // in the error
	}{
		{"empty", nil, "no terminal event"},
		{"not JSON", ckEdit(4, `{"type"`, `{type`), "event 4"},
		{"no sequence_number", ckEdit(4, `"sequence_number":4,`, ""), "no sequence_number"},
		{"sequence not increasing", ckEdit(5, `"sequence_number":5`, `"sequence_number":4`), "sequence_number 4 after 4"},
		{"in_progress missing", ckWithout(1), "second event"},
		{"created not first", ckSwap(0, 1), "first event"},
		{"delta before its item", ckSwap(2, 4), "names no item"},
		{"delta before its part", ckSwap(3, 4), "names no part"},
		{"item index skips", ckEdit(2, `"output_index":0`, `"output_index":1`), "output_index 1; want 0"},
		{"part index skips", ckEdit(3, `"content_index":0`, `"content_index":1`), "content_index 1; want 0"},
		{"wrong item_id", ckEdit(4, `"item_id":"msg_1"`, `"item_id":"msg_9"`), "item_id"},
		{"item done before its part", ckSwap(7, 8), "part 0 is not done"},
		{"text done before the last delta", ckSwap(5, 6), "the deltas made"},
		{"delta after text done", ckEdit(7, `"type":"response.content_part.done"`, `"type":"response.output_text.delta"`, `"part":{"type":"output_text","text":"Hello"}`, `"delta":"!"`), "text done"},
		{"text done differs from deltas", ckEdit(6, `"Hello"`, `"Hell"`), "the deltas made"},
		{"part done differs", ckEdit(7, `"Hello"`, `"Hi"`), "the deltas made"},
		{"done item's text differs", ckEdit(8, `"Hello"`, `"Hi"`), "part 0"},
		{"item closed without being opened", ckWithout(2), "names no item"},
		{"item done twice", append(append([]string(nil), ckGood[:9]...), strings.Replace(ckGood[8], `"sequence_number":8`, `"sequence_number":9`, 1)), "done already"},
		{"arguments dropped", ckEdit(13, `"arguments":"{\"a\":1}"`, `"arguments":""`), "arguments"},
		{"arguments done differs", ckEdit(12, `1}`, `2}`), "the deltas made"},
		{"no arguments done", ckWithout(12), "no function_call_arguments.done"},
		{"done item still in progress", ckEdit(13, `"status":"completed"`, `"status":"in_progress"`), "status"},
		{"done item is another", ckEdit(13, `"id":"fc_2"`, `"id":"fc_3"`), "not the function_call"},
		{"no terminal", ckGood[:14], "no terminal event"},
		{"item open at the end", append(append([]string(nil), ckGood[:13]...), strings.Replace(ckGood[14], `"sequence_number":14`, `"sequence_number":13`, 1)), "item 1 is not done"},
		{"terminal twice", append(append([]string(nil), ckGood...), strings.Replace(ckGood[14], "14", "15", 1)), "after the terminal event"},
		{"terminal status differs", ckEdit(14, `"status":"completed"`, `"status":"incomplete"`), "status must be completed"},
		{"terminal output short", ckEdit(14, `,{"id":"fc_2","type":"function_call"}`, ""), "output has 1 items"},
		{"terminal output differs", ckEdit(14, `"id":"msg_1"`, `"id":"msg_7"`), "output[0]"},
		{"error event", ckEdit(14, `"type":"response.completed"`, `"type":"error"`), "an error event"},
	} {
		err := translate.CheckResponsesEvents(ckEvents(c.events))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", c.name, err, c.want)
		}
	}
}
