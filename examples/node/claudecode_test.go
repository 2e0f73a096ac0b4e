//go:build unix

package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
)

// claudeCodeTimeout bounds one headless Claude Code run (it takes ~2 s
// against a local fake).
const claudeCodeTimeout = 60 * time.Second

// A readTask is the turn Claude Code must finish: the fake model asks
// it to Read a file that holds a secret, and answers with the secret
// only once the request carries the file's content as a tool_result.
type readTask struct {
	path   string // the file, in Claude Code's working directory
	secret string // what only the file holds
}

// turn is the fake model's answer: text, or a call of tool with input.
type turn struct {
	text  string
	tool  string
	input map[string]any
}

// next is the fake model's turn for a request offering tools (name to
// input schema) whose last message holds toolResult (hasResult false:
// none). Requests without Read are Claude Code's background calls
// (titles, topics): they get a short text.
func (task readTask) next(tools map[string]json.RawMessage, toolResult string, hasResult bool) turn {
	if hasResult {
		if !strings.Contains(toolResult, task.secret) {
			return turn{text: "The Read result lacks the secret: " + toolResult}
		}
		return turn{text: "The magic word is " + task.secret + "."}
	}
	schema, ok := tools["Read"]
	if !ok {
		return turn{text: "Magic word lookup"}
	}
	input, err := readInput(schema, task.path)
	if err != nil {
		return turn{text: "fake model: " + err.Error()}
	}
	return turn{tool: "Read", input: input}
}

// readInput is a Read call's input for path, built from the input
// schema Claude Code declares, so that a change of that schema shows
// here rather than as a puzzling refusal.
func readInput(schema json.RawMessage, path string) (map[string]any, error) {
	var s struct {
		Type       string `json:"type"`
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		return nil, fmt.Errorf("Read's input_schema: %v", err)
	}
	if s.Type != "object" || s.Properties["file_path"].Type != "string" {
		return nil, fmt.Errorf("Read's input_schema has no string file_path: %s", schema)
	}
	for _, r := range s.Required {
		if r != "file_path" {
			return nil, fmt.Errorf("Read's input_schema requires %q too: %s", r, schema)
		}
	}
	return map[string]any{"file_path": path}, nil
}

// anthropicModel plays task on the anthropic route's fake.
func (task readTask) anthropicModel(c *anthropictest.Call) anthropictest.Answer {
	var body struct {
		Tools []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"input_schema"`
		} `json:"tools"`
	}
	json.Unmarshal(c.Body, &body)
	tools := map[string]json.RawMessage{}
	for _, t := range body.Tools {
		tools[t.Name] = t.InputSchema
	}
	results := c.ToolResults()
	var content []string
	for _, r := range results {
		content = append(content, r.Content)
	}
	tr := task.next(tools, strings.Join(content, "\n"), len(results) > 0)
	if tr.tool != "" {
		return anthropictest.ToolUse("toolu_cc_read", tr.tool, tr.input)
	}
	return anthropictest.Text(tr.text)
}

// bedrockModel plays task on the Bedrock route's fake.
func (task readTask) bedrockModel(c *bedrocktest.MessagesCall) *bedrocktest.MessagesReply {
	if c.Operation == bedrocktest.OpCountTokens {
		return bedrocktest.EchoMessages(c)
	}
	tools := map[string]json.RawMessage{}
	for _, t := range c.Request.Tools {
		tools[t.Name] = t.InputSchema
	}
	results := c.Request.ToolResults()
	var content []string
	for _, r := range results {
		content = append(content, r.Content.Text())
	}
	tr := task.next(tools, strings.Join(content, "\n"), len(results) > 0)
	if tr.tool != "" {
		return &bedrocktest.MessagesReply{Message: bedrocktest.ToolUseMessage("toolu_cc_read", tr.tool, tr.input, 100, 10)}
	}
	return &bedrocktest.MessagesReply{Message: bedrocktest.TextMessage(tr.text, 100, len(strings.Fields(tr.text)))}
}

// openaiModel plays task on the translated route's fake, in Chat
// Completions: tools are functions, a tool result is a "tool" message.
func (task readTask) openaiModel(r fakeopenai.Request) *fakeopenai.Answer {
	var body struct {
		Tools []struct {
			Function struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	json.Unmarshal(r.Body, &body)
	tools := map[string]json.RawMessage{}
	for _, t := range body.Tools {
		tools[t.Function.Name] = t.Function.Parameters
	}
	var result string
	last := len(body.Messages) - 1
	hasResult := last >= 0 && body.Messages[last].Role == "tool"
	if hasResult {
		result = string(body.Messages[last].Content) // the JSON string or parts: the secret shows either way
	}
	tr := task.next(tools, result, hasResult)
	if tr.tool != "" {
		return chatToolCall(r, "call_cc_read", tr.tool, tr.input)
	}
	return fakeopenai.ChatAnswer(r, tr.text, 100, len(strings.Fields(tr.text)))
}

// chatToolCall is OpenAI's answer calling one function: a chat
// completion, or for a stream a role chunk, the call's name and its
// arguments in two chunks, the finish chunk and the usage chunk.
func chatToolCall(r fakeopenai.Request, id, name string, input map[string]any) *fakeopenai.Answer {
	args, _ := json.Marshal(input)
	usage := map[string]any{"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
	base := func(v map[string]any) map[string]any {
		v["id"], v["created"], v["model"] = "chatcmpl-cc", 1700000000, r.JSON["model"]
		return v
	}
	if stream, _ := r.JSON["stream"].(bool); !stream {
		call := map[string]any{"id": id, "type": "function", "function": map[string]any{"name": name, "arguments": string(args)}}
		b, _ := json.Marshal(base(map[string]any{"object": "chat.completion", "usage": usage, "choices": []any{map[string]any{
			"index": 0, "finish_reason": "tool_calls",
			"message": map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{call}}}}}))
		return &fakeopenai.Answer{Body: b}
	}
	chunk := func(delta map[string]any, finish any) string {
		b, _ := json.Marshal(base(map[string]any{"object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}))
		return string(b)
	}
	half := len(args) / 2
	events := []string{
		chunk(map[string]any{"role": "assistant", "content": nil}, nil),
		chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": id, "type": "function",
			"function": map[string]any{"name": name, "arguments": string(args[:half])}}}}, nil),
		chunk(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "function": map[string]any{"arguments": string(args[half:])}}}}, nil),
		chunk(map[string]any{}, "tool_calls"),
	}
	usageChunk, _ := json.Marshal(base(map[string]any{"object": "chat.completion.chunk", "choices": []any{}, "usage": usage}))
	return &fakeopenai.Answer{Events: append(events, string(usageChunk))}
}

// trapProxy is where Claude Code's HTTP(S)_PROXY points: it refuses and
// records whatever Claude Code tries to reach beyond 127.0.0.1.
type trapProxy struct {
	*httptest.Server
	mu   sync.Mutex
	hits []string
}

func newTrapProxy(t *testing.T) *trapProxy {
	p := &trapProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits = append(p.hits, r.Method+" "+r.Host+r.URL.Path)
		p.mu.Unlock()
		http.Error(w, "this test allows no traffic beyond 127.0.0.1", http.StatusForbidden)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *trapProxy) Hits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hits...)
}

// claudeCode runs Claude Code headless in a new working directory holding
// notes.txt with task's secret, with a temporary HOME, against the
// Gateway at base with the aliases of rt. auth is the variable that
// carries the key (ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN). It
// returns stdout and stderr.
func claudeCode(t *testing.T, base string, rt route, auth string, task *readTask) (stdout, stderr string) {
	t.Helper()
	dir, home := t.TempDir(), t.TempDir()
	task.path = filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(task.path, []byte("Notes.\nThe magic word is "+task.secret+".\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli, err := filepath.Abs("node_modules/@anthropic-ai/claude-code/cli-wrapper.cjs")
	if err != nil {
		t.Fatal(err)
	}
	trap := newTrapProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), claudeCodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", cli, "-p", "What is the magic word in notes.txt? Read the file.")
	cmd.Dir = dir
	// Only what Claude Code needs: nothing of the caller's ANTHROPIC_*
	// or Claude Code configuration leaks in.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8",
		"ANTHROPIC_BASE_URL=" + base, auth + "=" + messagesKey,
		"ANTHROPIC_MODEL=" + rt.alias, "ANTHROPIC_DEFAULT_SONNET_MODEL=" + rt.alias,
		"ANTHROPIC_DEFAULT_OPUS_MODEL=" + rt.alias, "ANTHROPIC_DEFAULT_HAIKU_MODEL=" + rt.small,
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
		"HTTP_PROXY=" + trap.URL, "HTTPS_PROXY=" + trap.URL, "NO_PROXY=127.0.0.1,localhost",
	}
	// The wrapper starts Claude Code's native binary: a timeout kills
	// the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	stdout, stderr = out.String(), errOut.String()
	if err != nil {
		t.Errorf("claude -p: %v (timeout %v)\nstdout:\n%s\nstderr:\n%s", err, claudeCodeTimeout, stdout, stderr)
	}
	if hits := trap.Hits(); len(hits) > 0 {
		t.Errorf("Claude Code tried to reach beyond 127.0.0.1: %q", hits)
	}
	return stdout, stderr
}

// Claude Code, headless, finishes a turn that uses its Read tool,
// through each route, with its key as x-api-key and, on the anthropic
// route, as a bearer token.
func TestClaudeCode(t *testing.T) {
	install(t)
	g := newMessagesGateway(t)
	for _, tc := range []struct {
		rt   route
		auth string
	}{
		{routes[0], "ANTHROPIC_API_KEY"},
		{routes[0], "ANTHROPIC_AUTH_TOKEN"},
		{routes[1], "ANTHROPIC_API_KEY"},
		{routes[2], "ANTHROPIC_API_KEY"},
	} {
		t.Run(tc.rt.name+"/"+tc.auth, func(t *testing.T) {
			task := &readTask{secret: fmt.Sprintf("PAPAYA-%d", time.Now().UnixNano()%100000)}
			// The model reads task.path, set by claudeCode before the
			// first request.
			g.Anthropic.Handle(func(c *anthropictest.Call) anthropictest.Answer { return task.anthropicModel(c) })
			g.OpenAI.SetAnswer(func(r fakeopenai.Request) *fakeopenai.Answer { return task.openaiModel(r) })
			g.Bedrock.Messages = func(c *bedrocktest.MessagesCall) *bedrocktest.MessagesReply { return task.bedrockModel(c) }
			before, beforePaths := g.upstreamCalls(tc.rt), len(g.Paths())
			stdout, stderr := claudeCode(t, g.URL, tc.rt, tc.auth, task)
			t.Logf("claude -p printed: %s", strings.TrimSpace(stdout))
			if !strings.Contains(stdout, task.secret) {
				t.Errorf("stdout lacks the file's secret %s:\n%s\nstderr:\n%s", task.secret, stdout, stderr)
			}
			// Claude Code asks only for Messages (a main request, the one
			// with the tool_result, maybe background calls and counts).
			paths := g.Paths()[beforePaths:]
			for _, p := range paths {
				if p != "POST /v1/messages" && p != "POST /v1/messages/count_tokens" {
					t.Errorf("Claude Code asked the Gateway for %s", p)
				}
			}
			if n := g.upstreamCalls(tc.rt) - before; n < 2 || !slices.Contains(paths, "POST /v1/messages") {
				t.Errorf("the upstream got %d calls, the Gateway %q; want the tool call and its result at least", n, paths)
			}
			switch tc.rt.name {
			case "anthropic":
				checkPassthrough(t, g.Anthropic.Calls()[before:])
			case "bedrock":
				checkInvoke(t, g.Bedrock.Calls()[before:])
			}
			if t.Failed() {
				t.Logf("the Gateway got: %q\n%s", paths, g.describeCalls(tc.rt, before))
			}
		})
	}
}

// checkPassthrough checks what an anthropic connection's upstream got
// from Claude Code: its requests with only the model renamed (to a
// remote name of the route), its anthropic-beta flags, and the Read
// result answering the fake's tool_use.
func checkPassthrough(t *testing.T, calls []*anthropictest.Call) {
	t.Helper()
	answered := false
	for _, c := range calls {
		if c.Model != anthropicMain && c.Model != anthropicHaiku {
			t.Errorf("upstream call for model %q", c.Model)
		}
		if !strings.Contains(c.Header.Get("Anthropic-Beta"), "claude-code-20250219") {
			t.Errorf("upstream call without Claude Code's anthropic-beta flags: %q", c.Header.Get("Anthropic-Beta"))
		}
		for _, r := range c.ToolResults() {
			answered = answered || r.ToolUseID == "toolu_cc_read"
		}
	}
	if !answered {
		t.Error("no upstream call carried the tool_result of toolu_cc_read")
	}
}

// describeCalls summarizes the route's upstream calls from the first-th
// on, for a failure's log.
func (g *messagesGateway) describeCalls(rt route, first int) string {
	var b strings.Builder
	line := func(i int, what string, h http.Header, body []byte) {
		// The head has the settings, the tail the latest turns.
		head, tail := body, []byte(nil)
		if len(body) > 1500 {
			head, tail = body[:500], body[len(body)-1000:]
		}
		fmt.Fprintf(&b, "upstream call %d: %s anthropic-beta=%q (%d bytes)\n  body: %s … %s\n", i, what, h.Get("Anthropic-Beta"), len(body), head, tail)
	}
	switch rt.name {
	case "anthropic":
		for i, c := range g.Anthropic.Calls()[first:] {
			line(first+i, c.Path+"?"+c.RawQuery+" model="+c.Model, c.Header, c.Body)
		}
	case "translated":
		for i, r := range g.OpenAI.Requests()[first:] {
			line(first+i, r.Path, r.Header, r.Body)
		}
	default:
		for i, c := range g.Bedrock.Calls()[first:] {
			line(first+i, c.Operation+" "+c.ModelID, c.Header, c.Body)
		}
	}
	return b.String()
}
