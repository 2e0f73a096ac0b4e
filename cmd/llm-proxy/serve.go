package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/adminapi"
	"github.com/go-llm-proxy/llmproxy/console"
	"github.com/go-llm-proxy/llmproxy/redislimit"
)

func newServeCmd(e *env) *cobra.Command {
	var (
		port        int
		addr        string
		grace       time.Duration
		configPath  string
		metricsAddr string
		noMetrics   bool
		debugAddr   string
		alertHooks  []string
		noUI        bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models
and GET /healthz. On SIGINT or SIGTERM it stops accepting connections, lets
requests and streams in flight finish for up to --shutdown-grace, writes the
remaining usage records and exits; a second signal exits at once.

Also served: GET /metrics (Prometheus) and, when MASTER_KEY is set, the admin
REST API under /admin/v1 (its OpenAPI document at /admin/v1/openapi.json) and
the web console at /ui/ (sign in with the master key, or with a virtual key to
see that key's usage; --no-ui turns the console off).
The metrics name every key and its usage, so on this listener they answer
only 'Authorization: Bearer TOKEN' with METRICS_TOKEN or MASTER_KEY as TOKEN;
--metrics-addr (METRICS_ADDR) moves them to a listener of their own, without
a token, and --no-metrics or METRICS=off turns them off.

One access-log line per request goes to stderr: LOG_FORMAT text or json,
LOG_LEVEL debug, info, warn or error.

Unless GOGC or GOMEMLIMIT is set, the garbage collector lets the heap grow
to 64 MiB between collections while little of it is live, instead of
collecting many times a second for a few live MiB.

Budget alerts (50%, 80% and 100% of a budget spent in its period) are POSTed
as JSON to every --alert-webhook URL and ALERT_WEBHOOKS (comma-separated),
retried until accepted, with X-Llm-Proxy-Signature: sha256=HMAC of the body
under ALERT_WEBHOOK_SECRET when it is set.

RESPONSE_RETENTION (a duration, default 720h) is how long the Responses API's
stored responses are kept; expired ones are deleted every hour.

UPSTREAM_CLIENT=h1client calls plain-HTTP upstreams through a lean HTTP/1.1
client instead of net/http's (faster; its limits are in llmproxy's
HTTP1Transport documentation).

--debug-addr (env DEBUG_ADDR) serves Go's profiler (/debug/pprof/) on a
listener of its own, for finding where CPU and memory go under real load;
keep it on a loopback or otherwise private address.

--config reads a YAML file whose "server" section holds these settings
(port, addr, db_type, db_dsn, master_key, encryption_key, redis_url,
log_format, log_level, metrics, metrics_addr, shutdown_grace); values may be
${NAME} references to environment variables. Environment variables that are
set win over the file, and flags win over both. The file's connections,
models and keys are not applied by serve: see "llm-proxy apply".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := e.useConfigFile(cmd, configPath); err != nil {
				return err
			}
			if addr == "" {
				addr = ":" + strconv.Itoa(port)
			}
			off, err := metricsOff(e.getenv("METRICS"))
			if err != nil {
				return err
			}
			if noMetrics || off {
				metricsAddr = "off"
			}
			if debugAddr != "" {
				stop, err := serveDebug(debugAddr, e)
				if err != nil {
					return err
				}
				defer stop()
			}
			return e.serve(cmd.Context(), addr, metricsAddr, grace, alertHooks, !noUI)
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
	f.StringVar(&configPath, "config", "", "YAML configuration file (see above)")
	f.StringVar(&metricsAddr, "metrics-addr", e.getenv("METRICS_ADDR"), "serve /metrics on this address instead of the main one, e.g. 127.0.0.1:9090 (env METRICS_ADDR)")
	f.BoolVar(&noMetrics, "no-metrics", false, "do not serve /metrics (env METRICS=off)")
	f.StringArrayVar(&alertHooks, "alert-webhook", nil, "POST budget alerts to this URL; repeatable (env ALERT_WEBHOOKS, comma-separated)")
	f.BoolVar(&noUI, "no-ui", false, "do not serve the web console at /ui/ (served when MASTER_KEY is set)")
	f.StringVar(&debugAddr, "debug-addr", e.getenv("DEBUG_ADDR"), "serve /debug/pprof/ on this private address, e.g. 127.0.0.1:6060 (env DEBUG_ADDR)")
	return cmd
}

// serve runs the gateway on addr until ctx is cancelled, then shuts down
// gracefully. metricsAddr is "" for /metrics on addr, "off" for none, or
// the address of a listener of its own. withUI serves the web console
// at /ui/ when there is a master key.
func (e *env) serve(ctx context.Context, addr, metricsAddr string, grace time.Duration, alertHooks []string, withUI bool) error {
	// Log lines are batched (see logBuffer) so that requests do not pay a
	// write syscall each; the deferred Close, run last, writes what is
	// left on every way out.
	logs := newLogBuffer(e.stderr)
	defer logs.Close()
	defer startGCTuner(gcHeapFloor, e.getenv)()
	log, access, err := e.logger(logs)
	if err != nil {
		return err
	}
	obs, err := newObservability(access, metricsAddr != "off")
	if err != nil {
		return err
	}
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
		Observers: obs.observers(),
	}
	if v := e.getenv("RESPONSE_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("RESPONSE_RETENTION=%q: want a positive duration such as 720h (30 days) or 24h", v)
		}
		cfg.ResponseRetention = d
	}
	for _, u := range strings.Split(e.getenv("ALERT_WEBHOOKS"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			alertHooks = append(alertHooks, u)
		}
	}
	cfg.AlertWebhooks, cfg.AlertWebhookSecret = alertHooks, e.getenv("ALERT_WEBHOOK_SECRET")
	switch v := e.getenv("UPSTREAM_CLIENT"); v {
	case "", "net/http":
	case "h1client":
		cfg.HTTPClient = &http.Client{Transport: &llmproxy.HTTP1Transport{}}
	default:
		return fmt.Errorf("UPSTREAM_CLIENT=%q: want net/http or h1client", v)
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
	var adminAPI, ui, metricsHere http.Handler
	if cfg.MasterKey != "" {
		p := providers()
		svc := &admin.Service{Storage: s, Kinds: slices.Sorted(maps.Keys(p)), Providers: p}
		adminAPI = adminapi.New(adminapi.Config{
			Admin:     svc,
			MasterKey: cfg.MasterKey,
			Logger:    log,
		})
		if withUI {
			c, err := console.New(console.Config{Admin: svc, Storage: s, Gateway: gw, MasterKey: cfg.MasterKey, Logger: log})
			if err != nil {
				gw.Close()
				return err
			}
			ui = c
		}
	}
	var msrv *http.Server
	var mln net.Listener
	switch metricsAddr {
	case "off":
	case "":
		// Every client reaches this listener: the metrics need a token.
		metricsHere = requireToken(obs.metricsHandler(gw), cfg.MasterKey, e.getenv("METRICS_TOKEN"))
	default:
		if mln, err = net.Listen("tcp", metricsAddr); err != nil {
			gw.Close()
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", obs.metricsHandler(gw))
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		gw.Close()
		return err
	}
	srv := &http.Server{
		Handler:           obs.handler(gw, adminAPI, ui, metricsHere),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("llm-proxy listening", "addr", ln.Addr().String(), "db_type", e.dbType, "shared_limits", cfg.Limiter != nil,
		"admin_api", adminAPI != nil, "console", ui != nil, "metrics", metricsAddr != "off")
	if ui != nil {
		log.Info("console at /ui/", "url", "http://"+ln.Addr().String()+console.Prefix+"/")
	}
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
