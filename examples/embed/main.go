// Command embed is an existing net/http service that mounts the LLM
// gateway next to its own routes: llmproxy.Gateway is an http.Handler.
//
// It keeps its configuration in memory and sets it up at start with the
// same Admin operations the llm-proxy CLI uses: one OpenAI-compatible
// connection, one model alias and one virtual key.
//
//	UPSTREAM_URL=https://api.openai.com/v1 UPSTREAM_API_KEY=sk-... \
//	UPSTREAM_MODEL=gpt-4o-mini go run ./examples/embed
//
// then call it as OpenAI, with the printed key:
//
//	curl localhost:8080/v1/chat/completions -H "Authorization: Bearer $KEY" \
//	  -d '{"model":"chat","messages":[{"role":"user","content":"hi"}]}'
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled. It prints the address it listens on
// and the virtual key to use.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	addr := getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	upstream := getenv("UPSTREAM_URL")
	if upstream == "" {
		return errors.New("set UPSTREAM_URL to an OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
	}

	// The gateway's configuration: one connection, one alias, one key.
	store := memory.New()
	admin := &admin.Service{Storage: store}
	conn := &llmproxy.Connection{
		Name:        "upstream",
		Provider:    llmproxy.KindCompatible,
		Endpoint:    upstream,
		Credentials: llmproxy.Credentials{APIKey: getenv("UPSTREAM_API_KEY")},
	}
	if err := admin.AddConnection(ctx, conn); err != nil {
		return err
	}
	remote := getenv("UPSTREAM_MODEL")
	if remote == "" {
		remote = "gpt-4o-mini"
	}
	if err := admin.AddModel(ctx, &llmproxy.Model{Name: "chat", Remote: remote, ConnectionID: conn.ID}); err != nil {
		return err
	}
	key := &llmproxy.VirtualKey{Name: "app", Assignments: []llmproxy.Assignment{{ConnectionID: conn.ID, TPS: 10}}}
	secret, err := admin.AddKey(ctx, key, getenv("PROXY_KEY")) // empty: a new random key
	if err != nil {
		return err
	}

	gw, err := llmproxy.New(llmproxy.Config{
		Storage:   store,
		Providers: map[string]llmproxy.NewProviderFunc{llmproxy.KindCompatible: openai.New},
	})
	if err != nil {
		return err
	}
	defer gw.Close() // after the server has stopped: writes the last usage records

	// The service's own routes, and the gateway beside them. The gateway
	// serves /v1/...; to put it under a prefix instead, mount
	// http.StripPrefix("/llm", gw) at "/llm/".
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from the host service")
	})
	mux.HandleFunc("GET /usage", func(w http.ResponseWriter, r *http.Request) {
		sums, err := admin.Usage(r.Context(), llmproxy.UsageFilter{})
		if err != nil {
			http.Error(w, "usage unavailable", http.StatusInternalServerError)
			return
		}
		for _, s := range sums {
			fmt.Fprintf(w, "%s %s requests=%d tokens=%d\n", s.KeyID, s.Model, s.Requests, s.TotalTokens)
		}
	})
	mux.Handle("/v1/", gw)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\nvirtual key: %s\n", ln.Addr(), secret)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
