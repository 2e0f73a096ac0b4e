package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/internal/syncbuf"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
)

// syncBuffer is a buffer safe for a writer and the test at once.
type syncBuffer = syncbuf.Buffer

// TestRun runs the example program against a fake upstream and uses both
// the host's own route and the mounted gateway.
func TestRun(t *testing.T) {
	up := fakeopenai.New(t, "sk-upstream")
	env := map[string]string{"ADDR": "127.0.0.1:0", "UPSTREAM_URL": up.BaseURL(), "UPSTREAM_API_KEY": "sk-upstream", "UPSTREAM_MODEL": "remote-model"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()

	re := regexp.MustCompile(`listening on (\S+)\nvirtual key: (sk-\S+)\n`)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; {
		if m = re.FindStringSubmatch(out.String()); m == nil {
			if time.Now().After(deadline) {
				t.Fatalf("no start line: %q", out.String())
			}
			select {
			case err := <-done:
				t.Fatalf("run ended: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	base, key := m[1], m[2]

	resp, err := http.Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from the host service\n" {
		t.Errorf("/hello: %q", body)
	}

	cfg := goopenai.DefaultConfig(key)
	cfg.BaseURL = base + "/v1"
	client := goopenai.NewClientWithConfig(cfg)
	res, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
		Model: "chat", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Choices[0].Message.Content, fakeopenai.Reply("remote-model", "hi"); got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	if _, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{Model: "chat", Messages: []goopenai.ChatCompletionMessage{{Role: "user", Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	// The host's /usage route reads the ledger the gateway writes.
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, err := http.Get(base + "/usage")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), " chat requests=2 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/usage: %q", b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}
