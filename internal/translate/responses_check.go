package translate

import (
	"encoding/json"
	"fmt"
	"strings"
)

// CheckResponsesEvents checks a finished stream of Responses events'
// data (each a JSON object, as an SSE "data:" line holds it) against the
// order clients rely on:
//
//   - sequence_number on every event, strictly increasing;
//   - response.created, then response.in_progress, first;
//   - every output item added (output_item.added, output_index = the
//     number of items added before) before its deltas and its done;
//   - every content part added (content_part.added, content_index = the
//     number of parts of its item before) before its deltas and done, and
//     done before its item is done; item_id, output_index and
//     content_index of every event name an open item and part;
//   - the texts and arguments of the done events, and of the items in
//     output_item.done, equal the deltas put together;
//   - exactly one terminal event (response.completed, response.incomplete
//     or response.failed), last, with no item open, a status that matches
//     and an output listing every item added, by id.
//
// It returns the first violation found, naming the event's index.
// Events it does not know are allowed where they name an open item.
func CheckResponsesEvents(events [][]byte) error {
	c := eventChecker{}
	for i, data := range events {
		var ev checkEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("event %d is no JSON object: %v", i, err)
		}
		if err := c.event(i, &ev); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, ev.Type, err)
		}
	}
	if !c.terminated {
		return fmt.Errorf("no terminal event after %d events", len(events))
	}
	return nil
}

// checkEvent holds the fields of any Responses event the checker reads.
type checkEvent struct {
	Type           string          `json:"type"`
	SequenceNumber *int64          `json:"sequence_number"`
	OutputIndex    *int            `json:"output_index"`
	ContentIndex   *int            `json:"content_index"`
	ItemID         *string         `json:"item_id"`
	Item           *checkItem      `json:"item"`
	Part           *checkPart      `json:"part"`
	Delta          json.RawMessage `json:"delta"`
	Text           *string         `json:"text"`
	Refusal        *string         `json:"refusal"`
	Arguments      *string         `json:"arguments"`
	Response       *struct {
		Status string      `json:"status"`
		Output []checkItem `json:"output"`
	} `json:"response"`
}

type checkItem struct {
	ID        string      `json:"id"`
	Type      string      `json:"type"`
	Status    string      `json:"status"`
	Arguments string      `json:"arguments"`
	Content   []checkPart `json:"content"`
}

type checkPart struct {
	Type    string `json:"type"`
	Text    string `json:"text"`
	Refusal string `json:"refusal"`
}

// checkedItem is the state of one output item.
type checkedItem struct {
	id, typ string
	done    bool
	parts   []*checkedPart
	args    strings.Builder
	argDone bool
}

type checkedPart struct {
	typ      string
	text     strings.Builder
	textDone bool
	done     bool
}

type eventChecker struct {
	lastSeq    int64
	items      []*checkedItem
	terminated bool
}

func (c *eventChecker) event(i int, ev *checkEvent) error {
	if ev.Type == "" {
		return fmt.Errorf("no type")
	}
	if ev.SequenceNumber == nil {
		return fmt.Errorf("no sequence_number")
	}
	if i > 0 && *ev.SequenceNumber <= c.lastSeq {
		return fmt.Errorf("sequence_number %d after %d", *ev.SequenceNumber, c.lastSeq)
	}
	c.lastSeq = *ev.SequenceNumber
	if c.terminated {
		return fmt.Errorf("after the terminal event")
	}
	switch {
	case i == 0 && ev.Type != "response.created":
		return fmt.Errorf("the first event must be response.created")
	case i == 1 && ev.Type != "response.in_progress":
		return fmt.Errorf("the second event must be response.in_progress")
	}
	switch ev.Type {
	case "response.created", "response.in_progress":
		if i > 1 {
			return fmt.Errorf("not at the start")
		}
		if ev.Response == nil || (ev.Response.Status != "in_progress" && ev.Response.Status != "queued") || len(ev.Response.Output) != 0 {
			return fmt.Errorf("response must be in_progress with no output")
		}
	case "response.output_item.added":
		return c.itemAdded(ev)
	case "response.output_item.done":
		return c.itemDone(ev)
	case "response.content_part.added":
		return c.partAdded(ev)
	case "response.content_part.done":
		return c.partDone(ev)
	case "response.output_text.delta", "response.refusal.delta":
		return c.textDelta(ev)
	case "response.output_text.done", "response.refusal.done":
		return c.textDone(ev)
	case "response.function_call_arguments.delta", "response.function_call_arguments.done":
		return c.arguments(ev)
	case "response.completed", "response.incomplete", "response.failed":
		return c.terminal(ev)
	case "error":
		return fmt.Errorf("an error event")
	default:
		if ev.OutputIndex != nil {
			_, err := c.openItem(ev)
			return err
		}
	}
	return nil
}

func (c *eventChecker) itemAdded(ev *checkEvent) error {
	if ev.OutputIndex == nil || *ev.OutputIndex != len(c.items) {
		return fmt.Errorf("output_index %v; want %d", deref(ev.OutputIndex), len(c.items))
	}
	if ev.Item == nil || ev.Item.Type == "" {
		return fmt.Errorf("no item")
	}
	if ev.Item.Status != "in_progress" {
		return fmt.Errorf("item status %q; want in_progress", ev.Item.Status)
	}
	if len(ev.Item.Content) != 0 || ev.Item.Arguments != "" {
		return fmt.Errorf("an added item must be empty")
	}
	c.items = append(c.items, &checkedItem{id: ev.Item.ID, typ: ev.Item.Type})
	return nil
}

// openItem returns the item an event names by output_index (and item_id,
// if it has one), which must be open.
func (c *eventChecker) openItem(ev *checkEvent) (*checkedItem, error) {
	if ev.OutputIndex == nil || *ev.OutputIndex < 0 || *ev.OutputIndex >= len(c.items) {
		return nil, fmt.Errorf("output_index %v names no item added", deref(ev.OutputIndex))
	}
	it := c.items[*ev.OutputIndex]
	if it.done {
		return nil, fmt.Errorf("item %d is done already", *ev.OutputIndex)
	}
	if ev.ItemID != nil && *ev.ItemID != it.id {
		return nil, fmt.Errorf("item_id %q; item %d is %q", *ev.ItemID, *ev.OutputIndex, it.id)
	}
	return it, nil
}

// openPart returns the open part an event names by content_index.
func (c *eventChecker) openPart(ev *checkEvent) (*checkedPart, error) {
	it, err := c.openItem(ev)
	if err != nil {
		return nil, err
	}
	if ev.ContentIndex == nil || *ev.ContentIndex < 0 || *ev.ContentIndex >= len(it.parts) {
		return nil, fmt.Errorf("content_index %v names no part added", deref(ev.ContentIndex))
	}
	p := it.parts[*ev.ContentIndex]
	if p.done {
		return nil, fmt.Errorf("part %d is done already", *ev.ContentIndex)
	}
	return p, nil
}

func (c *eventChecker) itemDone(ev *checkEvent) error {
	it, err := c.openItem(ev)
	if err != nil {
		return err
	}
	if ev.Item == nil || ev.Item.Type != it.typ || ev.Item.ID != it.id {
		return fmt.Errorf("the done item is not the %s %q added", it.typ, it.id)
	}
	if ev.Item.Status == "in_progress" || ev.Item.Status == "" {
		return fmt.Errorf("done item status %q", ev.Item.Status)
	}
	for j, p := range it.parts {
		if !p.done {
			return fmt.Errorf("part %d is not done", j)
		}
	}
	if it.typ == "message" {
		if len(ev.Item.Content) != len(it.parts) {
			return fmt.Errorf("the done item has %d parts; %d were added", len(ev.Item.Content), len(it.parts))
		}
		for j, p := range it.parts {
			if err := samePart(&ev.Item.Content[j], p); err != nil {
				return fmt.Errorf("the done item's part %d: %w", j, err)
			}
		}
	}
	if it.typ == "function_call" {
		if !it.argDone {
			return fmt.Errorf("no function_call_arguments.done")
		}
		if ev.Item.Arguments != it.args.String() {
			return fmt.Errorf("the done item's arguments %q are not the deltas' %q", ev.Item.Arguments, it.args.String())
		}
	}
	it.done = true
	return nil
}

// samePart checks a part against what its deltas made.
func samePart(got *checkPart, p *checkedPart) error {
	text := got.Text
	if got.Type == "refusal" {
		text = got.Refusal
	}
	if got.Type != p.typ || text != p.text.String() {
		return fmt.Errorf("%s %q; the deltas made %s %q", got.Type, text, p.typ, p.text.String())
	}
	return nil
}

func (c *eventChecker) partAdded(ev *checkEvent) error {
	it, err := c.openItem(ev)
	if err != nil {
		return err
	}
	if ev.ContentIndex == nil || *ev.ContentIndex != len(it.parts) {
		return fmt.Errorf("content_index %v; want %d", deref(ev.ContentIndex), len(it.parts))
	}
	if ev.Part == nil || ev.Part.Type == "" {
		return fmt.Errorf("no part")
	}
	if ev.Part.Text != "" || ev.Part.Refusal != "" {
		return fmt.Errorf("an added part must be empty")
	}
	it.parts = append(it.parts, &checkedPart{typ: ev.Part.Type})
	return nil
}

func (c *eventChecker) partDone(ev *checkEvent) error {
	p, err := c.openPart(ev)
	if err != nil {
		return err
	}
	if ev.Part == nil {
		return fmt.Errorf("no part")
	}
	if err := samePart(ev.Part, p); err != nil {
		return err
	}
	p.done = true
	return nil
}

// partType is the part type a text event belongs to.
func partType(eventType string) string {
	if strings.HasPrefix(eventType, "response.refusal.") {
		return "refusal"
	}
	return "output_text"
}

func (c *eventChecker) textDelta(ev *checkEvent) error {
	p, err := c.openPart(ev)
	if err != nil {
		return err
	}
	if p.typ != partType(ev.Type) || p.textDone {
		return fmt.Errorf("a delta for a %s part (text done: %v)", p.typ, p.textDone)
	}
	var d string
	if err := json.Unmarshal(ev.Delta, &d); err != nil {
		return fmt.Errorf("delta is no string")
	}
	p.text.WriteString(d)
	return nil
}

func (c *eventChecker) textDone(ev *checkEvent) error {
	p, err := c.openPart(ev)
	if err != nil {
		return err
	}
	text := ev.Text
	if p.typ == "refusal" {
		text = ev.Refusal
	}
	if p.typ != partType(ev.Type) || p.textDone || text == nil {
		return fmt.Errorf("for a %s part (text done: %v), or without its text", p.typ, p.textDone)
	}
	if *text != p.text.String() {
		return fmt.Errorf("text %q; the deltas made %q", *text, p.text.String())
	}
	p.textDone = true
	return nil
}

func (c *eventChecker) arguments(ev *checkEvent) error {
	it, err := c.openItem(ev)
	if err != nil {
		return err
	}
	if it.typ != "function_call" || it.argDone {
		return fmt.Errorf("for a %s item (arguments done: %v)", it.typ, it.argDone)
	}
	if strings.HasSuffix(ev.Type, ".delta") {
		var d string
		if err := json.Unmarshal(ev.Delta, &d); err != nil {
			return fmt.Errorf("delta is no string")
		}
		it.args.WriteString(d)
		return nil
	}
	if ev.Arguments == nil || *ev.Arguments != it.args.String() {
		return fmt.Errorf("arguments %v; the deltas made %q", deref(ev.Arguments), it.args.String())
	}
	it.argDone = true
	return nil
}

func (c *eventChecker) terminal(ev *checkEvent) error {
	c.terminated = true
	want := strings.TrimPrefix(ev.Type, "response.")
	if ev.Response == nil || ev.Response.Status != want {
		return fmt.Errorf("response status must be %s", want)
	}
	for j, it := range c.items {
		if !it.done {
			return fmt.Errorf("item %d is not done", j)
		}
	}
	if ev.Type == "response.failed" {
		return nil // a failed response may list less than was streamed
	}
	if len(ev.Response.Output) != len(c.items) {
		return fmt.Errorf("output has %d items; %d were streamed", len(ev.Response.Output), len(c.items))
	}
	for j, it := range c.items {
		if o := ev.Response.Output[j]; o.ID != it.id || o.Type != it.typ {
			return fmt.Errorf("output[%d] is %s %q; the stream made %s %q", j, o.Type, o.ID, it.typ, it.id)
		}
	}
	return nil
}

// deref shows a pointer's value in a message.
func deref[T any](p *T) any {
	if p == nil {
		return "none"
	}
	return *p
}
