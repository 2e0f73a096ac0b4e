package llmproxy

import (
	"net/http"
	"time"
)

// Observer is told about every inference request (chat completions and
// embeddings) the Gateway answers, when it ends (for a stream: when the
// stream ends). The other routes (models, health) are not observed: wrap
// the Gateway in middleware to see them, skipping the requests RouteOf
// reports as observed. Metrics and access logs are
// Observers. ObserveRequest is called on the request's goroutine, so it
// must be fast and safe for concurrent use; it must not keep info.
type Observer interface {
	ObserveRequest(info *RequestInfo)
}

// RequestInfo describes one answered request. Strings never hold a secret;
// Model is the alias only once it was found valid for the key (else "").
type RequestInfo struct {
	RequestID string
	// Route is "chat", "embeddings", "models", "health" or "other".
	Route  string
	Method string
	Status int
	// KeyID and KeyName are empty for the master key and for requests that
	// failed authentication (then Authenticated is false).
	Authenticated bool
	KeyID         string
	KeyName       string
	Model         string
	RemoteModel   string
	Provider      string // the connection's provider kind
	ConnectionID  string
	Connection    string // the connection's name
	Streamed      bool
	Usage         Usage
	Estimated     bool
	// CostMicros is what the request cost in micro-dollars, from its
	// usage and its model's price; CostKnown is false when the model has
	// no known price.
	CostMicros int64
	CostKnown  bool
	// Refused is "requests", "tokens" or "budget" when a limit refused the
	// request.
	Refused string
	// UpstreamError is set when the answer is an upstream failure (or
	// the stream broke off) rather than the client's error.
	UpstreamError bool
	// Attempts counts the upstream calls made (fallbacks included).
	Attempts int
	// Start is when the request arrived; Total its whole duration;
	// Upstream the time from the (last) upstream call to its answer
	// headers; FirstToken the time to the first stream event. Zero when
	// not applicable.
	Start      time.Time
	Total      time.Duration
	Upstream   time.Duration
	FirstToken time.Duration
}

// Stats are the Gateway's live gauges and counters.
type Stats struct {
	InFlightStreams int64
	// LedgerPending is the number of usage records waiting to be written.
	LedgerPending int
	// LedgerWritten and LedgerDropped count usage records since start;
	// LedgerDropped stays zero unless the store was unreachable past
	// shutdown.
	LedgerWritten int64
	LedgerDropped int64
	// LedgerFailures counts failed batch writes (each retried).
	LedgerFailures int64
	// LedgerLastFlush is how long the last batch write took.
	LedgerLastFlush time.Duration
	// AlertsEnqueued counts budget alert deliveries enqueued by this
	// process, AlertsDelivered those it delivered, and AlertFailures its
	// failed deliveries and enqueues.
	AlertsEnqueued, AlertsDelivered, AlertFailures int64
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
