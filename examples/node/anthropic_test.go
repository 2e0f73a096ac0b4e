package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// messagesKey is the virtual key of the Messages clients' tests.
const messagesKey = "sk-proxy-messages"

// A route is one way a Messages request can take through the Gateway:
// a connection kind, and the aliases of a main and a small model on it.
type route struct {
	name  string // "anthropic", "translated", "bedrock"
	alias string // the main model
	small string // the small model (Claude Code's background calls)
}

// routes are the three ways through the Gateway that issue 14 checks:
// (a) an anthropic connection, passed through; (b) an OpenAI-compatible
// one, translated to Chat Completions and back; (c) Bedrock's native
// InvokeModel for Anthropic models.
var routes = []route{
	{name: "anthropic", alias: "claude", small: "claude-small"},
	{name: "translated", alias: "gpt", small: "gpt-small"},
	{name: "bedrock", alias: "claude-bedrock", small: "claude-bedrock-small"},
}

// messagesGateway is a Gateway with one connection per route, each on
// its fake upstream, and messagesKey allowed on all of them. Requests
// to the Gateway are recorded (paths).
type messagesGateway struct {
	URL       string // the Gateway's root, without /v1 (ANTHROPIC_BASE_URL)
	Anthropic *anthropictest.Server
	OpenAI    *fakeopenai.Server
	Bedrock   *bedrocktest.Server

	mu    sync.Mutex
	paths []string
}

// Remote model names, as the fakes see them.
const (
	anthropicMain  = "claude-sonnet-4-5"
	anthropicHaiku = "claude-haiku-4-5"
	openaiMain     = "gpt-4o"
	openaiSmall    = "gpt-4o-mini"
	bedrockMain    = "anthropic.claude-sonnet-4-5-20250929-v1:0"
	bedrockSmall   = "anthropic.claude-haiku-4-5-20251001-v1:0"
)

func newMessagesGateway(t *testing.T) *messagesGateway {
	t.Helper()
	ctx := context.Background()
	g := &messagesGateway{Anthropic: anthropictest.New(t), OpenAI: fakeopenai.New(t, upstreamKey), Bedrock: bedrocktest.NewServer()}
	g.Bedrock.SecretAccessKey = "fake-secret" // the fake checks SigV4 signatures
	g.Bedrock.Latency = 5 * time.Millisecond
	t.Cleanup(g.Bedrock.Close)

	store := memory.New()
	svc := &admin.Service{Storage: store}
	conns := []struct {
		conn            llmproxy.Connection
		models          [2]string // remote names of the main and small model
		alias, smallAls string
	}{
		{llmproxy.Connection{Name: "anthropic", Provider: llmproxy.KindAnthropic, Endpoint: g.Anthropic.URL,
			Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}},
			[2]string{anthropicMain, anthropicHaiku}, "claude", "claude-small"},
		{llmproxy.Connection{Name: "compat", Provider: llmproxy.KindCompatible, Endpoint: g.OpenAI.BaseURL(),
			Credentials: llmproxy.Credentials{APIKey: upstreamKey}},
			[2]string{openaiMain, openaiSmall}, "gpt", "gpt-small"},
		{llmproxy.Connection{Name: "bedrock", Provider: llmproxy.KindBedrock, Endpoint: g.Bedrock.URL,
			Credentials: llmproxy.Credentials{AccessKeyID: g.Bedrock.AccessKeyID, SecretAccessKey: "fake-secret"},
			Settings:    map[string]string{bedrock.SettingRegion: g.Bedrock.Region, bedrock.SettingMaxAttempts: "1"}},
			[2]string{bedrockMain, bedrockSmall}, "claude-bedrock", "claude-bedrock-small"},
	}
	var assignments []llmproxy.Assignment
	for _, c := range conns {
		conn := c.conn
		if err := svc.AddConnection(ctx, &conn); err != nil {
			t.Fatal(err)
		}
		for i, alias := range []string{c.alias, c.smallAls} {
			if err := svc.AddModel(ctx, &llmproxy.Model{Name: alias, Remote: c.models[i], ConnectionID: conn.ID}); err != nil {
				t.Fatal(err)
			}
		}
		assignments = append(assignments, llmproxy.Assignment{ConnectionID: conn.ID})
	}
	if _, err := svc.AddKey(ctx, &llmproxy.VirtualKey{Name: "messages-clients", Assignments: assignments}, messagesKey); err != nil {
		t.Fatal(err)
	}
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{
		llmproxy.KindAnthropic: anthropic.New, llmproxy.KindCompatible: openai.New, llmproxy.KindBedrock: bedrock.New}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.paths = append(g.paths, r.Method+" "+r.URL.Path)
		g.mu.Unlock()
		gw.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); gw.Close() })
	g.URL = srv.URL
	return g
}

// Paths returns the method and path of every request the Gateway got.
func (g *messagesGateway) Paths() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.paths...)
}

// upstreamCalls returns how many calls the route's fake has received.
func (g *messagesGateway) upstreamCalls(rt route) int {
	switch rt.name {
	case "anthropic":
		return len(g.Anthropic.Calls())
	case "translated":
		return len(g.OpenAI.Requests())
	}
	return len(g.Bedrock.Calls())
}

// checkInvoke checks that Bedrock served Messages natively: InvokeModel
// (streamed or not) and CountTokens, never Converse.
func checkInvoke(t *testing.T, calls []*bedrocktest.Call) {
	t.Helper()
	for _, c := range calls {
		switch c.Operation {
		case bedrocktest.OpInvoke, bedrocktest.OpInvokeStream, bedrocktest.OpCountTokens:
		default:
			t.Errorf("Bedrock got a %s call for %s", c.Operation, c.ModelID)
		}
	}
}

// sdkModel is the anthropictest model of the SDK tests, the same as the
// other fakes' default ones: offered tools, it calls the first with
// {"city":"Paris"}; given tool results it answers "The tool said: …";
// otherwise "You said: …".
func sdkModel(c *anthropictest.Call) anthropictest.Answer {
	var body struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	json.Unmarshal(c.Body, &body)
	if len(body.Tools) > 0 && len(c.ToolResults()) == 0 && !c.CountTokens() {
		return anthropictest.ToolUse("toolu_sdk_1", body.Tools[0].Name, map[string]any{"city": "Paris"})
	}
	return anthropictest.Echo(c)
}

// The official TypeScript SDK through each route: a plain call, a
// stream, a tool round trip both ways, and count_tokens.
func TestAnthropicTypeScriptSDK(t *testing.T) {
	install(t)
	g := newMessagesGateway(t)
	g.Anthropic.Handle(sdkModel)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^plain: .*Say hello \(in: [1-9][0-9]*, out: [1-9][0-9]*\)$`),
		regexp.MustCompile(`^stream: .*Say hello \(in: [1-9][0-9]*, out: [1-9][0-9]*\)$`),
		// The tool's answer, which only the script knows, comes back.
		regexp.MustCompile(`^tool: get_weather\(\{"city":"(\w+)"\}\) -> The tool said: Sunny, 22 C in (\w+) \[end_turn\]$`),
		regexp.MustCompile(`^tool-stream: get_weather\(\{"city":"(\w+)"\}\) -> The tool said: Sunny, 22 C in (\w+) \[end_turn\]$`),
		regexp.MustCompile(`^count: [1-9][0-9]*$`),
	}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			before := g.upstreamCalls(rt)
			cmd := exec.Command("node", "anthropic.mjs")
			cmd.Env = append(os.Environ(), "LLM_PROXY_BASE_URL="+g.URL, "LLM_PROXY_KEY="+messagesKey, "LLM_PROXY_MODEL="+rt.alias)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node anthropic.mjs: %v\n%s", err, out)
			}
			t.Logf("anthropic.mjs printed:\n%s", out)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(want) {
				t.Fatalf("anthropic.mjs printed:\n%s", out)
			}
			for i, re := range want {
				m := re.FindStringSubmatch(lines[i])
				if m == nil || (len(m) == 3 && m[1] != m[2]) {
					t.Errorf("line %d: %q, want %s", i+1, lines[i], re)
				}
			}
			// Six messages calls, and count_tokens: forwarded where the
			// upstream counts, estimated by the Gateway otherwise.
			calls := 7
			if rt.name == "translated" {
				calls = 6
			}
			if got := g.upstreamCalls(rt) - before; got != calls {
				t.Errorf("the upstream got %d calls, want %d", got, calls)
			}
			if rt.name == "bedrock" {
				checkInvoke(t, g.Bedrock.Calls()[before:])
			}
		})
	}
}
