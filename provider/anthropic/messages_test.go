package anthropic_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
)

// clientBody is a Messages body as Claude Code sends one: thinking with a
// signature, cache_control marks, fields this gateway does not know, odd
// spacing and escapes. Only its model may change on the way.
const clientBody = `{"model":"claude-alias",  "max_tokens":1024,"stream":%s,
 "system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
 "thinking":{"type":"adaptive","budget_tokens":2048},
 "messages":[{"role":"user","content":[{"type":"text","text":"Read \u00e9t\u00e9.txt","cache_control":{"type":"ephemeral","ttl":"1h"}}]},
  {"role":"assistant","content":[{"type":"thinking","thinking":"I should read it.","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxzaWduYXR1cmU+/=="},
   {"type":"tool_use","id":"toolu_01","name":"Read","input":{"file_path":"/tmp/x"}}]},
  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"hello"}]}],
 "tools":[{"name":"Read","description":"Reads a file","input_schema":{"type":"object"}}],
 "context_management":{"edits":[{"type":"clear_thinking_20251015"}]},"future_field":[1,2.50,null]}`

const remoteModel = "claude-sonnet-4-5-20250929"

func body(stream bool) string {
	return strings.Replace(clientBody, "%s", map[bool]string{true: "true", false: "false"}[stream], 1)
}

func messagesRequest(stream bool, h http.Header) *llmproxy.Request {
	if h == nil {
		h = http.Header{"Anthropic-Version": {"2023-06-01"}}
	}
	return &llmproxy.Request{Body: []byte(body(stream)), Model: "claude-alias", RemoteModel: remoteModel,
		Stream: stream, Header: h, Endpoint: llmproxy.EndpointMessages}
}

// TestMessagesPassthrough: the upstream receives the client's bytes with
// only the model changed, and the client the upstream's answer as it
// was, for both a JSON answer and a stream.
func TestMessagesPassthrough(t *testing.T) {
	s := anthropictest.New(t)
	p := newProvider(t, s, llmproxy.ProviderOptions{})
	for _, stream := range []bool{false, true} {
		want := strings.Replace(body(stream), `"model":"claude-alias"`, `"model":"`+remoteModel+`"`, 1)
		upstreamAnswer := []byte(`{"id":"msg_01","type":"message","role":"assistant","model":"` + remoteModel + `",` +
			`"content":[{"type":"thinking","thinking":"ok","signature":"c2ln"},{"type":"text","text":"hi"}],"stop_reason":"end_turn",` +
			`"stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"output_tokens":4},"unknown":true}`)
		events := anthropictest.Events(anthropictest.Message{Content: []anthropictest.Block{
			anthropictest.ThinkingBlock("Let me think.", "EqQBCgIYAh=="), anthropictest.TextBlock("Hello there, friend."),
			anthropictest.ToolUseBlock("toolu_02", "Read", map[string]string{"file_path": "/etc/hosts"})}})
		if stream {
			s.Reply(anthropictest.Stream(events...))
		} else {
			s.Reply(anthropictest.Answer{Body: upstreamAnswer})
		}
		res, err := p.Messages(context.Background(), messagesRequest(stream, nil))
		if err != nil {
			t.Fatalf("stream=%v: %v", stream, err)
		}
		c := s.LastCall()
		if string(c.Body) != want {
			t.Errorf("stream=%v: the upstream received\n%s\nwant the client's bytes with the model changed:\n%s", stream, c.Body, want)
		}
		if c.Path != anthropictest.PathMessages {
			t.Errorf("path %q", c.Path)
		}
		if !stream {
			if !bytes.Equal(res.Body, upstreamAnswer) || res.Stream != nil {
				t.Errorf("Body %s, want the upstream's answer unchanged", res.Body)
			}
			continue
		}
		got := readStream(t, res.Stream)
		if len(got) != len(events) {
			t.Fatalf("%d events, want %d", len(got), len(events))
		}
		for i, ev := range events {
			if got[i] != string(ev.Data) {
				t.Errorf("event %d: %s, want %s", i, got[i], ev.Data)
			}
		}
	}
}

// readStream reads st to io.EOF, failing t on any other end, and checks
// that it stays at io.EOF.
func readStream(t *testing.T, st llmproxy.EventStream) []string {
	t.Helper()
	defer st.Close()
	var out []string
	for {
		d, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, string(d))
	}
	if _, err := st.Next(); err != io.EOF {
		t.Errorf("Next after the end: %v, want io.EOF", err)
	}
	return out
}

// TestMessagesHeaders: the connection's key, the client's
// anthropic-version and anthropic-beta go up, nothing else of the
// client's; the request id comes back as X-Request-Id, the account's
// rate-limit headers do not.
func TestMessagesHeaders(t *testing.T) {
	s := anthropictest.New(t)
	p := newProvider(t, s, llmproxy.ProviderOptions{})
	const clientSecret = "sk-ant-client-secret"
	h := http.Header{
		"Anthropic-Version":        {"2023-06-01"},
		"Anthropic-Beta":           {"claude-code-20250219,interleaved-thinking-2025-05-14", "context-management-2025-06-27"},
		"X-Api-Key":                {clientSecret},
		"Authorization":            {"Bearer " + clientSecret},
		"Cookie":                   {"s=" + clientSecret},
		"X-Claude-Code-Session-Id": {"session-1"},
		"User-Agent":               {"claude-cli/2.1.328"},
	}
	a := anthropictest.Text("hi")
	a.Header = http.Header{"Anthropic-Ratelimit-Tokens-Remaining": {"1000"}, "Anthropic-Organization-Id": {"org-1"}, "Request-Id": {"req_upstream_1"}}
	s.Reply(a)
	res, err := p.Messages(context.Background(), messagesRequest(false, h))
	if err != nil {
		t.Fatal(err)
	}
	up := s.LastCall().Header
	if got := up.Get("X-Api-Key"); got != anthropictest.DefaultAPIKey {
		t.Errorf("x-api-key %q, want the connection's", got)
	}
	if got := up.Values("Anthropic-Beta"); strings.Join(got, "|") != strings.Join(h["Anthropic-Beta"], "|") {
		t.Errorf("anthropic-beta %q, want the client's %q", got, h["Anthropic-Beta"])
	}
	for k, vs := range up {
		for _, v := range vs {
			if strings.Contains(v, clientSecret) || strings.Contains(v, "session-1") {
				t.Errorf("the client's %s reached the upstream: %q", k, v)
			}
		}
	}
	if got := res.Header.Get("X-Request-Id"); got != "req_upstream_1" {
		t.Errorf("X-Request-Id %q, want the upstream's request-id", got)
	}
	if len(res.Header) != 1 {
		t.Errorf("Response.Header %v, want only X-Request-Id", res.Header)
	}

	// Without the client's version, the default goes up; a client's other
	// version goes up as it is.
	for _, tc := range []struct{ client, want string }{{"", anthropic.DefaultVersion}, {"2026-10-21", "2026-10-21"}} {
		h := http.Header{}
		if tc.client != "" {
			h.Set("Anthropic-Version", tc.client)
		}
		if _, err := p.Messages(context.Background(), messagesRequest(false, h)); err != nil {
			t.Fatal(err)
		}
		if got := s.LastCall().Header.Values("Anthropic-Version"); len(got) != 1 || got[0] != tc.want {
			t.Errorf("client version %q: upstream got %q, want %q", tc.client, got, tc.want)
		}
	}
}

// TestMessagesStreamEventByEvent: each event reaches Next as soon as it
// is sent: the fake sends event i only once the test has read event i-1,
// so a provider that waited for more would hang.
func TestMessagesStreamEventByEvent(t *testing.T) {
	s := anthropictest.New(t)
	p := newProvider(t, s, llmproxy.ProviderOptions{})
	events := anthropictest.Events(anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("one two three")}})
	read := make(chan int, len(events))
	a := anthropictest.Stream(events...)
	a.Pace = func(i int) {
		if i > 0 {
			select {
			case <-read:
			case <-time.After(5 * time.Second):
			}
		}
	}
	s.Reply(a)
	res, err := p.Messages(context.Background(), messagesRequest(true, nil))
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stream
	defer st.Close()
	rs := st.(llmproxy.ReadyStream)
	for i, ev := range events {
		done := make(chan struct{})
		var d []byte
		go func() { defer close(done); d, err = st.Next() }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("event %d did not reach Next while the fake waited for it to be read", i)
		}
		if err != nil || string(d) != string(ev.Data) {
			t.Fatalf("event %d: %s, %v; want %s", i, d, err, ev.Data)
		}
		if i < len(events)-1 && rs.Ready() {
			t.Errorf("after event %d: Ready is true while the next event is not sent", i)
		}
		read <- i
	}
	if _, err := st.Next(); err != io.EOF {
		t.Errorf("after message_stop: %v, want io.EOF", err)
	}
}

// TestMessagesErrors: upstream error answers become the *llmproxy.Error
// the client should see, for JSON and stream requests alike.
func TestMessagesErrors(t *testing.T) {
	const secret = "sk-ant-upstream-0123"
	for _, tc := range []struct {
		name   string
		answer anthropictest.Answer
		status int
		typ    string
		shows  string
		hides  string
		retry  time.Duration // want RetryAfter within a second of it
	}{
		{name: "400", answer: anthropictest.Error(400, "invalid_request_error", "messages.1.content.0.thinking.signature: Invalid signature"),
			status: 400, typ: "invalid_request_error", shows: "Invalid signature"},
		{name: "404 is the client's", answer: anthropictest.Error(404, "not_found_error", "File not found: file_011"),
			status: 404, typ: "not_found_error", shows: "file_011"},
		{name: "413", answer: anthropictest.Error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
			status: 413, typ: "request_too_large", shows: "maximum"},
		{name: "422", answer: anthropictest.Error(422, "invalid_request_error", "unprocessable"), status: 422, typ: "invalid_request_error"},
		{name: "401", answer: anthropictest.Error(401, "authentication_error", "invalid x-api-key "+secret), status: 502, typ: llmproxy.TypeUpstream, hides: secret},
		{name: "403", answer: anthropictest.Error(403, "permission_error", "key "+secret+" may not use this model"), status: 502, typ: llmproxy.TypeUpstream, hides: secret},
		{name: "402", answer: anthropictest.Error(402, "billing_error", "credit balance too low"), status: 502, typ: llmproxy.TypeUpstream, hides: "credit"},
		{name: "429 retry-after", answer: anthropictest.RateLimited(7 * time.Second), status: 429, typ: llmproxy.TypeRateLimit, retry: 7 * time.Second},
		{name: "429 reset header only", answer: func() anthropictest.Answer {
			a := anthropictest.Error(429, "rate_limit_error", "slow down")
			a.Header = http.Header{
				"Anthropic-Ratelimit-Input-Tokens-Remaining": {"0"},
				"Anthropic-Ratelimit-Input-Tokens-Reset":     {time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339)},
				"Anthropic-Ratelimit-Requests-Remaining":     {"10"},
				"Anthropic-Ratelimit-Requests-Reset":         {time.Now().Add(50 * time.Second).UTC().Format(time.RFC3339)},
			}
			return a
		}(), status: 429, typ: llmproxy.TypeRateLimit, retry: 30 * time.Second, shows: "slow down"},
		{name: "529", answer: anthropictest.Overloaded(), status: 529, typ: anthropic.TypeOverloaded, shows: "Overloaded"},
		{name: "500", answer: anthropictest.Error(500, "api_error", "Internal server error"), status: 502, typ: llmproxy.TypeUpstream},
		{name: "503", answer: anthropictest.Error(503, "api_error", "unavailable"), status: 502, typ: llmproxy.TypeUpstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := anthropictest.New(t)
			p := newProvider(t, s, llmproxy.ProviderOptions{})
			for _, stream := range []bool{false, true} {
				s.Reply(tc.answer)
				res, err := p.Messages(context.Background(), messagesRequest(stream, nil))
				var e *llmproxy.Error
				if !errors.As(err, &e) {
					if res != nil && res.Stream != nil {
						res.Stream.Close()
					}
					t.Fatalf("stream=%v: error %v, want an *llmproxy.Error", stream, err)
				}
				if e.Status != tc.status || e.Type != tc.typ {
					t.Errorf("stream=%v: %d %q, want %d %q", stream, e.Status, e.Type, tc.status, tc.typ)
				}
				if !strings.Contains(e.Message, tc.shows) || (tc.hides != "" && strings.Contains(e.Message, tc.hides)) {
					t.Errorf("stream=%v: message %q, want it to show %q and not %q", stream, e.Message, tc.shows, tc.hides)
				}
				if tc.retry > 0 && (e.RetryAfter < tc.retry-2*time.Second || e.RetryAfter > tc.retry) {
					t.Errorf("stream=%v: RetryAfter %v, want about %v", stream, e.RetryAfter, tc.retry)
				}
			}
		})
	}
}

// TestMessagesStreamErrors: an error event mid-stream ends the stream,
// after the events before it, with its Anthropic type; a cut connection
// with a 502; neither looks like a whole answer (io.EOF).
func TestMessagesStreamErrors(t *testing.T) {
	events := anthropictest.Events(anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("a b c d")}})
	for _, tc := range []struct {
		name   string
		answer anthropictest.Answer
		status int
		typ    string
	}{
		{"overloaded", anthropictest.Stream(append(events[:4:4], anthropictest.ErrorEvent("overloaded_error", "Overloaded"))...), 529, "overloaded_error"},
		{"api_error", anthropictest.Stream(append(events[:4:4], anthropictest.ErrorEvent("api_error", "Internal error"))...), 500, "api_error"},
		{"cut", anthropictest.Answer{Events: events[:4], Cut: true}, 502, llmproxy.TypeUpstream},
		{"ended early", anthropictest.Stream(events[:4]...), 502, llmproxy.TypeUpstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := anthropictest.New(t)
			p := newProvider(t, s, llmproxy.ProviderOptions{})
			s.Reply(tc.answer)
			res, err := p.Messages(context.Background(), messagesRequest(true, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Stream.Close()
			n := 0
			for ; ; n++ {
				if _, err = res.Stream.Next(); err != nil {
					break
				}
			}
			var e *llmproxy.Error
			if n != 4 || !errors.As(err, &e) {
				t.Fatalf("%d events then %v, want 4 then an *llmproxy.Error", n, err)
			}
			if e.Status != tc.status || e.Type != tc.typ {
				t.Errorf("%d %q, want %d %q", e.Status, e.Type, tc.status, tc.typ)
			}
		})
	}
}

// TestMessagesCloseMidStream: Close before the end releases the upstream
// call at once.
func TestMessagesCloseMidStream(t *testing.T) {
	s := anthropictest.New(t)
	p := newProvider(t, s, llmproxy.ProviderOptions{})
	events := anthropictest.Events(anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("a b c")}})
	s.Reply(anthropictest.Answer{Events: events[:3], HoldOpen: true})
	res, err := p.Messages(context.Background(), messagesRequest(true, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Stream.Next(); err != nil {
		t.Fatal(err)
	}
	if err := res.Stream.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-s.LastCall().Done:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call did not end after Close")
	}
	if _, err := res.Stream.Next(); err == nil {
		t.Error("Next after Close returned an event")
	}
}

// TestMessagesCancel: cancelling the context before the answer's head
// returns context.Canceled and ends the upstream call; so does
// cancelling while Next waits.
func TestMessagesCancel(t *testing.T) {
	s := anthropictest.New(t)
	p := newProvider(t, s, llmproxy.ProviderOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	s.Reply(anthropictest.Answer{HoldHead: true})
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := p.Messages(ctx, messagesRequest(true, nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before the head: %v, want context.Canceled", err)
	}
	<-s.LastCall().Done

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	events := anthropictest.Events(anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("a b c")}})
	s.Reply(anthropictest.Answer{Events: events[:2], HoldOpen: true})
	res, err := p.Messages(ctx, messagesRequest(true, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	res.Stream.Next()
	res.Stream.Next()
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := res.Stream.Next(); err == nil || err == io.EOF {
		t.Errorf("cancelled mid-stream: %v, want an error", err)
	}
	select {
	case <-s.LastCall().Done:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call did not end after the cancellation")
	}
}

// TestCountTokens: count_tokens goes to its path with the model changed
// and the client's beta header; its answer's input_tokens comes back; a
// 404 means unsupported (the Gateway estimates), a 400 is the client's.
func TestCountTokens(t *testing.T) {
	s := anthropictest.New(t)
	p := newProvider(t, s, llmproxy.ProviderOptions{})
	req := &llmproxy.Request{Body: []byte(`{"model":"claude-alias","messages":[{"role":"user","content":"hi"}],"system":"x"}`),
		Model: "claude-alias", RemoteModel: remoteModel, Endpoint: llmproxy.EndpointCountTokens,
		Header: http.Header{"Anthropic-Beta": {"token-counting-2024-11-01"}}}
	s.Reply(anthropictest.Count(2095))
	n, err := p.CountTokens(context.Background(), req)
	if err != nil || n != 2095 {
		t.Fatalf("CountTokens = %d, %v; want 2095", n, err)
	}
	c := s.LastCall()
	if want := `{"model":"` + remoteModel + `","messages":[{"role":"user","content":"hi"}],"system":"x"}`; string(c.Body) != want || c.Path != anthropictest.PathCountTokens {
		t.Errorf("upstream got %s %s", c.Path, c.Body)
	}
	if c.Header.Get("Anthropic-Beta") != "token-counting-2024-11-01" {
		t.Errorf("anthropic-beta %q not passed", c.Header.Get("Anthropic-Beta"))
	}

	s.Reply(anthropictest.Error(404, "not_found_error", "Not found"))
	if _, err := p.CountTokens(context.Background(), req); !errors.Is(err, llmproxy.ErrUnsupported) {
		t.Errorf("404: %v, want llmproxy.ErrUnsupported", err)
	}
	s.Reply(anthropictest.Error(400, "invalid_request_error", "messages: Field required"))
	var e *llmproxy.Error
	if _, err := p.CountTokens(context.Background(), req); !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "messages") {
		t.Errorf("400: %v, want the upstream's 400", err)
	}
	s.Reply(anthropictest.Answer{Body: []byte(`{"tokens":3}`)})
	if _, err := p.CountTokens(context.Background(), req); !errors.As(err, &e) || e.Status != 502 {
		t.Errorf("answer without input_tokens: %v, want a 502", err)
	}
}

// TestNew: endpoints with or without /v1 reach the same paths; bad
// settings are refused naming the setting.
func TestNew(t *testing.T) {
	s := anthropictest.New(t)
	for _, ep := range []string{s.URL, s.URL + "/", s.URL + "/v1", s.URL + "/v1/"} {
		p, err := anthropic.New(llmproxy.Connection{Name: "c", Endpoint: ep, Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}}, llmproxy.ProviderOptions{})
		if err != nil {
			t.Fatalf("%q: %v", ep, err)
		}
		if _, err := p.(*anthropic.Provider).Messages(context.Background(), messagesRequest(false, nil)); err != nil {
			t.Errorf("endpoint %q: %v", ep, err)
		}
		if got := s.LastCall().Path; got != anthropictest.PathMessages {
			t.Errorf("endpoint %q: path %q", ep, got)
		}
	}
	for _, tc := range []struct {
		conn llmproxy.Connection
		want string
	}{
		{llmproxy.Connection{Name: "c", Endpoint: "ftp://x"}, "endpoint"},
		{llmproxy.Connection{Name: "c", Settings: map[string]string{anthropic.SettingDefaultMaxTokens: "0"}}, anthropic.SettingDefaultMaxTokens},
		{llmproxy.Connection{Name: "c", Settings: map[string]string{anthropic.SettingDefaultMaxTokens: "lots"}}, anthropic.SettingDefaultMaxTokens},
	} {
		if _, err := anthropic.New(tc.conn, llmproxy.ProviderOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, llmproxy.ErrInvalid) {
			t.Errorf("New(%v): %v, want an ErrInvalid naming %s", tc.conn.Endpoint, err, tc.want)
		}
	}
	if err := anthropic.Validate(llmproxy.Connection{Name: "c"}); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Errorf("Validate without a key: %v", err)
	}
	if err := anthropic.Validate(llmproxy.Connection{Name: "c", Credentials: llmproxy.Credentials{APIKey: "k"}}); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
