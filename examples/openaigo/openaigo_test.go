// Package openaigo_test runs OpenAI's official Go SDK
// (github.com/openai/openai-go/v3) against a real Gateway serving the
// Responses API: Responses.New and Responses.NewStreaming, plain and
// with a function-call round trip, through a native connection (the
// upstream speaks the Responses API) and a translated one (a chat-only
// upstream), beside the same calls straight to the Responses fake (the
// baseline). The streams are also read raw and checked event by event.
package openaigo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
	openaiprovider "github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const (
	key         = "sk-proxy-openai-go"    // the virtual key
	nativeKey   = "sk-upstream-responses" // the native connection's key upstream
	upstreamKey = "sk-upstream-chat-only" // the translated connection's key upstream
	callTimeout = 20 * time.Second        // bounds every SDK call
	paris       = `Sunny, 22 C in Paris`  // what the tool answers
	question    = "What is the weather in Paris?"
)

// A route is a way to the fake model: "direct" to fakeopenai's
// Responses API, "native" through the Gateway's openai connection to
// it, "native-compatible" through a compatible connection set to
// responses=native, "translated" through a compatible connection to a
// chat-only fake (fakeopenai's chat completions).
type route struct {
	name   string
	alias  string // the model the client asks for
	remote string // the model the upstream sees
}

var routes = []route{
	{name: "direct", alias: "gpt-5-codex", remote: "gpt-5-codex"},
	{name: "native", alias: "gpt-native", remote: "gpt-5-codex"},
	{name: "native-compatible", alias: "gpt-native-compatible", remote: "gpt-5-codex"},
	{name: "translated", alias: "gpt-translated", remote: "gpt-4o"},
}

// env is a Gateway and the routes' fakes.
type env struct {
	gateway string             // the Gateway's root URL
	native  *fakeopenai.Server // its Responses API, with its default model
	chat    *fakeopenai.Server // its chat completions, with its default model
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{native: fakeopenai.New(t, nativeKey), chat: fakeopenai.New(t, upstreamKey)}
	store := memory.New()
	svc := &admin.Service{Storage: store}
	var assignments []llmproxy.Assignment
	for _, c := range []struct {
		conn llmproxy.Connection
		rt   route
	}{
		{llmproxy.Connection{Name: "native", Provider: llmproxy.KindOpenAI, Endpoint: e.native.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: nativeKey}}, routes[1]},
		{llmproxy.Connection{Name: "native-compatible", Provider: llmproxy.KindCompatible, Endpoint: e.native.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: nativeKey},
			Settings:    map[string]string{openaiprovider.SettingResponses: openaiprovider.ResponsesNative}}, routes[2]},
		{llmproxy.Connection{Name: "chat-only", Provider: llmproxy.KindCompatible, Endpoint: e.chat.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: upstreamKey}}, routes[3]},
	} {
		conn := c.conn
		if err := svc.AddConnection(ctx, &conn); err != nil {
			t.Fatal(err)
		}
		if err := svc.AddModel(ctx, &llmproxy.Model{Name: c.rt.alias, Remote: c.rt.remote, ConnectionID: conn.ID}); err != nil {
			t.Fatal(err)
		}
		assignments = append(assignments, llmproxy.Assignment{ConnectionID: conn.ID})
	}
	if _, err := svc.AddKey(ctx, &llmproxy.VirtualKey{Name: "openai-go", Assignments: assignments}, key); err != nil {
		t.Fatal(err)
	}
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{
		llmproxy.KindOpenAI: openaiprovider.New, llmproxy.KindCompatible: openaiprovider.New}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	e.gateway = srv.URL
	return e
}

// base is where rt's client sends its requests (ending in /v1), and
// apiKey the key it sends.
func (e *env) base(rt route) string {
	if rt.name == "direct" {
		return e.native.BaseURL()
	}
	return e.gateway + "/v1"
}

func (e *env) apiKey(rt route) string {
	if rt.name == "direct" {
		return nativeKey
	}
	return key
}

// calls returns how many calls rt's upstream has received.
func (e *env) calls(rt route) int {
	if rt.name == "translated" {
		return len(e.chat.Requests())
	}
	return len(e.native.Requests())
}

// The SDK's Responses.New and Responses.NewStreaming through each
// route: a plain answer and a function-call round trip each, and the
// raw streams checked.
func TestResponses(t *testing.T) {
	e := newEnv(t)
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			c := openai.NewClient(option.WithBaseURL(e.base(rt)), option.WithAPIKey(e.apiKey(rt)), option.WithMaxRetries(0))
			for _, stream := range []bool{false, true} {
				name := map[bool]string{false: "New", true: "NewStreaming"}[stream]
				t.Run(name, func(t *testing.T) {
					before := e.calls(rt)
					res := ask(t, c, stream, responses.ResponseNewParams{Model: rt.alias,
						Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")}})
					if want := fakeopenai.Reply(rt.remote, "Say hello"); res.OutputText() != want || res.Status != responses.ResponseStatusCompleted {
						t.Errorf("answer %q (%s), want %q (completed)", res.OutputText(), res.Status, want)
					}
					if res.Usage.InputTokens <= 0 || res.Usage.OutputTokens <= 0 {
						t.Errorf("usage %+v", res.Usage)
					}
					roundTrip(t, c, rt, stream)
					if n := e.calls(rt) - before; n != 3 {
						t.Errorf("the upstream got %d calls, want 3", n)
					}
				})
			}
			t.Run("raw", func(t *testing.T) { rawStreams(t, e, rt) })
		})
	}
}

// ask sends params with Responses.New, or with Responses.NewStreaming
// (then the text deltas must add up to the completed response's text),
// and returns the response.
func ask(t *testing.T, c openai.Client, stream bool, params responses.ResponseNewParams) *responses.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if !stream {
		res, err := c.Responses.New(ctx, params)
		if err != nil {
			t.Fatalf("Responses.New: %v", err)
		}
		return res
	}
	s := c.Responses.NewStreaming(ctx, params)
	defer s.Close()
	var text strings.Builder
	var final *responses.Response
	for s.Next() {
		switch ev := s.Current(); ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			res := ev.AsResponseCompleted().Response
			final = &res
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Responses.NewStreaming: %v", err)
	}
	if final == nil {
		t.Fatal("Responses.NewStreaming: no response.completed event")
	}
	if final.OutputText() != text.String() {
		t.Errorf("stream: deltas %q, completed response %q", text.String(), final.OutputText())
	}
	return final
}

// weather is the function tool of the round trips.
var weather = responses.ToolParamOfFunction("get_weather", map[string]any{
	"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}},
	"required": []string{"city"}, "additionalProperties": false,
}, true)

// roundTrip asks a question the model answers with a get_weather call,
// sends the call and the tool's output back, and checks the answer
// quotes the output.
func roundTrip(t *testing.T, c openai.Client, rt route, stream bool) {
	t.Helper()
	input := responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage(question, responses.EasyInputMessageRoleUser)}
	params := func() responses.ResponseNewParams {
		return responses.ResponseNewParams{Model: rt.alias, Tools: []responses.ToolUnionParam{weather},
			Input: responses.ResponseNewParamsInputUnion{OfInputItemList: input}}
	}
	first := ask(t, c, stream, params())
	var call *responses.ResponseFunctionToolCall
	for _, item := range first.Output {
		if item.Type == "function_call" {
			fc := item.AsFunctionCall()
			call = &fc
		}
	}
	if call == nil {
		t.Fatalf("no function_call in %s", first.RawJSON())
	}
	var args struct {
		City string `json:"city"`
	}
	if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil || call.Name != "get_weather" || call.CallID == "" {
		t.Fatalf("function_call %s(%s) call_id %q: %v", call.Name, call.Arguments, call.CallID, err)
	}
	output := responses.ResponseInputItemParamOfFunctionCallOutput("Sunny, 22 C in " + args.City)
	output.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	fc := call.ToParam()
	input = append(input, responses.ResponseInputItemUnionParam{OfFunctionCall: &fc}, output)
	final := ask(t, c, stream, params())
	if want := "The tool said: " + paris; final.OutputText() != want {
		t.Errorf("after the tool: %q, want %q", final.OutputText(), want)
	}
}

// rawStreams reads streams as they come over the wire, a plain answer's
// and a function call's, and checks each event by event.
func rawStreams(t *testing.T, e *env, rt route) {
	for _, body := range []string{
		`{"model":"` + rt.alias + `","input":"Say hello","stream":true}`,
		`{"model":"` + rt.alias + `","input":"` + question + `","stream":true,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, e.base(rt)+"/responses", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.apiKey(rt))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("%s: %d %s, %v\n%s", body, resp.StatusCode, resp.Header.Get("Content-Type"), err, raw)
		}
		if err := checkStream(raw); err != nil {
			t.Errorf("%s: %v\n%s", body, err, raw)
		}
	}
}

// checkStream checks a raw Responses stream: each event's "event:"
// name is its data's type, then translate.CheckResponsesEvents (order
// of items, parts and deltas, sequence_numbers, one terminal event).
func checkStream(raw []byte) error {
	var data [][]byte
	for _, block := range bytes.Split(bytes.TrimSpace(raw), []byte("\n\n")) {
		var name string
		var d []byte
		for _, line := range bytes.Split(block, []byte("\n")) {
			switch {
			case bytes.HasPrefix(line, []byte("event: ")):
				name = string(line[len("event: "):])
			case bytes.HasPrefix(line, []byte("data: ")):
				d = line[len("data: "):]
			}
		}
		var ev struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(d, &ev); err != nil || ev.Type != name {
			return fmt.Errorf("event %q with data %s (%v)", name, d, err)
		}
		data = append(data, d)
	}
	return translate.CheckResponsesEvents(data)
}
