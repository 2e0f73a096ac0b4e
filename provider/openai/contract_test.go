package openai_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/internal/fakeopenai"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/provider/providertest"
)

// TestContract runs the provider contract suite.
func TestContract(t *testing.T) { providertest.Run(t, contract) }

// contract runs the suite against an OpenAI connection to
// internal/fakeopenai, which checks the bearer key.
var contract = providertest.Harness{
	Start:           startFake,
	RetryAfter:      true,
	ResponseHeaders: []string{"Openai-Processing-Ms", "Openai-Version"},
}

const upstreamKey = "sk-upstream-contract"

func startFake(t *testing.T, opts llmproxy.ProviderOptions, a providertest.Answer) providertest.Fake {
	fake := fakeopenai.New(t, upstreamKey)
	fake.SetAnswer(func(r fakeopenai.Request) *fakeopenai.Answer { return answer(r, a) })
	p, err := openai.New(llmproxy.Connection{Name: "contract", Provider: llmproxy.KindOpenAI, Endpoint: fake.BaseURL(),
		Credentials: llmproxy.Credentials{APIKey: upstreamKey}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return providertest.Fake{Provider: p, Calls: func() []providertest.Call {
		var calls []providertest.Call
		for _, r := range fake.Requests() {
			model, _ := r.JSON["model"].(string)
			calls = append(calls, providertest.Call{Model: model, Header: r.Header, Done: r.Done})
		}
		return calls
	}}
}

// answer writes a as OpenAI does.
func answer(r fakeopenai.Request, a providertest.Answer) *fakeopenai.Answer {
	var ans *fakeopenai.Answer
	switch {
	case a.HoldHead:
		return &fakeopenai.Answer{HoldHead: true}
	case a.Status != 0:
		ans = fakeopenai.ErrorAnswer(a.Status, a.Message)
		if a.RetryAfter > 0 {
			ans.Header = http.Header{"Retry-After": {strconv.Itoa(int((a.RetryAfter + time.Second - 1) / time.Second))}}
		}
	case strings.HasSuffix(r.Path, "/embeddings"):
		ans = fakeopenai.EmbeddingsAnswer(r, int(a.Usage.PromptTokens))
	default:
		ans = fakeopenai.ChatAnswer(r, a.Text, int(a.Usage.PromptTokens), int(a.Usage.CompletionTokens))
		if n := a.StallAfter; n > 0 && n < len(ans.Events) {
			ans.Events, ans.HoldOpen = ans.Events[:n], true
		}
		if n := a.FailAfter; n > 0 && n < len(ans.Events) {
			ans.Events = append(ans.Events[:n:n], fakeopenai.StreamErrorEvent(a.Message))
		}
		if n := a.CutAfter; n > 0 && n < len(ans.Events) {
			ans.Events, ans.Cut = ans.Events[:n], true
		}
	}
	if ans.Header == nil {
		ans.Header = http.Header{}
	}
	for k, v := range a.Header {
		ans.Header[k] = v
	}
	if a.RequestID != "" {
		ans.Header.Set("X-Request-Id", a.RequestID)
	}
	return ans
}
