package llmproxy

import (
	"context"
	"time"
)

// Limiter keeps the counters behind assignments' request-rate and token
// limits. The local implementation keeps them in process; a shared one
// (Redis) makes limits hold across replicas. Keys are opaque strings
// chosen by the Gateway (one per assignment). Implementations must be safe
// for concurrent use and must answer within a bounded time: a shared
// limiter that cannot reach its backend returns an error, and the Gateway
// falls back to local counters.
type Limiter interface {
	// AllowRequest takes one request from the token bucket of key, which
	// refills at rate per second up to burst. When refused, RetryAfter
	// says when the next request would be allowed.
	AllowRequest(ctx context.Context, key string, rate float64, burst int, now time.Time) (Decision, error)
	// ReserveTokens adds n tokens to the usage of key in the current
	// window if the total stays within limit (window zero: a lifetime
	// quota). When refused, nothing is added.
	ReserveTokens(ctx context.Context, key string, n, limit int64, window time.Duration, now time.Time) (Decision, error)
	// AdjustTokens corrects a reservation made at reservedAt by delta
	// (actual - reserved; may be negative) once the real usage is known.
	AdjustTokens(ctx context.Context, key string, delta int64, window time.Duration, reservedAt time.Time) error
}

// Decision is a Limiter's answer.
type Decision struct {
	Allowed bool
	// Limit, Remaining and Reset describe the bucket or window after the
	// call, for the x-ratelimit-* headers.
	Limit     int64
	Remaining int64
	Reset     time.Duration
	// RetryAfter is set when refused.
	RetryAfter time.Duration
}
