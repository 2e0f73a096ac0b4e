package bedrock_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock/bedrocktest"
	"github.com/go-llm-proxy/llmproxy/provider/providertest"
)

// TestContract runs the provider contract suite.
func TestContract(t *testing.T) { providertest.Run(t, contract) }

// contract runs the suite against a Bedrock connection to bedrocktest,
// which verifies SigV4 signatures and answers Converse JSON and
// ConverseStream's AWS event stream. Bedrock sends no Retry-After, and
// passes no OpenAI headers back.
var contract = providertest.Harness{Start: startFake}

func startFake(t *testing.T, opts llmproxy.ProviderOptions, a providertest.Answer) providertest.Fake {
	fake := bedrocktest.NewServer()
	fake.SecretAccessKey = "contract-secret"
	t.Cleanup(fake.Close)
	fake.Handler = func(c *bedrocktest.Call) *bedrocktest.Reply { return answer(c, a) }
	p, err := bedrock.New(llmproxy.Connection{Name: "contract", Provider: llmproxy.KindBedrock, Endpoint: fake.URL,
		Credentials: llmproxy.Credentials{AccessKeyID: fake.AccessKeyID, SecretAccessKey: fake.SecretAccessKey},
		// One attempt: the suite counts calls, and the SDK's retries of
		// 429 and 5xx would only slow it down.
		Settings: map[string]string{bedrock.SettingRegion: fake.Region, bedrock.SettingMaxAttempts: "1"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return providertest.Fake{Provider: p, Calls: func() []providertest.Call {
		var calls []providertest.Call
		for _, c := range fake.Calls() {
			calls = append(calls, providertest.Call{Model: c.ModelID, Header: c.Header, Done: c.Done})
		}
		return calls
	}}
}

// exceptions are the errors Bedrock answers with each status.
var exceptions = map[int]string{
	400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
	404: "ResourceNotFoundException", 429: "ThrottlingException", 500: "InternalServerException",
	503: "ServiceUnavailableException",
}

// answer writes a as Bedrock does.
func answer(c *bedrocktest.Call, a providertest.Answer) *bedrocktest.Reply {
	var r *bedrocktest.Reply
	switch {
	case a.HoldHead:
		return &bedrocktest.Reply{HoldHead: true}
	case a.Status != 0:
		r = bedrocktest.Error(a.Status, exceptions[a.Status], a.Message)
	case c.Operation == bedrocktest.OpInvoke:
		r = bedrocktest.EmbeddingReply([]float64{0.125, -0.5, 0.25}, int(a.Usage.PromptTokens))
	default:
		r = bedrocktest.TextReply(a.Text, int(a.Usage.PromptTokens), int(a.Usage.CompletionTokens))
		if c.Operation != bedrocktest.OpConverseStream {
			break
		}
		events := bedrocktest.StreamEvents(r.Body)
		if n := a.StallAfter; n > 0 && n < len(events) {
			r.Events, r.HoldOpen = events[:n], true
		}
		if n := a.FailAfter; n > 0 && n < len(events) {
			payload, _ := json.Marshal(map[string]any{"message": a.Message, "originalStatusCode": 500})
			r.Events = append(events[:n:n], bedrocktest.Event{Type: "modelStreamErrorException", Exception: true, Payload: payload})
		}
		if n := a.CutAfter; n > 0 && n < len(events) {
			r.Events, r.Cut = events[:n], true
		}
	}
	r.Header = http.Header{}
	for k, v := range a.Header {
		r.Header[k] = v
	}
	if a.RequestID != "" {
		r.Header.Set("X-Amzn-Requestid", a.RequestID)
	}
	return r
}
