package azure_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/azure"
	"github.com/go-llm-proxy/llmproxy/provider/azure/azuretest"
	"github.com/go-llm-proxy/llmproxy/provider/providertest"
)

// TestContract runs the provider contract suite.
func TestContract(t *testing.T) { providertest.Run(t, contract) }

// contract runs the suite against an Azure connection to azuretest,
// which checks the deployment URL, the api-version and the api-key.
var contract = providertest.Harness{
	Start:           startFake,
	RetryAfter:      true,
	ResponseHeaders: []string{"Openai-Processing-Ms", "Openai-Version"},
}

func startFake(t *testing.T, opts llmproxy.ProviderOptions, a providertest.Answer) providertest.Fake {
	fake := azuretest.NewServer()
	t.Cleanup(fake.Close)
	fake.Handler = func(c *azuretest.Call) *azuretest.Reply { return answer(c, a) }
	p, err := azure.New(llmproxy.Connection{Name: "contract", Provider: llmproxy.KindAzure, Endpoint: fake.URL,
		Credentials: llmproxy.Credentials{APIKey: fake.APIKey}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return providertest.Fake{Provider: p, Calls: func() []providertest.Call {
		var calls []providertest.Call
		for _, c := range fake.Calls() {
			calls = append(calls, providertest.Call{Model: c.Deployment, Header: c.Header, Done: c.Done})
		}
		return calls
	}}
}

// errorCodes are the codes Azure puts in its error envelopes.
var errorCodes = map[int]string{
	400: "BadRequest", 401: "401", 403: "403", 404: "DeploymentNotFound",
	429: "429", 500: "InternalServerError", 503: "ServiceUnavailable",
}

// answer writes a as Azure does.
func answer(c *azuretest.Call, a providertest.Answer) *azuretest.Reply {
	var r *azuretest.Reply
	switch {
	case a.HoldHead:
		return &azuretest.Reply{HoldHead: true}
	case a.Status != 0:
		r = azuretest.Error(a.Status, errorCodes[a.Status], a.Message)
		if a.RetryAfter > 0 {
			// Azure sends both.
			r.Header = http.Header{
				"Retry-After":    {strconv.Itoa(int(a.RetryAfter.Seconds()))},
				"Retry-After-Ms": {strconv.Itoa(int(a.RetryAfter.Milliseconds()))},
			}
		}
	case c.Operation == "embeddings":
		r = azuretest.EmbeddingsReply(c, int(a.Usage.PromptTokens))
	default:
		r = azuretest.ChatReply(c, a.Text, int(a.Usage.PromptTokens), int(a.Usage.CompletionTokens))
		if n := a.StallAfter; n > 0 && n < len(r.Events) {
			r.Events, r.HoldOpen = r.Events[:n], true
		}
		if n := a.FailAfter; n > 0 && n < len(r.Events) {
			r.Events = append(r.Events[:n:n], azuretest.StreamError("server_error", a.Message))
		}
		if n := a.CutAfter; n > 0 && n < len(r.Events) {
			r.Events, r.Cut = r.Events[:n], true
		}
	}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	for k, v := range a.Header {
		r.Header[k] = v
	}
	if a.RequestID != "" {
		r.Header.Set("X-Request-Id", a.RequestID)
	}
	return r
}
