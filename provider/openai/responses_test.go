package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
)

// responder builds an OpenAI connection's provider to fake, as a
// Responder.
func responder(t *testing.T, fake *fakeopenai.Server, client *http.Client) llmproxy.Responder {
	t.Helper()
	p, err := openai.New(llmproxy.Connection{Name: "conn", Provider: llmproxy.KindOpenAI, Endpoint: fake.BaseURL(),
		Credentials: llmproxy.Credentials{APIKey: upstreamKey}}, llmproxy.ProviderOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := p.(llmproxy.Responder)
	if !ok {
		t.Fatal("the openai provider is not a Responder")
	}
	return r
}

func responsesRequest(body string, stream bool) *llmproxy.Request {
	return &llmproxy.Request{Body: []byte(body), Model: "alias", RemoteModel: "gpt-remote", Stream: stream,
		Endpoint: llmproxy.EndpointResponses, Header: http.Header{"X-Codex-Turn-Metadata": {"secret-ish"}}}
}

func TestNativeResponsesSetting(t *testing.T) {
	for _, tc := range []struct {
		kind, setting string
		want          bool
		bad           bool
	}{
		{llmproxy.KindOpenAI, "", true, false},
		{llmproxy.KindOpenAI, "auto", true, false},
		{llmproxy.KindOpenAI, "translate", false, false},
		{llmproxy.KindCompatible, "", false, false},
		{llmproxy.KindCompatible, "native", true, false},
		{llmproxy.KindCompatible, "translate", false, false},
		{llmproxy.KindGoogle, "", false, false},
		{llmproxy.KindGoogle, "native", false, true},
		{llmproxy.KindCompatible, "Native", false, true},
		{llmproxy.KindOpenAI, "yes", false, true},
	} {
		conn := llmproxy.Connection{Name: "c", Provider: tc.kind, Endpoint: "http://127.0.0.1:1/v1"}
		if tc.setting != "" {
			conn.Settings = map[string]string{openai.SettingResponses: tc.setting}
		}
		p, err := openai.New(conn, llmproxy.ProviderOptions{})
		if tc.bad {
			if !errors.Is(err, llmproxy.ErrInvalid) || !strings.Contains(err.Error(), openai.SettingResponses) || !strings.Contains(err.Error(), tc.setting) {
				t.Errorf("%s %s=%q: error %v, want one naming the setting and wrapping ErrInvalid", tc.kind, openai.SettingResponses, tc.setting, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %q: %v", tc.kind, tc.setting, err)
		}
		if got := p.(llmproxy.Responder).NativeResponses("any-model"); got != tc.want {
			t.Errorf("%s %s=%q: NativeResponses %v, want %v", tc.kind, openai.SettingResponses, tc.setting, got, tc.want)
		}
	}
}

// TestResponsesPassthrough: the body reaches the upstream byte for byte
// but for "model" (no stream_options on a stream), with the connection's
// key and none of the client's headers; the answer comes back as it is.
func TestResponsesPassthrough(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	p := responder(t, fake, nil)
	const tmpl = `{ "model" : "MODEL", "input":[{"role":"user","content":"hi \u00e9"}],"store":false,` +
		`"include":["reasoning.encrypted_content"],"prompt_cache_key":"k","x_future_field":{"n":[1,2.50]}STREAM }`
	for _, stream := range []bool{false, true} {
		extra := ""
		if stream {
			extra = `,"stream":true`
		}
		body := strings.Replace(strings.Replace(tmpl, "STREAM", extra, 1), "MODEL", "alias", 1)
		res, err := p.Responses(context.Background(), responsesRequest(body, stream))
		if err != nil {
			t.Fatal(err)
		}
		got := fake.Last()
		if want := strings.Replace(body, `"alias"`, `"gpt-remote"`, 1); string(got.Body) != want {
			t.Fatalf("stream %v: upstream body\n%s\nwant\n%s", stream, got.Body, want)
		}
		if got.Path != "/v1/responses" || got.Header.Get("Authorization") != "Bearer "+upstreamKey || got.Header.Get("X-Codex-Turn-Metadata") != "" {
			t.Fatalf("upstream request %s %v", got.Path, got.Header)
		}
		if res.Header.Get("X-Request-Id") != fakeopenai.RequestID {
			t.Fatalf("answer headers %v", res.Header)
		}
		if !stream {
			var r struct {
				Object string
				Model  string
				Usage  struct {
					InputTokens int64 `json:"input_tokens"`
				}
			}
			if err := json.Unmarshal(res.Body, &r); err != nil || r.Object != "response" || r.Model != "gpt-remote" || r.Usage.InputTokens != fakeopenai.PromptTokens {
				t.Fatalf("body %s: %v", res.Body, err)
			}
			continue
		}
		types := readAll(t, res.Stream)
		if types[0] != "response.created" || types[len(types)-1] != "response.completed" {
			t.Fatalf("stream events %v", types)
		}
	}
}

// readAll reads a Responses stream to its end, checking sequence
// numbers, and returns the event types.
func readAll(t *testing.T, st llmproxy.EventStream) []string {
	t.Helper()
	defer st.Close()
	var types []string
	for {
		d, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %v: %v", types, err)
		}
		var e struct {
			Type string
			Seq  int `json:"sequence_number"`
		}
		if err := json.Unmarshal(d, &e); err != nil || e.Seq != len(types) {
			t.Fatalf("event %s: %v", d, err)
		}
		types = append(types, e.Type)
	}
	if _, err := st.Next(); err != io.EOF {
		t.Fatalf("Next after the end: %v", err)
	}
	return types
}

// TestResponsesRequestInOneWrite: head and body leave together.
func TestResponsesRequestInOneWrite(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	var writes atomic.Int64
	tr := llmproxy.NewTransport()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return countingConn{c, &writes}, err
	}
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()
	p := responder(t, fake, client)
	for i := range 3 {
		before := writes.Load()
		res, err := p.Responses(context.Background(), responsesRequest(`{"model":"alias","input":"hi"}`, false))
		if err != nil || res.Body == nil {
			t.Fatal(err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("call %d took %d writes, want 1", i+1, n)
		}
	}
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestResponsesStreamEventByEvent: the first event is returned while the
// upstream holds the second; Close then ends the upstream call.
func TestResponsesStreamEventByEvent(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	fake.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Text: "one two", StallAfter: 1}
	})
	p := responder(t, fake, nil)
	res, err := p.Responses(context.Background(), responsesRequest(`{"model":"alias","input":"hi","stream":true}`, true))
	if err != nil {
		t.Fatal(err)
	}
	d, err := res.Stream.Next()
	if err != nil || !strings.Contains(string(d), `"type":"response.created"`) {
		t.Fatalf("first event %s, %v", d, err)
	}
	if r, ok := res.Stream.(llmproxy.ReadyStream); !ok || r.Ready() {
		t.Fatalf("ReadyStream %v, Ready with nothing sent", ok)
	}
	if b, ok := res.Stream.(llmproxy.BufferedStream); !ok || b.Buffered() != 0 {
		t.Fatal("not a BufferedStream, or something buffered")
	}
	res.Stream.Close()
	select {
	case <-fake.Last().Done:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call went on after Close")
	}
	if _, err := res.Stream.Next(); err != io.EOF {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestResponsesCancelMidStream(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	fake.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Text: "one two", StallAfter: 2}
	})
	p := responder(t, fake, nil)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := p.Responses(ctx, responsesRequest(`{"model":"alias","input":"hi","stream":true}`, true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	for range 2 {
		if _, err := res.Stream.Next(); err != nil {
			t.Fatal(err)
		}
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := res.Stream.Next(); err == nil || err == io.EOF {
		t.Fatalf("Next after cancel: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Next did not return promptly after cancel")
	}
	select {
	case <-fake.Last().Done:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call went on after cancel")
	}
}

// TestResponsesStreamEndings: every terminal event is returned, then
// io.EOF; an error event is an *llmproxy.Error with the upstream's
// message and a status from its code; a cut stream is an error.
func TestResponsesStreamEndings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		turn   fakeopenai.Turn
		last   string // the last event's type, for a stream that ends well
		status int    // the error's status, for one that does not
		code   string
	}{
		{"completed", fakeopenai.Turn{Text: "a b"}, "response.completed", 0, ""},
		{"incomplete", fakeopenai.Turn{Text: "a b", Incomplete: "max_output_tokens"}, "response.incomplete", 0, ""},
		{"failed", fakeopenai.Turn{FailCode: "server_error", FailMessage: "x"}, "response.failed", 0, ""},
		{"rate limited", fakeopenai.Turn{Text: "a b", ErrorAfter: 3, ErrorCode: "rate_limit_exceeded", ErrorMessage: "slow down"}, "", 429, "rate_limit_exceeded"},
		{"invalid", fakeopenai.Turn{Text: "a b", ErrorAfter: 2, ErrorCode: "invalid_prompt", ErrorMessage: "not allowed"}, "", 400, "invalid_prompt"},
		{"server", fakeopenai.Turn{Text: "a b", ErrorAfter: 4, ErrorCode: "server_error", ErrorMessage: "boom"}, "", 502, "server_error"},
		{"cut", fakeopenai.Turn{Text: "a b", CutAfter: 3}, "", 502, "upstream_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakeopenai.New(t, upstreamKey)
			turn := tc.turn
			fake.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn { return &turn })
			res, err := responder(t, fake, nil).Responses(context.Background(), responsesRequest(`{"model":"alias","input":"hi","stream":true}`, true))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Stream.Close()
			var last string
			n := 0
			for {
				d, err := res.Stream.Next()
				if err == io.EOF && tc.last != "" {
					break
				}
				if err != nil {
					var e *llmproxy.Error
					if tc.status == 0 || !errors.As(err, &e) || e.Status != tc.status || e.Code != tc.code {
						t.Fatalf("after %d events: %v (%+v)", n, err, e)
					}
					if tc.turn.ErrorMessage != "" && (e.Message != tc.turn.ErrorMessage || n != tc.turn.ErrorAfter) {
						t.Fatalf("error %q after %d events", e.Message, n)
					}
					return
				}
				n++
				var ev struct{ Type string }
				json.Unmarshal(d, &ev)
				last = ev.Type
			}
			if last != tc.last {
				t.Fatalf("last event %s, want %s", last, tc.last)
			}
		})
	}
}

// TestResponsesErrors: error answers before a stream, mapped as for chat
// but with the upstream's code kept for request errors.
func TestResponsesErrors(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	p := responder(t, fake, nil)
	call := func(body string) *llmproxy.Error {
		t.Helper()
		_, err := p.Responses(context.Background(), responsesRequest(body, false))
		var e *llmproxy.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: error %v is not an *llmproxy.Error", body, err)
		}
		return e
	}
	e := call(`{"model":"alias","input":"x","previous_response_id":"resp_unknown"}`)
	if e.Status != 400 || e.Code != "previous_response_not_found" || e.Param != "previous_response_id" || !strings.Contains(e.Message, "resp_unknown") {
		t.Fatalf("unknown previous response: %+v", e)
	}
	fake.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		a := fakeopenai.ErrorAnswer(429, "too fast")
		a.Header = http.Header{"Retry-After": {"3"}}
		return &fakeopenai.Turn{Error: a}
	})
	if e := call(`{"model":"alias","input":"x"}`); e.Status != 429 || e.RetryAfter != 3*time.Second {
		t.Fatalf("429: %+v", e)
	}
	fake.Responses.SetHandler(func(*fakeopenai.ResponsesRequest) *fakeopenai.Turn {
		return &fakeopenai.Turn{Error: fakeopenai.ErrorAnswer(404, "The model `gpt-remote` does not exist")}
	})
	if e := call(`{"model":"alias","input":"x"}`); e.Status != 502 {
		t.Fatalf("404 on create: %+v", e)
	}
	fake.APIKey = "another-key"
	if e := call(`{"model":"alias","input":"x"}`); e.Status != 502 || strings.Contains(e.Message, "Incorrect API key") {
		t.Fatalf("refused key: %+v", e)
	}
	if _, err := p.Responses(context.Background(), &llmproxy.Request{Body: []byte(`{"model":"a"}`), RemoteModel: "m"}); err == nil {
		t.Fatal("Responses accepted a request for the chat endpoint")
	}
}

func TestResponseResource(t *testing.T) {
	fake := fakeopenai.New(t, upstreamKey)
	p := responder(t, fake, nil)
	ctx := context.Background()
	res, err := p.Responses(ctx, responsesRequest(`{"model":"alias","input":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`, false))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.Unmarshal(res.Body, &created)

	got, err := p.ResponseResource(ctx, "GET", created.ID, "")
	if err != nil || string(got.Body) != string(res.Body) || got.Header.Get("X-Request-Id") != fakeopenai.RequestID {
		t.Fatalf("GET: %s %v", got.Body, err)
	}
	if r := fake.Last(); r.Path != "/v1/responses/"+created.ID || r.Header.Get("Authorization") != "Bearer "+upstreamKey || len(r.Body) != 0 {
		t.Fatalf("upstream GET %s %v %q", r.Path, r.Header, r.Body)
	}
	items, err := p.ResponseResource(ctx, "GET", created.ID+"/input_items", "order=asc&limit=1")
	var list struct {
		Data    []json.RawMessage
		HasMore bool `json:"has_more"`
	}
	if err != nil || json.Unmarshal(items.Body, &list) != nil || len(list.Data) != 1 || !list.HasMore {
		t.Fatalf("input_items: %s %v", items.Body, err)
	}
	del, err := p.ResponseResource(ctx, "DELETE", created.ID, "")
	if err != nil || !strings.Contains(string(del.Body), `"deleted":true`) {
		t.Fatalf("DELETE: %s %v", del.Body, err)
	}
	for _, path := range []string{created.ID, created.ID + "/input_items"} {
		_, err := p.ResponseResource(ctx, "GET", path, "")
		var e *llmproxy.Error
		if !errors.As(err, &e) || e.Status != 404 || !strings.Contains(e.Message, created.ID) {
			t.Fatalf("GET %s after DELETE: %v", path, err)
		}
	}

	for _, tc := range []struct {
		method, path, query string
		status              int
	}{
		{"GET", "", "", 404},
		{"GET", "..", "", 404},
		{"GET", "resp_1/cancel", "", 404},
		{"GET", "resp_1/input_items/x", "", 404},
		{"DELETE", "resp_1/input_items", "", 405},
		{"POST", "resp_1", "", 405},
		{"GET", "resp_1", "stream=true", 400},
	} {
		_, err := p.ResponseResource(ctx, tc.method, tc.path, tc.query)
		var e *llmproxy.Error
		if !errors.As(err, &e) || e.Status != tc.status {
			t.Errorf("%s %q ?%s: %v, want status %d", tc.method, tc.path, tc.query, err, tc.status)
		}
	}
	// An id is one path segment, escaped.
	if _, err := p.ResponseResource(ctx, "GET", "a b?c", ""); err == nil {
		t.Fatal("unknown id found")
	}
	if r := fake.Last(); r.Path != "/v1/responses/a b?c" {
		t.Fatalf("escaped id reached the upstream as %q", r.Path)
	}
	fake.APIKey = "another-key"
	_, err = p.ResponseResource(ctx, "GET", created.ID, "")
	var e *llmproxy.Error
	if !errors.As(err, &e) || e.Status != 502 {
		t.Fatalf("refused key on GET: %v", err)
	}
}
