package llmproxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// AccessLog is an Observer that writes one log line per answered request:
// request id, key id and name (never the secret), model, provider,
// connection, status, tokens and latencies. Requests answered 5xx are
// logged at Warn, the rest at Info.
//
// The Gateway observes its inference routes (chat, embeddings) itself;
// wrap the Gateway with Handler to log the other routes too.
type AccessLog struct {
	log *slog.Logger
}

// NewAccessLog returns an AccessLog writing to l; nil discards.
func NewAccessLog(l *slog.Logger) *AccessLog {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &AccessLog{log: l}
}

var _ Observer = (*AccessLog)(nil)

// ObserveRequest writes info as one line.
func (a *AccessLog) ObserveRequest(info *RequestInfo) {
	level := slog.LevelInfo
	if info.Status >= 500 {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 24)
	attrs = append(attrs,
		slog.String("request_id", info.RequestID),
		slog.String("route", info.Route),
		slog.String("method", info.Method),
		slog.Int("status", info.Status),
		slog.String("key_id", info.KeyID),
		slog.String("key_name", info.KeyName),
	)
	if info.Authenticated && info.KeyID == "" {
		attrs = append(attrs, slog.Bool("master_key", true))
	}
	attrs = append(attrs,
		slog.String("model", info.Model),
		slog.String("remote_model", info.RemoteModel),
		slog.String("provider", info.Provider),
		slog.String("connection", info.Connection),
		slog.String("connection_id", info.ConnectionID),
		slog.Bool("stream", info.Streamed),
		slog.Int64("prompt_tokens", info.Usage.PromptTokens),
		slog.Int64("completion_tokens", info.Usage.CompletionTokens),
		slog.Int64("total_tokens", info.Usage.TotalTokens),
	)
	if info.Estimated {
		attrs = append(attrs, slog.Bool("estimated", true))
	}
	if info.Refused != "" {
		attrs = append(attrs, slog.String("refused", info.Refused))
	}
	if info.UpstreamError {
		attrs = append(attrs, slog.Bool("upstream_error", true))
	}
	if info.Attempts > 1 {
		attrs = append(attrs, slog.Int("attempts", info.Attempts))
	}
	attrs = append(attrs, slog.Float64("duration_ms", ms(info.Total)))
	if info.Upstream > 0 {
		attrs = append(attrs, slog.Float64("upstream_ms", ms(info.Upstream)))
	}
	if info.FirstToken > 0 {
		attrs = append(attrs, slog.Float64("first_token_ms", ms(info.FirstToken)))
	}
	a.log.LogAttrs(ctx, level, "request", attrs...)
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// Handler returns next wrapped so that the requests the Gateway does not
// observe itself (RouteOf reports observed false) are logged too, with
// what is known of them: route, method, status and duration. Health
// checks and metric scrapes are logged at Debug, so that probes do not
// fill the log.
func (a *AccessLog) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, observed := RouteOf(r.Method, r.URL.Path)
		if observed {
			next.ServeHTTP(w, r)
			return
		}
		level := slog.LevelInfo
		if route == "health" || route == "metrics" {
			level = slog.LevelDebug
		}
		ctx := r.Context()
		if !a.log.Enabled(ctx, level) && !a.log.Enabled(ctx, slog.LevelWarn) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.Status()
		if status >= 500 {
			level = slog.LevelWarn
		}
		a.log.LogAttrs(ctx, level, "request",
			slog.String("request_id", w.Header().Get("X-Request-Id")),
			slog.String("route", route),
			slog.String("method", r.Method),
			slog.Int("status", status),
			slog.Float64("duration_ms", ms(time.Since(start))),
		)
	})
}

// RouteOf names the route of a request as RequestInfo.Route does: "chat",
// "embeddings", "models", "health", "admin", "metrics" or "other". observed
// reports whether the Gateway tells its Observers about such a request
// itself (a POST to chat or embeddings); middleware that counts or logs
// requests should skip those, so that none is counted twice.
func RouteOf(method, path string) (route string, observed bool) {
	path = strings.TrimSuffix(path, "/")
	switch path {
	case "/v1/chat/completions", "/chat/completions":
		return endpointChat, method == http.MethodPost
	case "/v1/embeddings", "/embeddings":
		return endpointEmbeddings, method == http.MethodPost
	case "/v1/models", "/models":
		return "models", false
	case "/healthz", "/health":
		return "health", false
	case "/metrics":
		return "metrics", false
	}
	switch {
	case strings.HasPrefix(path, "/v1/models/"):
		return "models", false
	case path == "/admin" || strings.HasPrefix(path, "/admin/"):
		return "admin", false
	}
	return "other", false
}

// StatusWriter is an http.ResponseWriter that remembers the status
// written, for middleware. It passes Flush through.
type StatusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records status and writes it.
func (s *StatusWriter) WriteHeader(status int) {
	if s.status == 0 && status >= 200 { // 1xx are interim
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

// Write writes b, recording a 200 if no status was written.
func (s *StatusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer when it can.
func (s *StatusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Status is the status written, 200 if none was (what net/http sends).
func (s *StatusWriter) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
