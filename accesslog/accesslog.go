// Package accesslog writes one log line per request a Gateway answers, as
// an llmproxy.Observer, and wraps a handler to log the routes the Gateway
// does not observe itself.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// Log is an llmproxy.Observer that writes one log line per answered request:
// request id, key id and name (never the secret), model, provider,
// connection, status, tokens and latencies. Requests answered 5xx are
// logged at Warn, the rest at Info.
//
// The Gateway observes its inference routes (chat, embeddings) itself;
// wrap the Gateway with Handler to log the other routes too.
//
// An Log is safe for concurrent use.
type Log struct {
	log *slog.Logger // nil when made by NewWriter

	// Made by NewWriter: lines formatted here, written to w.
	mu       sync.Mutex // held for w.Write, so that lines never interleave
	w        io.Writer
	flush    func() error // w's Flush method, or nil
	json     bool
	level    slog.Leveler // nil when minLevel is fixed
	minLevel slog.Level

	now func() time.Time // time.Now; tests pin it
}

// New returns an Log writing to l; nil discards.
func New(l *slog.Logger) *Log {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Log{log: l, now: time.Now}
}

// NewWriter returns an Log that writes to w the very bytes
// that slog.New(h) would, where h is slog.NewTextHandler (for
// Text) or slog.NewJSONHandler (for JSON) with
// HandlerOptions{Level: level}; a nil level is Info, as there. It formats
// each line itself, which costs a fraction of going through slog's
// handler, and hands it to w in one Write call. Writes are serialized, so
// w need not be safe for concurrent use; but a w shared with another
// logger must be, as the two do not share a lock.
//
// If w has a method Flush() error, it is called after every line at Warn
// or above, so that a buffering writer lets no warning wait. A nil w
// discards; any format other than JSON is text.
func NewWriter(w io.Writer, format Format, level slog.Leveler) *Log {
	if w == nil {
		return New(nil)
	}
	a := &Log{w: w, json: format == JSON, now: time.Now}
	if f, ok := w.(interface{ Flush() error }); ok {
		a.flush = f.Flush
	}
	switch l := level.(type) {
	case nil:
		a.minLevel = slog.LevelInfo
	case slog.Level:
		a.minLevel = l
	default:
		a.level = l // a LevelVar, say: asked on every line
	}
	return a
}

var _ llmproxy.Observer = (*Log)(nil)

// enabled reports whether a line at level is written.
func (a *Log) enabled(ctx context.Context, level slog.Level) bool {
	switch {
	case a.log != nil:
		return a.log.Enabled(ctx, level)
	case a.level != nil:
		return level >= a.level.Level()
	}
	return level >= a.minLevel
}

// write hands l's line to w, then flushes w for a line at Warn or above.
func (a *Log) write(l *accessLine, level slog.Level) {
	a.mu.Lock()
	a.w.Write(l.buf) // as with slog, a failed line is lost, not reported
	a.mu.Unlock()
	if a.flush != nil && level >= slog.LevelWarn {
		a.flush()
	}
}

// ObserveRequest writes info as one line.
func (a *Log) ObserveRequest(info *llmproxy.RequestInfo) {
	level := slog.LevelInfo
	if info.Status >= 500 {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !a.enabled(ctx, level) {
		return
	}
	if a.log == nil {
		l := newAccessLine(a.json)
		l.start(a.now(), level, "request")
		requestFields(l, info)
		l.end()
		a.write(l, level)
		l.free()
		return
	}
	var attrs attrList = make([]slog.Attr, 0, 24)
	requestFields(&attrs, info)
	a.log.LogAttrs(ctx, level, "request", attrs...)
}

// fields takes a log line's attributes in order: an accessLine formats
// them, an attrList collects them for slog. One list of fields serves
// both, so the two kinds of Log write the same attributes.
type fields interface {
	string(k, v string)
	int(k string, v int64)
	bool(k string, v bool)
	float(k string, v float64)
}

// attrList collects attributes for slog.
type attrList []slog.Attr

func (l *attrList) string(k, v string)        { *l = append(*l, slog.String(k, v)) }
func (l *attrList) int(k string, v int64)     { *l = append(*l, slog.Int64(k, v)) }
func (l *attrList) bool(k string, v bool)     { *l = append(*l, slog.Bool(k, v)) }
func (l *attrList) float(k string, v float64) { *l = append(*l, slog.Float64(k, v)) }

// requestFields gives f the attributes of ObserveRequest's line.
func requestFields(f fields, info *llmproxy.RequestInfo) {
	f.string("request_id", info.RequestID)
	f.string("route", info.Route)
	f.string("method", info.Method)
	f.int("status", int64(info.Status))
	f.string("key_id", info.KeyID)
	f.string("key_name", info.KeyName)
	if info.Authenticated && info.KeyID == "" {
		f.bool("master_key", true)
	}
	f.string("model", info.Model)
	f.string("remote_model", info.RemoteModel)
	f.string("provider", info.Provider)
	f.string("connection", info.Connection)
	f.string("connection_id", info.ConnectionID)
	f.bool("stream", info.Streamed)
	f.int("prompt_tokens", info.Usage.PromptTokens)
	f.int("completion_tokens", info.Usage.CompletionTokens)
	f.int("total_tokens", info.Usage.TotalTokens)
	if info.Estimated {
		f.bool("estimated", true)
	}
	if info.Refused != "" {
		f.string("refused", info.Refused)
	}
	if info.UpstreamError {
		f.bool("upstream_error", true)
	}
	if info.Attempts > 1 {
		f.int("attempts", int64(info.Attempts))
	}
	f.float("duration_ms", ms(info.Total))
	if info.Upstream > 0 {
		f.float("upstream_ms", ms(info.Upstream))
	}
	if info.FirstToken > 0 {
		f.float("first_token_ms", ms(info.FirstToken))
	}
}

// routeFields gives f the attributes of Handler's line.
func routeFields(f fields, requestID, route, method string, status int, d time.Duration) {
	f.string("request_id", requestID)
	f.string("route", route)
	f.string("method", method)
	f.int("status", int64(status))
	f.float("duration_ms", ms(d))
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// Handler returns next wrapped so that the requests the Gateway does not
// observe itself (llmproxy.RouteOf reports observed false) are logged too, with
// what is known of them: route, method, status and duration. Health
// checks and metric scrapes are logged at Debug, so that probes do not
// fill the log.
func (a *Log) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, observed := llmproxy.RouteOf(r.Method, r.URL.Path)
		if observed {
			next.ServeHTTP(w, r)
			return
		}
		level := slog.LevelInfo
		if route == "health" || route == "metrics" {
			level = slog.LevelDebug
		}
		ctx := r.Context()
		if !a.enabled(ctx, level) && !a.enabled(ctx, slog.LevelWarn) {
			next.ServeHTTP(w, r)
			return
		}
		start := a.now()
		sw := &llmproxy.StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		end := a.now()
		status := sw.Status()
		if status >= 500 {
			level = slog.LevelWarn
		}
		a.logRoute(ctx, level, end, w.Header().Get("X-Request-Id"), route, r.Method, status, end.Sub(start))
	})
}

// logRoute writes Handler's line for a request that took d and ended at
// end (the time of the line, when it is not slog's to take).
func (a *Log) logRoute(ctx context.Context, level slog.Level, end time.Time, requestID, route, method string, status int, d time.Duration) {
	if a.log != nil {
		var attrs attrList = make([]slog.Attr, 0, 5)
		routeFields(&attrs, requestID, route, method, status, d)
		a.log.LogAttrs(ctx, level, "request", attrs...)
		return
	}
	if !a.enabled(ctx, level) {
		return
	}
	l := newAccessLine(a.json)
	l.start(end, level, "request")
	routeFields(l, requestID, route, method, status, d)
	l.end()
	a.write(l, level)
	l.free()
}
