package providertest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

// newRequest returns the Request a Gateway gives a provider when a client
// POSTs body (to chat completions or embeddings) naming a model that remote serves. header, when not nil, is the header
// passed on (the Gateway passes the client's without its Authorization
// and api-key), so that the suite can check what a provider does with
// any header.
func newRequest(t *testing.T, body, remote string, header http.Header) *llmproxy.Request {
	t.Helper()
	var b struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil || b.Model == "" {
		t.Fatalf("providertest: request body without a model: %s", body)
	}
	if header == nil {
		header = http.Header{"Content-Type": {"application/json"}}
	}
	return &llmproxy.Request{Body: []byte(body), Model: b.Model, RemoteModel: remote, Stream: b.Stream, Header: header}
}
