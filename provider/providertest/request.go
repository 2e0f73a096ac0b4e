package providertest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// newRequest returns the Request a Gateway gives a provider when a client
// POSTs body to endpoint (llmproxy.EndpointChat or EndpointEmbeddings)
// and the body's model is served by remote. header, when not nil,
// replaces the header the Gateway passes on (the client's, without its
// Authorization and api-key), so that the suite can check what a provider
// does with any header.
//
// llmproxy.Request keeps where the body's top-level fields are in an
// unexported member, which UpstreamBody needs (a bare struct literal
// rewrites the body into invalid JSON), and the root package has no
// exported way to set it. So the request is taken from a Gateway that
// served body, through a provider that only keeps it. When the root
// package has a constructor, this function becomes a call of it.
func newRequest(t *testing.T, endpoint, body, remote string, header http.Header) *llmproxy.Request {
	t.Helper()
	var b struct {
		Model string `json:"model"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil || b.Model == "" {
		t.Fatalf("providertest: request body without a model: %s", body)
	}
	ctx := context.Background()
	store := memory.New()
	defer store.Close()
	conn := &llmproxy.Connection{Name: "capture", Provider: "capture"}
	if err := store.CreateConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateModel(ctx, &llmproxy.Model{Name: b.Model, Remote: remote, ConnectionID: conn.ID}); err != nil {
		t.Fatal(err)
	}
	var got *llmproxy.Request
	capture := func(llmproxy.Connection, llmproxy.ProviderOptions) (llmproxy.Provider, error) {
		return captureProvider{&got}, nil
	}
	const master = "providertest-master-key"
	gw, err := llmproxy.New(llmproxy.Config{
		Storage:   store,
		Providers: map[string]llmproxy.NewProviderFunc{"capture": capture},
		MasterKey: master,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	path := "/v1/chat/completions"
	if endpoint == llmproxy.EndpointEmbeddings {
		path = "/v1/embeddings"
	}
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+master)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, r)
	if got == nil {
		t.Fatalf("providertest: the gateway did not pass the request on: %d %s", w.Code, w.Body)
	}
	if header != nil {
		got.Header = header
	}
	return got
}

// captureProvider keeps the request it is given, and refuses it so that
// the gateway answers at once.
type captureProvider struct{ req **llmproxy.Request }

func (p captureProvider) ChatCompletion(_ context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	*p.req = req
	return nil, llmproxy.BadRequest("", "captured")
}

func (p captureProvider) Embeddings(ctx context.Context, req *llmproxy.Request) (*llmproxy.Response, error) {
	return p.ChatCompletion(ctx, req)
}
