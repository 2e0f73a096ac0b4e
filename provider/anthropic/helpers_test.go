package anthropic_test

import (
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/translate"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
)

// needTranslate skips t while internal/translate is the stand-in of this
// branch (its functions fail with "stub"), until the real translation is
// merged.
func needTranslate(t *testing.T) {
	t.Helper()
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	if _, err := translate.ChatToMessages([]byte(body), translate.MessagesOptions{Model: "m", DefaultMaxTokens: 10}); err != nil &&
		strings.Contains(err.Error(), "stub") {
		t.Skip("needs translate: internal/translate is still the stub")
	}
}

// newProvider returns an anthropic provider for s's default key.
func newProvider(t *testing.T, s *anthropictest.Server, opts llmproxy.ProviderOptions) *anthropic.Provider {
	t.Helper()
	p, err := anthropic.New(llmproxy.Connection{Name: "anthropic-test", Provider: llmproxy.KindAnthropic, Endpoint: s.URL,
		Credentials: llmproxy.Credentials{APIKey: anthropictest.DefaultAPIKey}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*anthropic.Provider)
}
