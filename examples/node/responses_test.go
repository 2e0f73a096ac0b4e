package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// responsesKey is the virtual key of the Responses clients' tests, and
// nativeKey the key the Gateway's native connection has upstream.
const (
	responsesKey = "sk-proxy-responses"
	nativeKey    = "sk-upstream-responses"
)

// A respRoute is one way a Responses request can take: "direct" to the
// Responses fake without the Gateway (the baseline that shows the fake
// and the client agree), "native" through the Gateway's openai
// connection to that fake, "native-compatible" through a compatible
// connection set to responses=native, "translated" through a compatible
// connection to a chat-only fake (fakeopenai's chat completions).
type respRoute struct {
	name  string
	alias string // the model the client asks for
}

var respRoutes = []respRoute{
	{name: "direct", alias: nativeRemote},
	{name: "native", alias: "gpt-native"},
	{name: "native-compatible", alias: "gpt-native-compatible"},
	{name: "translated", alias: "gpt-translated"},
}

// native reports whether rt's upstream is the Responses fake.
func (rt respRoute) native() bool { return rt.name != "translated" }

// Remote model names, as the fakes see them.
const (
	nativeRemote     = "gpt-5-codex"
	translatedRemote = "gpt-4o"
)

// responsesGateway is a Gateway with a native and a translated
// connection, each on its fake, and responsesKey allowed on both. What
// it answers on /v1/responses as a stream is recorded raw, so that the
// events every client read can be checked.
type responsesGateway struct {
	URL    string             // the Gateway's root, without /v1
	Native *fakeopenai.Server // its Responses API
	Chat   *fakeopenai.Server // its chat completions

	mu      sync.Mutex
	paths   []string
	streams []*bytes.Buffer
	dropped []string // the X-Llm-Proxy-Dropped-Tools of each answer that had one
}

func newResponsesGateway(t *testing.T) *responsesGateway {
	t.Helper()
	ctx := context.Background()
	g := &responsesGateway{Native: fakeopenai.New(t, nativeKey), Chat: fakeopenai.New(t, upstreamKey)}
	g.Native.Responses.SetHandler(responsesModel(sdkTurn))
	g.Chat.SetAnswer(chatModel(sdkTurn))
	store := memory.New()
	svc := &admin.Service{Storage: store}
	var assignments []llmproxy.Assignment
	for _, c := range []struct {
		conn          llmproxy.Connection
		alias, remote string
	}{
		{llmproxy.Connection{Name: "native", Provider: llmproxy.KindOpenAI, Endpoint: g.Native.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: nativeKey}}, "gpt-native", nativeRemote},
		{llmproxy.Connection{Name: "native-compatible", Provider: llmproxy.KindCompatible, Endpoint: g.Native.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: nativeKey},
			Settings:    map[string]string{openai.SettingResponses: openai.ResponsesNative}}, "gpt-native-compatible", nativeRemote},
		{llmproxy.Connection{Name: "chat-only", Provider: llmproxy.KindCompatible, Endpoint: g.Chat.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: upstreamKey}}, "gpt-translated", translatedRemote},
	} {
		conn := c.conn
		if err := svc.AddConnection(ctx, &conn); err != nil {
			t.Fatal(err)
		}
		if err := svc.AddModel(ctx, &llmproxy.Model{Name: c.alias, Remote: c.remote, ConnectionID: conn.ID}); err != nil {
			t.Fatal(err)
		}
		assignments = append(assignments, llmproxy.Assignment{ConnectionID: conn.ID})
	}
	if _, err := svc.AddKey(ctx, &llmproxy.VirtualKey{Name: "responses-clients", Assignments: assignments}, responsesKey); err != nil {
		t.Fatal(err)
	}
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{
		llmproxy.KindOpenAI: openai.New, llmproxy.KindCompatible: openai.New}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.paths = append(g.paths, r.Method+" "+r.URL.Path)
		g.mu.Unlock()
		if r.URL.Path != "/v1/responses" {
			gw.ServeHTTP(w, r)
			return
		}
		gw.ServeHTTP(&teeWriter{ResponseWriter: w, g: g}, r)
		if d := w.Header().Get("X-Llm-Proxy-Dropped-Tools"); d != "" {
			g.mu.Lock()
			g.dropped = append(g.dropped, d)
			g.mu.Unlock()
		}
	}))
	t.Cleanup(func() { srv.Close(); gw.Close() })
	g.URL = srv.URL
	return g
}

// baseURL is where a client of rt sends its requests (ending in /v1).
func (g *responsesGateway) baseURL(rt respRoute) string {
	if rt.name == "direct" {
		return g.Native.BaseURL()
	}
	return g.URL + "/v1"
}

// key is the key a client of rt sends.
func (g *responsesGateway) key(rt respRoute) string {
	if rt.name == "direct" {
		return nativeKey
	}
	return responsesKey
}

// Paths returns the method and path of every request the Gateway got.
func (g *responsesGateway) Paths() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.paths...)
}

// Dropped returns the X-Llm-Proxy-Dropped-Tools headers the Gateway
// answered so far.
func (g *responsesGateway) Dropped() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.dropped...)
}

// Streams returns the raw event streams the Gateway answered on
// /v1/responses so far.
func (g *responsesGateway) Streams() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out [][]byte
	for _, b := range g.streams {
		out = append(out, bytes.Clone(b.Bytes()))
	}
	return out
}

// upstreamCalls returns how many calls rt's fake has received.
func (g *responsesGateway) upstreamCalls(rt respRoute) int {
	if rt.name == "translated" {
		return len(g.Chat.Requests())
	}
	return len(g.Native.Requests())
}

// A teeWriter records what the Gateway streams to a client.
type teeWriter struct {
	http.ResponseWriter
	g   *responsesGateway
	buf *bytes.Buffer // nil until a stream starts
}

func (w *teeWriter) Write(p []byte) (int, error) {
	if w.buf == nil && strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		w.buf = &bytes.Buffer{}
		w.g.mu.Lock()
		w.g.streams = append(w.g.streams, w.buf)
		w.g.mu.Unlock()
	}
	if w.buf != nil {
		w.g.mu.Lock()
		w.buf.Write(p)
		w.g.mu.Unlock()
	}
	return w.ResponseWriter.Write(p)
}

func (w *teeWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the real writer.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// An sseEvent is one server-sent event: its event: name and its data.
type sseEvent struct {
	name string
	data []byte
}

// parseSSE splits a raw event stream into events.
func parseSSE(raw []byte) []sseEvent {
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != nil || cur.name != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event:"):
			cur.name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			cur.data = append(cur.data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	if cur.data != nil {
		events = append(events, cur)
	}
	return events
}

// checkStreams checks every event stream given: with
// translate.CheckResponsesEvents (the order of items, parts and deltas,
// sequence_numbers), and the framing clients rely on (see checkEvents).
func checkStreams(t *testing.T, streams [][]byte) {
	t.Helper()
	for i, raw := range streams {
		events := parseSSE(raw)
		err := checkEvents(events)
		if err == nil {
			var data [][]byte
			for _, e := range events {
				data = append(data, e.data)
			}
			err = translate.CheckResponsesEvents(data)
		}
		if err != nil {
			t.Errorf("stream %d: %v\n%s", i, err, raw)
		}
	}
}

// checkEvents checks a stream's framing: each event named as its data's
// type, sequence_numbers strictly increasing, one terminal event last.
func checkEvents(events []sseEvent) error {
	last := -1
	for i, e := range events {
		var d struct {
			Type string `json:"type"`
			Seq  *int   `json:"sequence_number"`
		}
		if err := json.Unmarshal(e.data, &d); err != nil {
			return fmt.Errorf("event %d: %v: %s", i, err, e.data)
		}
		if e.name != d.Type {
			return fmt.Errorf("event %d: named %q, type %q", i, e.name, d.Type)
		}
		if d.Seq == nil || *d.Seq <= last {
			return fmt.Errorf("event %d (%s): sequence_number %v after %d", i, d.Type, d.Seq, last)
		}
		last = *d.Seq
		terminal := d.Type == "response.completed" || d.Type == "response.incomplete" || d.Type == "response.failed"
		if terminal != (i == len(events)-1) {
			return fmt.Errorf("event %d of %d is %s", i, len(events), d.Type)
		}
	}
	if len(events) == 0 {
		return fmt.Errorf("no events")
	}
	return nil
}

// chatModel plays model on the Chat Completions fake: a text answer, or
// one tool call (see chatToolCall).
func chatModel(model func(turnInput) fakeTurn) func(fakeopenai.Request) *fakeopenai.Answer {
	return func(r fakeopenai.Request) *fakeopenai.Answer {
		in, err := readChatInput(r.Body)
		if err != nil {
			return fakeopenai.ErrorAnswer(http.StatusBadRequest, err.Error())
		}
		tr := model(in)
		if tr.name != "" {
			return chatToolCall(r, "call_fake_1", tr.name, tr.args)
		}
		return fakeopenai.ChatAnswer(r, tr.text, 100, len(strings.Fields(tr.text)))
	}
}

// runNode runs a Node script of this directory with args against rt,
// within a minute, and returns its output lines.
func (g *responsesGateway) runNode(t *testing.T, rt respRoute, script string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "LLM_PROXY_BASE_URL="+g.baseURL(rt), "LLM_PROXY_KEY="+g.key(rt), "LLM_PROXY_MODEL="+rt.alias)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s %s: %v\n%s\n%s", script, strings.Join(args, " "), err, out, g.describe(rt))
	}
	t.Logf("%s printed:\n%s", script, out)
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// describe summarizes what rt's upstream got, for a failure's log.
func (g *responsesGateway) describe(rt respRoute) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the Gateway got: %q\n", g.Paths())
	if rt.name == "translated" {
		for i, r := range g.Chat.Requests() {
			fmt.Fprintf(&b, "chat upstream call %d: %s %s\n", i, r.Path, clip(r.Body))
		}
		return b.String()
	}
	for i, c := range g.Native.Requests() {
		fmt.Fprintf(&b, "responses upstream call %d: %s %s\n", i, c.Path, clip(c.Body))
	}
	return b.String()
}

// clip shortens a body for a log: its head has the settings, its tail
// the latest turns.
func clip(body []byte) string {
	if len(body) <= 1500 {
		return string(body)
	}
	return string(body[:500]) + " … " + string(body[len(body)-1000:])
}

// matchLines checks that lines match want, one by one; a pattern with
// two groups must capture the same text twice (the tool's argument comes
// back in its answer).
func matchLines(t *testing.T, lines []string, want []*regexp.Regexp) {
	t.Helper()
	if len(lines) != len(want) {
		t.Fatalf("printed %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, re := range want {
		m := re.FindStringSubmatch(lines[i])
		if m == nil || (len(m) == 3 && m[1] != m[2]) {
			t.Errorf("line %d: %q, want %s", i+1, lines[i], re)
		}
	}
}

// The official Node SDK's responses.create and responses.stream, plain
// and with a function-call round trip, through each route.
func TestResponsesNodeSDK(t *testing.T) {
	install(t)
	g := newResponsesGateway(t)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^plain: You said: Say hello \(in: [1-9][0-9]*, out: [1-9][0-9]*\)$`),
		regexp.MustCompile(`^stream: You said: Say hello \(in: [1-9][0-9]*, out: [1-9][0-9]*\)$`),
		regexp.MustCompile(`^tool-create: get_weather\(\{"city":"(\w+)"\}\) -> The tool said: Sunny, 22 C in (\w+) \[completed\]$`),
		regexp.MustCompile(`^tool-stream: get_weather\(\{"city":"(\w+)"\}\) -> The tool said: Sunny, 22 C in (\w+) \[completed\]$`),
	}
	for _, rt := range respRoutes {
		t.Run(rt.name, func(t *testing.T) {
			before, streams := g.upstreamCalls(rt), len(g.Streams())
			matchLines(t, g.runNode(t, rt, "responses.mjs"), want)
			if n := g.upstreamCalls(rt) - before; n != 6 {
				t.Errorf("the upstream got %d calls, want 6", n)
			}
			got := g.Streams()[streams:]
			if rt.name != "direct" && len(got) != 3 {
				t.Errorf("the Gateway answered %d streams, want 3", len(got))
			}
			checkStreams(t, got)
		})
	}
}

// A three-turn conversation through the translated route with the Node
// SDK: the second turn (streamed) and the third continue the previous
// ones through previous_response_id, and the chat-only upstream sees
// the whole history each time; the response is read back, deleted, and
// is gone.
func TestResponsesConversation(t *testing.T) {
	install(t)
	g := newResponsesGateway(t)
	rt := respRoutes[3]
	before, streams := len(g.Chat.Requests()), len(g.Streams())
	matchLines(t, g.runNode(t, rt, "responses.mjs", "conversation"), []*regexp.Regexp{
		regexp.MustCompile(`^turn 1: You said: My name is Ada\. \(in: [1-9][0-9]*, out: [1-9][0-9]*\)$`),
		regexp.MustCompile(`^turn 2: You said: What is my name\? \[continues turn 1: true\]$`),
		regexp.MustCompile(`^turn 3: You said: Thanks\. \[continues turn 2: true\]$`),
		regexp.MustCompile(`^retrieve: true You said: Thanks\.$`),
		regexp.MustCompile(`^after delete: 404$`),
	})
	reqs := g.Chat.Requests()[before:]
	if len(reqs) != 3 {
		t.Fatalf("the upstream got %d calls, want 3\n%s", len(reqs), g.describe(rt))
	}
	// Each turn's request holds the turns before it, in order.
	history := []string{"user: My name is Ada.", "assistant: You said: My name is Ada.",
		"user: What is my name?", "assistant: You said: What is my name?", "user: Thanks."}
	for i, r := range reqs {
		var req struct {
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		json.Unmarshal(r.Body, &req)
		var got []string
		for _, m := range req.Messages {
			got = append(got, m.Role+": "+contentText(m.Content))
		}
		if want := history[:2*i+1]; !slices.Equal(got, want) {
			t.Errorf("turn %d: the upstream got the messages\n%q\nwant\n%q", i+1, got, want)
		}
	}
	checkStreams(t, g.Streams()[streams:])
}
