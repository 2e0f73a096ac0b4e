// Package redislimit is a llmproxy.Limiter whose counters live in Redis,
// so that request rates and token limits hold across every replica of the
// gateway. Each decision is one round trip running an atomic Lua script;
// time comes from the Redis server for request buckets, so replicas'
// clocks do not skew them.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/redis/go-redis/v9"
)

// Limiter keeps limiter counters in Redis.
type Limiter struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// Options configure a Limiter. The zero value is usable.
type Options struct {
	// Prefix is put before every Redis key; empty means "llmproxy:".
	Prefix string
	// Timeout bounds each call; zero means 100ms. A call that times out
	// returns an error and the Gateway falls back to local limits.
	Timeout time.Duration
}

var _ llmproxy.Limiter = (*Limiter)(nil)

// New returns a Limiter using client.
func New(client redis.UniversalClient, opts Options) *Limiter {
	if opts.Prefix == "" {
		opts.Prefix = "llmproxy:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	return &Limiter{client: client, prefix: opts.Prefix, timeout: opts.Timeout}
}

// Open connects to a redis:// or rediss:// URL (REDIS_URL). It does not
// wait for the server: a server that is down at start is handled like one
// that goes away later.
func Open(url string, opts Options) (*Limiter, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	t := opts.Timeout
	if t <= 0 {
		t = 100 * time.Millisecond
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = t, t, t
	o.MaxRetries = 0 // a retry would break the timeout promise
	o.ContextTimeoutEnabled = true
	return New(redis.NewClient(o), opts), nil
}

// Close closes the Redis client.
func (l *Limiter) Close() error { return l.client.Close() }

// Ping checks that Redis answers.
func (l *Limiter) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.client.Ping(ctx).Err()
}

// refillLua starts the bucket scripts: KEYS[1]'s tokens, refilled at
// ARGV[1] per second up to ARGV[2] since they were last counted, by the
// Redis server's clock.
const refillLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000000)
`

// bucketScript is a token bucket: KEYS[1] holds tokens and the time (µs)
// they were counted; ARGV are rate per second and burst. It returns
// allowed (0/1), tokens left, retry-after ms, ms until full.
var bucketScript = redis.NewScript(refillLua + `
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate * 1000)
end
local full = math.ceil((burst - tokens) / rate * 1000)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], full + 1000)
return {allowed, math.floor(tokens), retry, full}
`)

// reserveScript adds ARGV[1] tokens to KEYS[1] if the total stays within
// ARGV[2]; ARGV[3] is the key's time to live in ms (0: none). It returns
// allowed (0/1) and the total used.
var reserveScript = redis.NewScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if used + n > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], n)
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, used}
`)

// adjustScript adds ARGV[1] (may be negative) to an existing KEYS[1],
// never below zero.
var adjustScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v < 0 then
  redis.call('SET', KEYS[1], 0, 'KEEPTTL')
  v = 0
end
return v
`)

// takeScript is bucketScript and reserveScript in one: KEYS[1] the
// bucket, KEYS[2] the token window; ARGV rate, burst, n, limit, ttl ms.
// Nothing is changed unless both allow. It returns the bucket's four
// numbers, then tokens allowed (0/1, or -1 when not evaluated) and used.
var takeScript = redis.NewScript(refillLua + `
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if tokens < 1 then
  return {0, math.floor(tokens), math.ceil((1 - tokens) / rate * 1000), math.ceil((burst - tokens) / rate * 1000), -1, used}
end
local n = tonumber(ARGV[3])
if used + n > tonumber(ARGV[4]) then
  return {1, math.floor(tokens), 0, math.ceil((burst - tokens) / rate * 1000), 0, used}
end
tokens = tokens - 1
local full = math.ceil((burst - tokens) / rate * 1000)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], full + 1000)
used = redis.call('INCRBY', KEYS[2], n)
if tonumber(ARGV[5]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return {1, math.floor(tokens), 0, full, 1, used}
`)

var _ llmproxy.LimitTaker = (*Limiter)(nil)

// Take implements llmproxy.LimitTaker: both limits in one round trip.
func (l *Limiter) Take(ctx context.Context, rateKey string, rate float64, burst int, tokenKey string, n, limit int64, window time.Duration, now time.Time) (requests, tokens llmproxy.Decision, err error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	reset, ttl := windowTiming(window, now)
	res, err := ints(takeScript.Run(ctx, l.client, []string{l.prefix + rateKey, l.windowKey(tokenKey, window, now)},
		strconv.FormatFloat(rate, 'g', -1, 64), burst, n, limit, ttl.Milliseconds()).Result())
	if err != nil || len(res) != 6 {
		return requests, tokens, fmt.Errorf("redis limiter: %w", orShort(err))
	}
	requests = bucketDecision(res, burst)
	if res[4] >= 0 {
		tokens = llmproxy.Decision{Allowed: res[4] == 1, Limit: limit, Remaining: max(limit-res[5], 0), Reset: reset}
		if !tokens.Allowed {
			tokens.RetryAfter = reset
		}
	}
	return requests, tokens, nil
}

// AllowRequest implements llmproxy.Limiter.
func (l *Limiter) AllowRequest(ctx context.Context, key string, rate float64, burst int, _ time.Time) (llmproxy.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := ints(bucketScript.Run(ctx, l.client, []string{l.prefix + key},
		strconv.FormatFloat(rate, 'g', -1, 64), burst).Result())
	if err != nil || len(res) != 4 {
		return llmproxy.Decision{}, fmt.Errorf("redis limiter: %w", orShort(err))
	}
	return bucketDecision(res, burst), nil
}

// bucketDecision reads a bucket script's first four numbers.
func bucketDecision(res []int64, burst int) llmproxy.Decision {
	return llmproxy.Decision{
		Allowed:    res[0] == 1,
		Limit:      int64(burst),
		Remaining:  res[1],
		RetryAfter: time.Duration(res[2]) * time.Millisecond,
		Reset:      time.Duration(res[3]) * time.Millisecond,
	}
}

// windowTiming is how long until the window holding now ends, and how
// long its counter lives: a minute past that. Both are zero for a lifetime
// quota.
func windowTiming(window time.Duration, now time.Time) (reset, ttl time.Duration) {
	if window <= 0 {
		return 0, 0
	}
	reset = now.Truncate(window).Add(window).Sub(now)
	return reset, reset + time.Minute
}

// windowKey names the counter of the window holding t.
func (l *Limiter) windowKey(key string, window time.Duration, t time.Time) string {
	if window <= 0 {
		return l.prefix + key + ":life"
	}
	return l.prefix + key + ":" + strconv.FormatInt(t.Truncate(window).Unix(), 10)
}

// ReserveTokens implements llmproxy.Limiter. Windows are aligned to the
// Unix epoch by the caller's clock; the counter expires a minute after its
// window ends.
func (l *Limiter) ReserveTokens(ctx context.Context, key string, n, limit int64, window time.Duration, now time.Time) (llmproxy.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	reset, ttl := windowTiming(window, now)
	res, err := ints(reserveScript.Run(ctx, l.client, []string{l.windowKey(key, window, now)}, n, limit, ttl.Milliseconds()).Result())
	if err != nil || len(res) != 2 {
		return llmproxy.Decision{}, fmt.Errorf("redis limiter: %w", orShort(err))
	}
	d := llmproxy.Decision{Allowed: res[0] == 1, Limit: limit, Remaining: max(limit-res[1], 0), Reset: reset}
	if !d.Allowed {
		d.RetryAfter = reset
	}
	return d, nil
}

// AdjustTokens implements llmproxy.Limiter.
func (l *Limiter) AdjustTokens(ctx context.Context, key string, delta int64, window time.Duration, reservedAt time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := adjustScript.Run(ctx, l.client, []string{l.windowKey(key, window, reservedAt)}, delta).Err(); err != nil {
		return fmt.Errorf("redis limiter: %w", err)
	}
	return nil
}

var _ llmproxy.CounterExpirer = (*Limiter)(nil)

// ExpireTokens implements llmproxy.CounterExpirer: the counter of key
// (window zero) expires ttl from now, as Redis counts time.
func (l *Limiter) ExpireTokens(ctx context.Context, key string, ttl time.Duration, _ time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.client.PExpire(ctx, l.windowKey(key, 0, time.Time{}), ttl).Err(); err != nil {
		return fmt.Errorf("redis limiter: %w", err)
	}
	return nil
}

// TokensUsed returns the tokens counted in the window holding now.
func (l *Limiter) TokensUsed(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	n, err := l.client.Get(ctx, l.windowKey(key, window, now)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

func ints(v any, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected reply %T", v)
	}
	out := make([]int64, len(list))
	for i, x := range list {
		n, ok := x.(int64)
		if !ok {
			return nil, fmt.Errorf("unexpected reply element %T", x)
		}
		out[i] = n
	}
	return out, nil
}

func orShort(err error) error {
	if err == nil {
		return errors.New("short reply")
	}
	return err
}
