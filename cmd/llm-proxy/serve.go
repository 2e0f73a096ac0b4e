package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/redislimit"
)

func newServeCmd(e *env) *cobra.Command {
	var (
		port  int
		addr  string
		grace time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models
and GET /healthz. On SIGINT or SIGTERM it stops accepting connections, lets
requests and streams in flight finish for up to --shutdown-grace, writes the
remaining usage records and exits; a second signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				addr = ":" + strconv.Itoa(port)
			}
			return e.serve(cmd.Context(), addr, grace)
		},
	}
	defPort := 8080
	if v := e.getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			// Reported when serve runs, not for every command.
			cmd.PreRunE = func(*cobra.Command, []string) error {
				return fmt.Errorf("PORT=%q is not a port number", v)
			}
		} else {
			defPort = p
		}
	}
	f := cmd.Flags()
	f.IntVar(&port, "port", defPort, "port to listen on (env PORT)")
	f.StringVar(&addr, "addr", "", "address to listen on, e.g. 127.0.0.1:8080 (overrides --port)")
	f.DurationVar(&grace, "shutdown-grace", 30*time.Second, "how long requests in flight may take to finish on shutdown")
	return cmd
}

// serve runs the gateway on addr until ctx is cancelled, then shuts down
// gracefully.
func (e *env) serve(ctx context.Context, addr string, grace time.Duration) error {
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	s, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := llmproxy.Config{
		Storage:   s,
		Providers: providers(),
		MasterKey: e.getenv("MASTER_KEY"),
		Logger:    log,
	}
	if url := e.getenv("REDIS_URL"); url != "" {
		// Limits shared by every replica. A Redis that is down now is
		// not fatal: the gateway falls back to local limits until it
		// answers.
		rl, err := redislimit.Open(url, redislimit.Options{})
		if err != nil {
			return err
		}
		defer rl.Close()
		if err := rl.Ping(ctx); err != nil {
			log.Warn("Redis does not answer yet; using per-replica limits until it does")
		}
		cfg.Limiter = rl
	}
	gw, err := llmproxy.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		gw.Close()
		return err
	}
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("llm-proxy listening", "addr", ln.Addr().String(), "db_type", e.dbType, "shared_limits", cfg.Limiter != nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight", "grace", grace)
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("grace period over: closing the connections still open")
			srv.Close()
		}
		cancel()
		<-served
	}
	// Write the usage records still buffered.
	if err := gw.Close(); err != nil {
		log.Error("flushing usage on shutdown", "err", err)
		if serveErr == nil {
			serveErr = err
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if serveErr == nil {
		log.Info("llm-proxy stopped")
	}
	return serveErr
}
