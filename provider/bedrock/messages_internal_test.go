package bedrock

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

// FuzzInvokeBody: for any JSON object, Bedrock's body is a JSON object
// without model and stream, with an anthropic_version, and every other
// member's value exactly as the client wrote it.
func FuzzInvokeBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","stream":true,"max_tokens":5,"messages":[]}`,
		`{}`, ` { "a" : [ 1 , {"b":"\u00e9"} ] } `,
		`{"anthropic_beta":["context-1m-2025-08-07","x"],"anthropic_version":"v"}`,
		`{"mod\u0065l":1,"thinking":{"budget_tokens":10}}`,
	} {
		f.Add([]byte(s), "interleaved-thinking-2025-05-14,claude-code-20250219", false)
	}
	p := &Provider{log: slog.New(slog.DiscardHandler), betas: newBetaPolicy(nil)}
	f.Fuzz(func(t *testing.T, body []byte, beta string, count bool) {
		if !isJSONObject(body) {
			return
		}
		req := &llmproxy.Request{Body: body, Header: http.Header{"Anthropic-Beta": {beta}}}
		out, err := p.invokeBody(req, count)
		if err != nil {
			return // a bad anthropic_beta
		}
		var in, got map[string]json.RawMessage
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s -> invalid %s: %v", body, out, err)
		}
		if _, ok := got["model"]; ok {
			t.Errorf("%s -> %s keeps model", body, out)
		}
		if _, ok := got["stream"]; ok {
			t.Errorf("%s -> %s keeps stream", body, out)
		}
		if _, ok := got["anthropic_version"]; !ok {
			t.Errorf("%s -> %s has no anthropic_version", body, out)
		}
		for k, v := range in {
			switch k {
			case "model", "stream", "anthropic_beta":
				continue
			}
			if !bytes.Equal(got[k], v) {
				t.Errorf("%s -> %s: %s = %s, was %s", body, out, k, got[k], v)
			}
		}
	})
}
