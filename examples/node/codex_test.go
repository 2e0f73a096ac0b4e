//go:build unix

package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// codexTimeout bounds one headless Codex run (it takes under a second
// against a local fake).
const codexTimeout = 90 * time.Second

// tokensUsed is how Codex reports the usage of its turn.
var tokensUsed = regexp.MustCompile(`(?m)^tokens used\n[1-9][0-9,]*$`)

// A codexTask is the turn Codex must finish: the fake model has it run
// cmd through exec_command, and answers with secret, which only cmd's
// output holds, once the request carries that output.
type codexTask struct {
	cmd    string
	secret string
}

// turn is the fake model's answer to a Codex request, in either
// dialect.
func (task codexTask) turn(in turnInput) fakeTurn {
	if len(in.outputs) > 0 {
		out := strings.Join(in.outputs, "\n")
		if !strings.Contains(out, task.secret) {
			return fakeTurn{text: "The command's output lacks the secret: " + out}
		}
		return fakeTurn{text: "The command printed " + task.secret + "."}
	}
	schema, ok := in.schemas["exec_command"]
	if !ok {
		return fakeTurn{text: fmt.Sprintf("fake model: no exec_command among the tools %q", in.tools)}
	}
	if err := checkExecSchema(schema); err != nil {
		return fakeTurn{text: "fake model: " + err.Error()}
	}
	return fakeTurn{name: "exec_command", args: map[string]any{"cmd": task.cmd}}
}

// checkExecSchema checks that exec_command's parameters, as Codex
// declares them, take the command as a string "cmd" and require
// nothing else, so that a change of that schema shows here rather than
// as a puzzling refusal.
func checkExecSchema(schema json.RawMessage) error {
	var s struct {
		Type       string `json:"type"`
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		return fmt.Errorf("exec_command's parameters: %v", err)
	}
	if s.Type != "object" || s.Properties["cmd"].Type != "string" {
		return fmt.Errorf("exec_command's parameters have no string cmd: %s", schema)
	}
	for _, r := range s.Required {
		if r != "cmd" {
			return fmt.Errorf("exec_command's parameters require %q too: %s", r, schema)
		}
	}
	return nil
}

// codexConfig is Codex's config.toml: the model alias on a provider
// "gw" that speaks the Responses API at baseURL with the key in
// LLM_PROXY_KEY, and no retries (a failure shows at once). Two settings
// keep Codex offline without changing its requests: plugins off (at
// start it syncs its curated plugins from github.com, api.github.com
// and chatgpt.com) and analytics off (OTLP metrics to ab.chatgpt.com).
func codexConfig(baseURL, model string) string {
	return fmt.Sprintf(`model = %q
model_provider = "gw"

[features]
plugins = false

[analytics]
enabled = false

[model_providers.gw]
name = "llm-proxy"
base_url = %q
env_key = "LLM_PROXY_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
`, model, baseURL)
}

// codex runs "codex exec" headless in a new working directory holding
// magic.txt with task's secret, with a temporary CODEX_HOME and HOME,
// against baseURL (ending in /v1) with key and model, and returns
// stdout (Codex's last message) and stderr (its transcript).
func codex(t *testing.T, baseURL, key, model string, task codexTask) (stdout, stderr string) {
	t.Helper()
	dir, home := t.TempDir(), t.TempDir()
	codexHome := filepath.Join(home, ".codex")
	if err := os.WriteFile(filepath.Join(dir, "magic.txt"), []byte(task.secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(codexHome, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(codexHome, "config.toml"), []byte(codexConfig(baseURL, model)), 0o600); err != nil {
		t.Fatal(err)
	}
	cli, err := filepath.Abs("node_modules/@openai/codex/bin/codex.js")
	if err != nil {
		t.Fatal(err)
	}
	trap := newTrapProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), codexTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", cli, "exec", "--skip-git-repo-check",
		"Run `"+task.cmd+"` and tell me what it printed.")
	cmd.Dir = dir
	// Only what Codex needs: nothing of the caller's OPENAI_* or Codex
	// configuration leaks in. Stdin stays /dev/null (exec reads stdin
	// when it is not a terminal).
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CODEX_HOME=" + codexHome, "LANG=C.UTF-8",
		"LLM_PROXY_KEY=" + key,
		"HTTP_PROXY=" + trap.URL, "HTTPS_PROXY=" + trap.URL, "NO_PROXY=127.0.0.1,localhost",
	}
	// codex.js starts Codex's native binary, which starts the shell: a
	// timeout kills the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	stdout, stderr = out.String(), errOut.String()
	if err != nil {
		t.Errorf("codex exec: %v (timeout %v)\nstdout:\n%s\nstderr:\n%s", err, codexTimeout, stdout, stderr)
	}
	if hits := trap.Hits(); len(hits) > 0 {
		t.Errorf("Codex tried to reach beyond 127.0.0.1: %q", hits)
	}
	return stdout, stderr
}

// Codex, headless with its default settings, finishes a turn that runs
// a shell command through exec_command: straight to the Responses fake
// (the baseline), through the Gateway's native connection, and through
// its translated one to a chat-only upstream.
func TestCodex(t *testing.T) {
	install(t)
	g := newResponsesGateway(t)
	for _, rt := range respRoutes {
		t.Run(rt.name, func(t *testing.T) {
			task := codexTask{cmd: "cat magic.txt", secret: fmt.Sprintf("KIWI-%d", time.Now().UnixNano()%100000)}
			g.Native.Responses.SetHandler(responsesModel(task.turn))
			g.Chat.SetAnswer(chatModel(task.turn))
			t.Cleanup(func() { g.Native.Responses.SetHandler(responsesModel(sdkTurn)); g.Chat.SetAnswer(chatModel(sdkTurn)) })
			before, beforePaths, streams, dropped := g.upstreamCalls(rt), len(g.Paths()), len(g.Streams()), len(g.Dropped())

			stdout, stderr := codex(t, g.baseURL(rt), g.key(rt), rt.alias, task)
			t.Logf("codex exec printed: %s", strings.TrimSpace(stdout))
			if !strings.Contains(stdout, "The command printed "+task.secret) {
				t.Errorf("stdout lacks the command's output %s:\n%s\nstderr:\n%s", task.secret, stdout, stderr)
			}
			// Codex reports the usage of response.completed.
			if !tokensUsed.MatchString(stderr) {
				t.Errorf("Codex reported no tokens used:\n%s", stderr)
			}
			if n := g.upstreamCalls(rt) - before; n != 2 {
				t.Errorf("the upstream got %d calls, want the function call's and its output's", n)
			}
			if rt.native() {
				checkCodexNative(t, g.Native.Requests()[before:], rt.name != "direct")
				if d := g.Dropped()[dropped:]; len(d) > 0 {
					t.Errorf("a native connection dropped tools: %q", d)
				}
			} else {
				checkCodexTranslated(t, g, before, g.Dropped()[dropped:])
			}
			if rt.name != "direct" {
				paths := g.Paths()[beforePaths:]
				for _, p := range paths {
					if p != "POST /v1/responses" {
						t.Errorf("Codex asked the Gateway for %s", p)
					}
				}
				got := g.Streams()[streams:]
				if len(got) != 2 {
					t.Errorf("the Gateway answered %d streams, want 2", len(got))
				}
				checkStreams(t, got)
			}
			if t.Failed() {
				t.Log(g.describe(rt))
			}
		})
	}
}

// codexRequest is what these tests read of Codex's requests.
type codexRequest struct {
	Model          string   `json:"model"`
	Stream         bool     `json:"stream"`
	Store          *bool    `json:"store"`
	Include        []string `json:"include"`
	PromptCacheKey string   `json:"prompt_cache_key"`
	Tools          []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
	Input []struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Name   string `json:"name"`
	} `json:"input"`
}

// answered reports whether req's input holds the fake's exec_command
// function_call and its function_call_output.
func (req *codexRequest) answered() bool {
	calls, outputs := map[string]bool{}, map[string]bool{}
	for _, it := range req.Input {
		switch it.Type {
		case "function_call":
			calls[it.CallID] = it.Name == "exec_command" && it.CallID == "call_fake_1"
		case "function_call_output":
			outputs[it.CallID] = true
		}
	}
	for id, ok := range calls {
		if ok && outputs[id] {
			return true
		}
	}
	return false
}

// checkCodexNative checks what the Responses upstream got from Codex:
// its default settings unchanged (the Gateway passes the body through
// with only the model renamed, when gateway is set), and the second
// call carrying the function call's output.
func checkCodexNative(t *testing.T, calls []fakeopenai.Request, gateway bool) {
	t.Helper()
	for i, c := range calls {
		var req codexRequest
		if err := json.Unmarshal(c.Body, &req); err != nil {
			t.Fatalf("upstream call %d: %v", i, err)
		}
		if gateway && req.Model != nativeRemote {
			t.Errorf("upstream call %d for model %q, want %q", i, req.Model, nativeRemote)
		}
		if c.Header.Get("Authorization") != "Bearer "+nativeKey {
			t.Errorf("upstream call %d with Authorization %q", i, c.Header.Get("Authorization"))
		}
		var kinds []string
		for _, tool := range req.Tools {
			kinds = append(kinds, tool.Type)
		}
		if !req.Stream || req.Store == nil || *req.Store || !slices.Contains(req.Include, "reasoning.encrypted_content") ||
			req.PromptCacheKey == "" || !slices.Contains(kinds, "web_search") || !slices.Contains(kinds, "namespace") {
			t.Errorf("upstream call %d lacks Codex's defaults (stream, store false, include, prompt_cache_key, web_search and namespace tools): %s", i, clip(c.Body))
		}
		if answered := req.answered(); answered != (i == 1) {
			t.Errorf("upstream call %d: function_call and its output in the input: %v: %s", i, answered, clip(c.Body))
		}
	}
}

// checkCodexTranslated checks what the chat-only upstream got from
// Codex through the Gateway: only function tools (the hosted web_search
// and the namespace tool left out, and named in the answers'
// X-Llm-Proxy-Dropped-Tools), and the second call carrying the tool
// result of the fake's call.
func checkCodexTranslated(t *testing.T, g *responsesGateway, first int, dropped []string) {
	t.Helper()
	reqs := g.Chat.Requests()[first:]
	for i, r := range reqs {
		var req struct {
			Model string `json:"model"`
			Tools []struct {
				Type     string `json:"type"`
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
			Messages []struct {
				Role       string          `json:"role"`
				ToolCallID string          `json:"tool_call_id"`
				Content    json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(r.Body, &req); err != nil {
			t.Fatalf("upstream call %d: %v", i, err)
		}
		if req.Model != translatedRemote {
			t.Errorf("upstream call %d for model %q, want %q", i, req.Model, translatedRemote)
		}
		var names []string
		for _, tool := range req.Tools {
			if tool.Type != "function" {
				t.Errorf("upstream call %d offers a %q tool", i, tool.Type)
			}
			names = append(names, tool.Function.Name)
		}
		if !slices.Contains(names, "exec_command") || slices.Contains(names, "web_search") {
			t.Errorf("upstream call %d offers the tools %q", i, names)
		}
		last := req.Messages[len(req.Messages)-1]
		if answered := last.Role == "tool" && last.ToolCallID == "call_fake_1"; answered != (i == 1) {
			t.Errorf("upstream call %d: ends with the tool result of call_fake_1: %v: %s", i, answered, clip(r.Body))
		}
	}
	if len(dropped) != len(reqs) {
		t.Errorf("%d answers named dropped tools, want %d: %q", len(dropped), len(reqs), dropped)
	}
	for _, d := range dropped {
		if !strings.Contains(d, "web_search") {
			t.Errorf("X-Llm-Proxy-Dropped-Tools %q does not name web_search", d)
		}
	}
}
