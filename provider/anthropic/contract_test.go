package anthropic_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic/anthropictest"
	"github.com/go-llm-proxy/llmproxy/provider/providertest"
)

// TestContract runs the provider contract suite: chat clients on an
// anthropic connection, through the translation.
func TestContract(t *testing.T) {
	needTranslate(t)
	providertest.Run(t, contract)
}

// contract runs the suite against anthropictest, which checks x-api-key
// and anthropic-version.
var contract = providertest.Harness{
	Start:          startFake,
	RetryAfter:     true,
	RequestHeaders: []string{"Anthropic-Version", "Anthropic-Beta"},
}

func startFake(t *testing.T, opts llmproxy.ProviderOptions, a providertest.Answer) providertest.Fake {
	s := anthropictest.New(t)
	s.Handle(func(*anthropictest.Call) anthropictest.Answer { return answer(a) })
	p := newProvider(t, s, opts)
	return providertest.Fake{Provider: p, Calls: func() []providertest.Call {
		var calls []providertest.Call
		for _, c := range s.Calls() {
			calls = append(calls, providertest.Call{Model: c.Model, Header: c.Header, Done: c.Done})
		}
		return calls
	}}
}

// answer writes a as Anthropic does.
func answer(a providertest.Answer) anthropictest.Answer {
	var ans anthropictest.Answer
	switch {
	case a.HoldHead:
		return anthropictest.Answer{HoldHead: true}
	case a.Status != 0:
		ans = anthropictest.Error(a.Status, anthropictest.ErrorType(a.Status), a.Message)
		if a.RetryAfter > 0 {
			ans.Header = http.Header{"Retry-After": {strconv.Itoa(int((a.RetryAfter + time.Second - 1) / time.Second))}}
		}
	default:
		u := a.Usage
		m := anthropictest.Message{Content: []anthropictest.Block{anthropictest.TextBlock(a.Text)}, Usage: anthropictest.Usage{
			InputTokens:              u.PromptTokens - u.CacheReadTokens - u.CacheWriteTokens,
			OutputTokens:             u.CompletionTokens,
			CacheReadInputTokens:     u.CacheReadTokens,
			CacheCreationInputTokens: u.CacheWriteTokens,
		}}
		ans = anthropictest.Reply(m)
		events := anthropictest.Events(m)
		switch n := a.StallAfter; {
		case n > 0 && n < len(events):
			ans.Events, ans.HoldOpen = events[:n], true
		}
		if n := a.FailAfter; n > 0 && n < len(events) {
			ans.Events = append(events[:n:n], anthropictest.ErrorEvent("overloaded_error", a.Message))
		}
		if n := a.CutAfter; n > 0 && n < len(events) {
			ans.Events, ans.Cut = events[:n], true
		}
	}
	if ans.Header == nil {
		ans.Header = http.Header{}
	}
	for k, v := range a.Header {
		ans.Header[k] = v
	}
	if a.RequestID != "" {
		ans.Header.Set("Request-Id", a.RequestID)
	}
	return ans
}
