// Package node runs the Node examples (the official openai and Anthropic
// SDKs, LangChain JS, the Vercel AI SDK) and the coding agents Claude Code
// and Codex, headless, against a real Gateway and fake upstreams. It needs node and npm: without them the tests skip,
// or fail when CI=true.
package node_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

const upstreamKey = "sk-upstream-node-secret"

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

var (
	npmOnce sync.Once
	npmErr  error
)

// install runs "npm ci" once per test run, from the committed lock file.
func install(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "%s is not installed (apt-get install nodejs npm)", tool)
		}
	}
	npmOnce.Do(func() {
		out, err := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error").CombinedOutput()
		if err != nil {
			npmErr = fmt.Errorf("npm ci: %v\n%s", err, out)
		}
	})
	if npmErr != nil {
		skipOrFail(t, "%v", npmErr)
	}
}

// gateway starts a Gateway with the guide's records, in front of a fake
// OpenAI-compatible upstream.
func gateway(t *testing.T) (baseURL string, up *fakeopenai.Server) {
	t.Helper()
	ctx := context.Background()
	up = fakeopenai.New(t, upstreamKey)
	store := memory.New()
	admin := &admin.Service{Storage: store}
	conn := &llmproxy.Connection{Name: "google-ai", Provider: "compatible", Endpoint: up.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}
	if err := admin.AddConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := admin.AddModel(ctx, &llmproxy.Model{Name: "gemini-flash", Remote: "gemini-1.5-flash", ConnectionID: conn.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AddKey(ctx, &llmproxy.VirtualKey{Name: "Mobile-App", Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID}}}, "sk-proxy-123"); err != nil {
		t.Fatal(err)
	}
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{"compatible": openai.New}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return srv.URL + "/v1", up
}

func TestNodeExamples(t *testing.T) {
	install(t)
	base, up := gateway(t)
	reply := fakeopenai.Reply("gemini-1.5-flash", "Say hello")
	for _, tt := range []struct {
		script string
		want   []string
	}{
		{"openai.mjs", []string{"plain: " + reply + " (tokens: ", "stream: " + reply + " (tokens: ", "helper: " + reply + " (tokens: "}},
		{"langchain.mjs", []string{"invoke: " + reply + " (tokens: ", "stream: " + reply + " (tokens: "}},
	} {
		t.Run(tt.script, func(t *testing.T) {
			before := len(up.Requests())
			cmd := exec.Command("node", tt.script)
			cmd.Env = append(os.Environ(), "LLM_PROXY_BASE_URL="+base, "LLM_PROXY_KEY=sk-proxy-123", "LLM_PROXY_MODEL=gemini-flash")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node %s: %v\n%s", tt.script, err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("node %s printed:\n%s", tt.script, out)
			}
			for i, w := range tt.want {
				// Every answer carries its usage: a number, never undefined or null.
				if !strings.HasPrefix(lines[i], w) || strings.HasSuffix(lines[i], "undefined)") || strings.HasSuffix(lines[i], "null)") {
					t.Errorf("line %d: %q, want %q and a token count", i+1, lines[i], w+"N)")
				}
			}
			reqs := up.Requests()[before:]
			if len(reqs) != len(tt.want) {
				t.Fatalf("upstream got %d requests, want %d", len(reqs), len(tt.want))
			}
			for _, r := range reqs {
				if r.JSON["model"] != "gemini-1.5-flash" || r.Header.Get("Authorization") != "Bearer "+upstreamKey {
					t.Errorf("upstream saw model %v, auth %q", r.JSON["model"], r.Header.Get("Authorization"))
				}
			}
		})
	}
}
