package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
)

func chatRequest(body string, stream bool) *llmproxy.Request {
	return &llmproxy.Request{Body: []byte(body), Model: "alias", RemoteModel: remoteModel, Stream: stream}
}

// TestChatCompletion: a chat client's request reaches the upstream as a
// Messages request for the remote model, with the connection's
// default_max_tokens when the client set none, and comes back a
// chat.completion with the upstream's usage.
func TestChatCompletion(t *testing.T) {
	needTranslate(t)
	s := anthropictest.New(t)
	p, err := anthropic.New(llmproxy.Connection{Name: "c", Endpoint: s.URL, Settings: map[string]string{anthropic.SettingDefaultMaxTokens: "1234"},
		Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}}, llmproxy.ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := anthropictest.Text("Hi there.")
	a.Message.Usage = anthropictest.Usage{InputTokens: 3, OutputTokens: 2, CacheReadInputTokens: 10}
	s.Reply(a)
	res, err := p.ChatCompletion(context.Background(), chatRequest(`{"model":"alias","messages":[{"role":"user","content":"Hello"}]}`, false))
	if err != nil {
		t.Fatal(err)
	}
	var up struct {
		Model     string `json:"model"`
		MaxTokens int64  `json:"max_tokens"`
	}
	if err := json.Unmarshal(s.LastCall().Body, &up); err != nil || up.Model != remoteModel || up.MaxTokens != 1234 {
		t.Errorf("upstream body %s: want model %q, max_tokens 1234", s.LastCall().Body, remoteModel)
	}
	var c struct {
		Object  string
		Choices []struct{ Message struct{ Content string } }
		Usage   struct {
			PromptTokens int64 `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal(res.Body, &c); err != nil || c.Object != "chat.completion" || len(c.Choices) != 1 || c.Choices[0].Message.Content != "Hi there." {
		t.Errorf("answer %s, want a chat.completion saying %q", res.Body, "Hi there.")
	}
	if c.Usage.PromptTokens != 13 {
		t.Errorf("prompt_tokens %d, want 13 (input and cache reads)", c.Usage.PromptTokens)
	}
}

// TestChatErrors: a chat request the translation refuses is a 400 that
// reaches no upstream; an error event mid-stream keeps its Anthropic
// type through the translation.
func TestChatErrors(t *testing.T) {
	needTranslate(t)
	s := anthropictest.New(t)
	p := newProvider(t, s, llmproxy.ProviderOptions{})
	var e *llmproxy.Error
	if _, err := p.ChatCompletion(context.Background(), chatRequest(`{"model":"alias","messages":"nope"}`, false)); !errors.As(err, &e) || e.Status != 400 {
		t.Errorf("untranslatable request: %v, want a 400", err)
	}
	if n := len(s.Calls()); n != 0 {
		t.Errorf("%d upstream calls for a refused request", n)
	}

	events := anthropictest.Events(anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock("a b c")}})
	s.Reply(anthropictest.Stream(append(events[:4:4], anthropictest.ErrorEvent("overloaded_error", "Overloaded"))...))
	res, err := p.ChatCompletion(context.Background(), chatRequest(`{"model":"alias","stream":true,"messages":[{"role":"user","content":"Hello"}]}`, true))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	for {
		if _, err = res.Stream.Next(); err != nil {
			break
		}
	}
	if err == io.EOF || !errors.As(err, &e) || e.Status != 529 || e.Type != "overloaded_error" {
		t.Errorf("mid-stream overload: %v, want a 529 overloaded_error", err)
	}
}
