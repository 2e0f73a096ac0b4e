package node_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/azure"
	"github.com/go-llm-proxy/llmproxy/provider/azure/azuretest"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// allProviders starts one Gateway serving three aliases, each on a fake of
// another provider: "gpt" (OpenAI-compatible), "azure-gpt" (Azure OpenAI)
// and "claude" (Bedrock Converse, a model id with ':').
func allProviders(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	compat := fakeopenai.New(t, upstreamKey)
	az := azuretest.NewServer()
	t.Cleanup(az.Close)
	br := bedrocktest.NewServer()
	br.SecretAccessKey = "fake-secret"
	br.Latency = 5 * time.Millisecond
	t.Cleanup(br.Close)

	store := memory.New()
	admin := &admin.Service{Storage: store}
	conns := []struct {
		conn          llmproxy.Connection
		alias, remote string
	}{
		{llmproxy.Connection{Name: "compat", Provider: llmproxy.KindCompatible, Endpoint: compat.BaseURL(), Credentials: llmproxy.Credentials{APIKey: upstreamKey}}, "gpt", "gpt-4o-mini"},
		{llmproxy.Connection{Name: "azure", Provider: llmproxy.KindAzure, Endpoint: az.URL, Credentials: llmproxy.Credentials{APIKey: az.APIKey}}, "azure-gpt", "my-deployment"},
		{llmproxy.Connection{Name: "bedrock", Provider: llmproxy.KindBedrock, Endpoint: br.URL,
			Credentials: llmproxy.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "fake-secret"},
			Settings:    map[string]string{bedrock.SettingRegion: "us-east-1", bedrock.SettingMaxAttempts: "1"}}, "claude", "anthropic.claude-3-5-sonnet-20240620-v1:0"},
	}
	var assignments []llmproxy.Assignment
	for _, c := range conns {
		conn := c.conn
		if err := admin.AddConnection(ctx, &conn); err != nil {
			t.Fatal(err)
		}
		if err := admin.AddModel(ctx, &llmproxy.Model{Name: c.alias, Remote: c.remote, ConnectionID: conn.ID}); err != nil {
			t.Fatal(err)
		}
		assignments = append(assignments, llmproxy.Assignment{ConnectionID: conn.ID})
	}
	if _, err := admin.AddKey(ctx, &llmproxy.VirtualKey{Name: "Mobile-App", Assignments: assignments}, "sk-proxy-123"); err != nil {
		t.Fatal(err)
	}
	gw, err := llmproxy.New(llmproxy.Config{Storage: store, Providers: map[string]llmproxy.NewProviderFunc{
		llmproxy.KindCompatible: openai.New, llmproxy.KindAzure: azure.New, llmproxy.KindBedrock: bedrock.New}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.Close(); gw.Close() })
	return srv.URL + "/v1"
}

// The Node SDK and LangChain JS, plain, streaming and a tool round trip,
// against every provider kind through the gateway.
func TestNodeClientsEveryProvider(t *testing.T) {
	install(t)
	base := allProviders(t)
	withTokens := regexp.MustCompile(`^\w+: .+ \(tokens: [1-9][0-9]*\)$`)
	for _, alias := range []string{"gpt", "azure-gpt", "claude"} {
		t.Run(alias, func(t *testing.T) {
			run := func(script string) []string {
				cmd := exec.Command("node", script)
				cmd.Env = append(os.Environ(), "LLM_PROXY_BASE_URL="+base, "LLM_PROXY_KEY=sk-proxy-123", "LLM_PROXY_MODEL="+alias)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("node %s: %v\n%s", script, err, out)
				}
				return strings.Split(strings.TrimSpace(string(out)), "\n")
			}
			for _, script := range []string{"openai.mjs", "langchain.mjs"} {
				for _, line := range run(script) {
					if !withTokens.MatchString(line) {
						t.Errorf("%s: %q has no answer with a token count", script, line)
					}
				}
			}
			lines := run("tools.mjs")
			want := []string{"openai plain: get_weather -> The tool said: sunny", "openai stream: get_weather -> The tool said: sunny", "langchain: get_weather -> The tool said: sunny"}
			if strings.Join(lines, "\n") != strings.Join(want, "\n") {
				t.Errorf("tools.mjs printed:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}
