package bedrock_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

const hiBody = `{"model":"claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

// thinkingMessage is an answer with a thinking block, its signature, a
// text and usage with cache counts.
var thinkingMessage = []byte(`{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",` +
	`"content":[{"type":"thinking","thinking":"The user greets me.","signature":"EqQBCkYIBxgCKkD1+/sig=="},{"type":"text","text":"Hello there, friend."}],` +
	`"stop_reason":"end_turn","stop_sequence":null,` +
	`"usage":{"input_tokens":12,"cache_creation_input_tokens":2048,"cache_read_input_tokens":4096,"output_tokens":9}}`)

// TestMessagesStream: every chunk's event reaches Next unchanged and in
// order, the body sent is the non-streaming one, and the stream ends
// with io.EOF after message_stop.
func TestMessagesStream(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		return &bedrocktest.MessagesReply{Message: thinkingMessage}
	}
	res, err := p.Messages(context.Background(), messagesRequest(hiBody, true))
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, res.Stream)
	want := bedrocktest.MessageEvents(thinkingMessage)
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i].Data) {
			t.Errorf("event %d = %s, want %s", i, got[i], want[i].Data)
		}
	}
	for _, s := range []string{`{"type":"signature_delta","signature":"EqQBCkYIBxgCKkD1+/sig=="}`, `"cache_read_input_tokens":4096`, `"amazon-bedrock-invocationMetrics"`} {
		if !bytes.Contains(bytes.Join(got, nil), []byte(s)) {
			t.Errorf("the events lack %s", s)
		}
	}
	c := srv.LastCall()
	if c.Operation != bedrocktest.OpInvokeStream || string(c.Body) != `{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}` {
		t.Errorf("call = %s %s", c.Operation, c.Body)
	}
	if res.Header.Get("X-Request-Id") != "fake-request-id" {
		t.Errorf("header = %v", res.Header)
	}
}

// TestMessagesStreamRelaysAsItArrives: Next returns the first event
// while Bedrock has not sent the second.
func TestMessagesStreamRelaysAsItArrives(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	gate := make(chan struct{})
	events := bedrocktest.MessageEvents(bedrocktest.TextMessage("one two three", 3, 3))
	events[1].Wait = gate
	srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		return &bedrocktest.MessagesReply{Events: events}
	}
	res, err := p.Messages(context.Background(), messagesRequest(hiBody, true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	first := make(chan []byte, 1)
	go func() {
		b, _ := res.Stream.Next()
		first <- b
	}()
	select {
	case b := <-first:
		if !bytes.Contains(b, []byte(`"message_start"`)) {
			t.Fatalf("first event = %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event was held back until the second arrived")
	}
	close(gate)
	b, err := res.Stream.Next()
	if err != nil || !bytes.Contains(b, []byte(`"content_block_start"`)) {
		t.Fatalf("second event = %s, %v", b, err)
	}
}

// TestMessagesStreamExceptions: Bedrock's stream exceptions end the
// stream with Anthropic's error types, after the events before them.
func TestMessagesStreamExceptions(t *testing.T) {
	for _, tc := range []struct {
		exception string
		status    int
		typ       string
	}{
		{"throttlingException", 429, "rate_limit_error"},
		{"serviceUnavailableException", 529, "overloaded_error"},
		{"internalServerException", 502, "api_error"},
		{"modelStreamErrorException", 502, "api_error"},
		{"modelTimeoutException", 504, "api_error"},
		{"validationException", 400, "invalid_request_error"},
	} {
		t.Run(tc.exception, func(t *testing.T) {
			srv, p := newMessagesFake(t, nil)
			events := bedrocktest.MessageEvents(bedrocktest.TextMessage("one two", 3, 2))
			srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
				return &bedrocktest.MessagesReply{Events: append(events[:2:2], bedrocktest.Exception(tc.exception, "something broke"))}
			}
			res, err := p.Messages(context.Background(), messagesRequest(hiBody, true))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Stream.Close()
			for i := 0; i < 2; i++ {
				if _, err := res.Stream.Next(); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			_, err = res.Stream.Next()
			var e *llmproxy.Error
			if !errors.As(err, &e) || e.Status != tc.status || e.Type != tc.typ {
				t.Fatalf("err = %#v, want %d %s", err, tc.status, tc.typ)
			}
			if _, err := res.Stream.Next(); err != io.EOF {
				t.Errorf("Next after the error = %v, want io.EOF", err)
			}
		})
	}
}

// TestMessagesStreamErrorEvent: an Anthropic error event in a chunk ends
// the stream as an *Error with its type and message.
func TestMessagesStreamErrorEvent(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	events := bedrocktest.MessageEvents(bedrocktest.TextMessage("one", 3, 1))
	srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		return &bedrocktest.MessagesReply{Events: append(events[:1:1],
			bedrocktest.StreamEvent{Data: []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)})}
	}
	res, err := p.Messages(context.Background(), messagesRequest(hiBody, true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	res.Stream.Next()
	_, err = res.Stream.Next()
	var e *llmproxy.Error
	if !errors.As(err, &e) || e.Status != 529 || e.Type != "overloaded_error" || e.Message != "Overloaded" {
		t.Fatalf("err = %#v", err)
	}
}

// TestMessagesStreamBroken: a stream cut before message_stop, or with
// an event that is not an object with a type, is an error, never EOF.
func TestMessagesStreamBroken(t *testing.T) {
	events := bedrocktest.MessageEvents(bedrocktest.TextMessage("one two", 3, 2))
	for name, reply := range map[string]*bedrocktest.MessagesReply{
		"ended early": {Events: events[:3]},
		"cut":         {Events: events[:3], Cut: true},
		"not json":    {Events: []bedrocktest.StreamEvent{events[0], {Data: []byte(`{"type":`)}}},
		"no type":     {Events: []bedrocktest.StreamEvent{events[0], {Data: []byte(`{"index":0}`)}}},
		"not object":  {Events: []bedrocktest.StreamEvent{events[0], {Data: []byte(`"message_stop"`)}}},
	} {
		t.Run(name, func(t *testing.T) {
			srv, p := newMessagesFake(t, nil)
			srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply { return reply }
			res, err := p.Messages(context.Background(), messagesRequest(hiBody, true))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Stream.Close()
			for err == nil {
				_, err = res.Stream.Next()
			}
			var e *llmproxy.Error
			if err == io.EOF || !errors.As(err, &e) || e.Type != "api_error" {
				t.Errorf("err = %v, want an api_error", err)
			}
		})
	}
}

// TestMessagesStreamClose: closing a stream mid-answer (the client went
// away) releases Bedrock's connection.
func TestMessagesStreamClose(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	events := bedrocktest.MessageEvents(bedrocktest.TextMessage("one two", 3, 2))
	srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		return &bedrocktest.MessagesReply{Events: events[:2], HoldOpen: true}
	}
	res, err := p.Messages(context.Background(), messagesRequest(hiBody, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Stream.Next(); err != nil {
		t.Fatal(err)
	}
	res.Stream.Close()
	select {
	case <-srv.LastCall().Done:
	case <-time.After(5 * time.Second):
		t.Fatal("Bedrock's connection was not released after Close")
	}
	if _, err := res.Stream.Next(); err != io.EOF {
		t.Errorf("Next after Close = %v, want io.EOF", err)
	}
}

// TestMessagesStreamCancel: cancelling the request's context ends a
// stream that waits for Bedrock, with the context's error.
func TestMessagesStreamCancel(t *testing.T) {
	srv, p := newMessagesFake(t, nil)
	events := bedrocktest.MessageEvents(bedrocktest.TextMessage("one two", 3, 2))
	srv.Messages = func(*bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
		return &bedrocktest.MessagesReply{Events: events[:1], HoldOpen: true}
	}
	ctx, cancel := context.WithCancel(context.Background())
	res, err := p.Messages(ctx, messagesRequest(hiBody, true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	if _, err := res.Stream.Next(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := res.Stream.Next()
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled in the chain", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after cancel")
	}
	select {
	case <-srv.LastCall().Done:
	case <-time.After(5 * time.Second):
		t.Fatal("Bedrock's connection was not released after cancel")
	}
}

// TestMessagesToolRoundTrip: with EchoMessages, a tool is called, then
// its result answered, streaming: what a Claude Code turn does.
func TestMessagesToolRoundTrip(t *testing.T) {
	_, p := newMessagesFake(t, nil)
	tools := `"tools":[{"name":"Read","input_schema":{"type":"object","properties":{"file_path":{"type":"string"}},"required":["file_path"]}}]`
	res, err := p.Messages(context.Background(), messagesRequest(`{"max_tokens":64,"stream":true,`+tools+`,"messages":[{"role":"user","content":"read it"}]}`, true))
	if err != nil {
		t.Fatal(err)
	}
	all := string(bytes.Join(drain(t, res.Stream), []byte("\n")))
	if !strings.Contains(all, `"name":"Read"`) || !strings.Contains(all, `"partial_json":"{\"file_pat"`) || !strings.Contains(all, `"stop_reason":"tool_use"`) {
		t.Fatalf("no tool_use for Read in\n%s", all)
	}
	body := `{"max_tokens":64,"stream":true,` + tools + `,"messages":[{"role":"user","content":"read it"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_bdrk_fake1","name":"Read","input":{"file_path":"test"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_bdrk_fake1","content":[{"type":"text","text":"package main"}]}]}]}`
	res, err = p.Messages(context.Background(), messagesRequest(body, true))
	if err != nil {
		t.Fatal(err)
	}
	all = string(bytes.Join(drain(t, res.Stream), nil))
	if !strings.Contains(all, `"text":" said:"`) || !strings.Contains(all, `"text":" main"`) {
		t.Errorf("no answer from the tool result in\n%s", all)
	}
}
