package llmproxy

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
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

// CounterExpirer is implemented by limiters that can drop a counter at a
// time of the caller's choosing. A budget's counters have no window (a
// calendar month is no fixed duration): the Gateway names one counter per
// period and tells the limiter, once per period, how long it is kept, so
// that past periods' counters do not pile up in Redis or in memory.
type CounterExpirer interface {
	// ExpireTokens drops the counter of key (window zero) ttl after now.
	ExpireTokens(ctx context.Context, key string, ttl time.Duration, now time.Time) error
}

// LimitTaker is implemented by limiters that can apply an assignment's
// request rate and token limit in one call: for a shared limiter, one
// round trip instead of two. The Gateway uses it when both limits apply.
// When the request is refused, no tokens are reserved (tokens is then the
// zero Decision); when the tokens are refused, the request is not counted.
type LimitTaker interface {
	Take(ctx context.Context, rateKey string, rate float64, burst int, tokenKey string, n, limit int64, window time.Duration, now time.Time) (requests, tokens Decision, err error)
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

// LocalLimiter keeps limiter counters in process memory: request rates in
// golang.org/x/time/rate token buckets, tokens in fixed windows aligned to
// the Unix epoch (a 24h window starts at midnight UTC). The zero value is
// not usable; call NewLocalLimiter.
type LocalLimiter struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	windows map[string]*tokenWindow
	// expires holds when counters given ExpireTokens may go; swept is
	// when they were last looked through.
	expires map[string]time.Time
	swept   time.Time
}

type tokenWindow struct {
	start time.Time // zero for a lifetime quota
	used  int64
}

var _ Limiter = (*LocalLimiter)(nil)

// NewLocalLimiter returns an empty LocalLimiter.
func NewLocalLimiter() *LocalLimiter {
	return &LocalLimiter{buckets: make(map[string]*rate.Limiter), windows: make(map[string]*tokenWindow)}
}

// AllowRequest implements Limiter.
func (l *LocalLimiter) AllowRequest(_ context.Context, key string, r float64, burst int, now time.Time) (Decision, error) {
	l.mu.Lock()
	b := l.buckets[key]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(r), burst)
		l.buckets[key] = b
	} else if b.Limit() != rate.Limit(r) || b.Burst() != burst {
		b.SetLimitAt(now, rate.Limit(r))
		b.SetBurstAt(now, burst)
	}
	l.mu.Unlock()
	d := Decision{Limit: int64(burst)}
	if b.AllowN(now, 1) {
		d.Allowed = true
	} else {
		d.RetryAfter = secondsFor(1-b.TokensAt(now), r)
	}
	left := b.TokensAt(now)
	d.Remaining = max(int64(left), 0)
	d.Reset = secondsFor(float64(burst)-left, r)
	return d, nil
}

// secondsFor is how long a bucket refilling at r per second takes to gain
// n tokens.
func secondsFor(n, r float64) time.Duration {
	if n <= 0 || r <= 0 {
		return 0
	}
	return time.Duration(n / r * float64(time.Second))
}

// windowStart is the start of the window holding now.
func windowStart(now time.Time, window time.Duration) time.Time {
	if window <= 0 {
		return time.Time{}
	}
	return now.Truncate(window)
}

func (l *LocalLimiter) window(key string, window time.Duration, now time.Time) *tokenWindow {
	start := windowStart(now, window)
	w := l.windows[key]
	if w == nil {
		w = &tokenWindow{start: start}
		l.windows[key] = w
	} else if !w.start.Equal(start) {
		w.start, w.used = start, 0
	}
	return w
}

// ReserveTokens implements Limiter.
func (l *LocalLimiter) ReserveTokens(_ context.Context, key string, n, limit int64, window time.Duration, now time.Time) (Decision, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.window(key, window, now)
	d := Decision{Limit: limit}
	if window > 0 {
		d.Reset = w.start.Add(window).Sub(now)
	}
	if w.used+n <= limit {
		w.used += n
		d.Allowed = true
	} else if window > 0 {
		d.RetryAfter = d.Reset
	}
	d.Remaining = max(limit-w.used, 0)
	return d, nil
}

// AdjustTokens implements Limiter.
func (l *LocalLimiter) AdjustTokens(_ context.Context, key string, delta int64, window time.Duration, reservedAt time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	if w == nil || !w.start.Equal(windowStart(reservedAt, window)) {
		return nil // the window has moved on; the reservation expired with it
	}
	w.used = max(w.used+delta, 0)
	return nil
}

// ExpireTokens implements CounterExpirer. Expired counters are dropped
// when a later call finds a minute has passed since the last sweep.
func (l *LocalLimiter) ExpireTokens(_ context.Context, key string, ttl time.Duration, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.expires == nil {
		l.expires = map[string]time.Time{}
	}
	l.expires[key] = now.Add(ttl)
	if now.Sub(l.swept) < time.Minute {
		return nil
	}
	l.swept = now
	for k, at := range l.expires {
		if now.After(at) {
			delete(l.windows, k)
			delete(l.expires, k)
		}
	}
	return nil
}

// SetTokensUsed sets the tokens used in the window holding now, e.g. to
// restore a window from the usage ledger after a restart.
func (l *LocalLimiter) SetTokensUsed(key string, used int64, window time.Duration, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.window(key, window, now).used = used
}
