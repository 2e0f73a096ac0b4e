package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/accesslog"
	"github.com/go-llm-proxy/llmproxy/adminapi"
	"github.com/go-llm-proxy/llmproxy/console"
	"github.com/go-llm-proxy/llmproxy/metrics"
)

// logger returns the process's logger and the access log that matches
// it: LOG_FORMAT text (default) or json, LOG_LEVEL debug, info (default),
// warn or error. Both write to buf, and flush it after every line at Warn
// or above; with buf nil they write to stderr directly.
func (e *env) logger(buf *logBuffer) (*slog.Logger, *accesslog.Log, error) {
	var level slog.Level
	switch v := strings.ToLower(strings.TrimSpace(e.getenv("LOG_LEVEL"))); v {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, nil, fmt.Errorf("LOG_LEVEL=%q: use debug, info, warn or error", v)
	}
	opts := &slog.HandlerOptions{Level: level}
	var w io.Writer
	if buf != nil {
		w = buf
	} else {
		// The logger and the access log each serialize their own writes;
		// this lock keeps their lines apart on any stderr.
		w = &lockedWriter{w: e.stderr}
	}
	var h slog.Handler
	format := accesslog.Text
	switch v := strings.ToLower(strings.TrimSpace(e.getenv("LOG_FORMAT"))); v {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
		format = accesslog.JSON
	default:
		return nil, nil, fmt.Errorf("LOG_FORMAT=%q: use text or json", v)
	}
	if buf != nil {
		h = flushOnWarn{h, buf}
	}
	// The access log writes the lines h would without going through h,
	// whose cost per attribute showed in CPU profiles under load; it
	// flushes buf after Warn lines itself.
	return slog.New(h), accesslog.NewWriter(w, format, level), nil
}

// lockedWriter serializes Writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// metricsOff reads METRICS: on (default) or off.
func metricsOff(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "on", "true", "1", "yes":
		return false, nil
	case "off", "false", "0", "no":
		return true, nil
	}
	return false, fmt.Errorf("METRICS=%q: use on or off", v)
}

// observability is what serve measures and logs with.
type observability struct {
	reg     *prometheus.Registry // nil when metrics are off
	metrics *metrics.Metrics
	access  *accesslog.Log
}

// newObservability returns serve's metrics (when withMetrics) with its
// access log.
func newObservability(access *accesslog.Log, withMetrics bool) (*observability, error) {
	o := &observability{access: access}
	if withMetrics {
		o.reg = prometheus.NewRegistry()
		o.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		var err error
		if o.metrics, err = metrics.New(o.reg); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// observers are the Gateway's Config.Observers.
func (o *observability) observers() []llmproxy.Observer {
	obs := []llmproxy.Observer{o.access}
	if o.metrics != nil {
		obs = append(obs, o.metrics)
	}
	return obs
}

// metricsHandler serves /metrics, gathering gw's live state too.
func (o *observability) metricsHandler(gw *llmproxy.Gateway) http.Handler {
	o.reg.MustRegister(metrics.NewStatsCollector(gw))
	return promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{})
}

// Answers of requireToken, in OpenAI's error shape as everything else the
// main listener answers.
var (
	errMetricsOff = &llmproxy.Error{Status: http.StatusForbidden, Type: llmproxy.TypePermission, Code: "metrics_token_required",
		Message: "GET /metrics on this listener needs a token, and none is configured: set METRICS_TOKEN (or MASTER_KEY) and send it as 'Authorization: Bearer TOKEN', or serve the metrics on a listener of their own with --metrics-addr (METRICS_ADDR)."}
	errMetricsNoToken = &llmproxy.Error{Status: http.StatusUnauthorized, Type: llmproxy.TypeAuthentication, Code: "invalid_api_key",
		Message: "GET /metrics needs METRICS_TOKEN or the master key: send it as 'Authorization: Bearer TOKEN'."}
	errMetricsBadToken = &llmproxy.Error{Status: http.StatusUnauthorized, Type: llmproxy.TypeAuthentication, Code: "invalid_api_key",
		Message: "Incorrect token provided. GET /metrics needs METRICS_TOKEN or the master key."}
)

// requireToken serves h only to requests bearing one of tokens ("" ones
// are ignored) as "Authorization: Bearer TOKEN", which is how Prometheus
// sends its authorization setting. It guards /metrics on the main
// listener, which every client of the gateway reaches: the metrics name
// every key with its token counts, so without it one team could read
// every other team's traffic. With no token at all it refuses everyone,
// saying how to enable it.
func requireToken(h http.Handler, tokens ...string) http.Handler {
	var sums [][sha256.Size]byte
	for _, t := range tokens {
		if t != "" {
			sums = append(sums, sha256.Sum256([]byte(t)))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(sums) == 0 {
			llmproxy.WriteError(w, errMetricsOff)
			return
		}
		a := r.Header.Get("Authorization")
		if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") || strings.TrimSpace(a[7:]) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			llmproxy.WriteError(w, errMetricsNoToken)
			return
		}
		// Hashes of equal length compared in constant time, every one of
		// them: how long this takes says nothing about the tokens.
		sum := sha256.Sum256([]byte(strings.TrimSpace(a[7:])))
		match := 0
		for i := range sums {
			match |= subtle.ConstantTimeCompare(sum[:], sums[i][:])
		}
		if match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics", error="invalid_token"`)
			llmproxy.WriteError(w, errMetricsBadToken)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handler is the main listener's handler: the Gateway, the admin API
// under /admin/v1 (when admin is not nil), the web console under /ui/
// (when ui is not nil) and /metrics (when metricsHere is not nil; serve
// guards it with requireToken), every request counted and logged.
func (o *observability) handler(gw *llmproxy.Gateway, admin, ui, metricsHere http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", gw)
	if admin != nil {
		mux.Handle(adminapi.Prefix+"/", admin)
	}
	if ui != nil {
		mux.Handle(console.Prefix+"/", ui)
	}
	if metricsHere != nil {
		mux.Handle("/metrics", metricsHere)
	}
	var h http.Handler = mux
	if o.metrics != nil {
		h = o.metrics.Handler(h)
	}
	h = o.access.Handler(h)
	// The Gateway observes chat and embeddings itself, so those go to it
	// straight: no wrapper does anything for them, and a stream then
	// waits for its events on a shallower stack.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, observed := llmproxy.RouteOf(r.Method, r.URL.Path); observed {
			gw.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
