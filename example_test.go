package llmproxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

// A Gateway mounted in a service's own ServeMux, in front of an
// OpenAI-compatible upstream, serving one virtual key.
func Example() {
	// Stands in for a real provider.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":"upstream saw model %v"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`,
			strings.Contains(string(body), `"model":"gpt-4o-mini"`))
	}))
	defer upstream.Close()

	ctx := context.Background()
	store := memory.New()
	conn := &llmproxy.Connection{Name: "openai", Provider: llmproxy.KindCompatible, Endpoint: upstream.URL, Credentials: llmproxy.Credentials{APIKey: "sk-real"}}
	if err := store.CreateConnection(ctx, conn); err != nil {
		panic(err)
	}
	if err := store.CreateModel(ctx, &llmproxy.Model{Name: "chat", Remote: "gpt-4o-mini", ConnectionID: conn.ID}); err != nil {
		panic(err)
	}
	if err := store.CreateKey(ctx, &llmproxy.VirtualKey{Name: "team-a", Hash: llmproxy.HashKey("sk-team-a"), Prefix: llmproxy.KeyPrefix("sk-team-a"),
		Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID, TPS: 10}}}); err != nil {
		panic(err)
	}

	gw, err := llmproxy.New(llmproxy.Config{
		Storage:   store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", gw)
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the service's own route") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer gw.Close() // after the server: writes the queued usage

	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer sk-team-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Ratelimit-Limit-Requests"))
	fmt.Println(string(body))
	// Output:
	// 200 10
	// {"choices":[{"message":{"role":"assistant","content":"upstream saw model true"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}
}
