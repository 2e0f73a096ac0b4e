package llmproxy

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// takeLimits applies gr's assignment's request rate and token limit, and
// sets the x-ratelimit-* headers; then the budgets of the assignment and
// the key.
func (g *Gateway) takeLimits(ctx context.Context, w http.ResponseWriter, x *exchange, gr grant) error {
	g.settle(x, Usage{}) // release a reservation made for an earlier route
	if err := g.takeRates(ctx, w, x, gr); err != nil {
		return err
	}
	if err := g.takeBudgets(ctx, w, x, gr); err != nil {
		g.settle(x, Usage{}) // release the tokens reserved above
		return err
	}
	return nil
}

// takeRates applies gr's assignment's request rate and token limit.
func (g *Gateway) takeRates(ctx context.Context, w http.ResponseWriter, x *exchange, gr grant) error {
	as := gr.assignment
	if as == nil || (as.TPS <= 0 && as.TokenLimit <= 0) {
		return nil
	}
	now := time.Now()
	var n int64
	if as.TokenLimit > 0 {
		n = estimateTokens(x, g.cfg.DefaultMaxTokens)
	}
	var rd, td Decision
	err := g.limit(func(l Limiter) (err error) {
		rd, td = Decision{}, Decision{}
		if t, ok := l.(LimitTaker); ok && as.TPS > 0 && as.TokenLimit > 0 {
			rd, td, err = t.Take(ctx, gr.rateKey, as.TPS, as.EffectiveBurst(), gr.tokenKey, n, as.TokenLimit, as.TokenWindow, now)
			return err
		}
		if as.TPS > 0 {
			if rd, err = l.AllowRequest(ctx, gr.rateKey, as.TPS, as.EffectiveBurst(), now); err != nil || !rd.Allowed {
				return err
			}
		}
		if as.TokenLimit > 0 {
			td, err = l.ReserveTokens(ctx, gr.tokenKey, n, as.TokenLimit, as.TokenWindow, now)
		}
		return err
	})
	if err != nil {
		return err
	}
	// The six values are appended to one buffer and cut from one string:
	// two allocations for all of them.
	var buf [160]byte
	b := buf[:0]
	var from, to [6]int // value i is b[from[i]:to[i]]
	num := func(i int, v int64) { from[i] = len(b); b = strconv.AppendInt(b, v, 10); to[i] = len(b) }
	reset := func(i int, d time.Duration) { from[i] = len(b); b = appendReset(b, d); to[i] = len(b) }
	if as.TPS > 0 {
		num(0, rd.Limit)
		num(1, rd.Remaining)
		reset(2, rd.Reset)
	}
	if as.TokenLimit > 0 {
		num(3, td.Limit)
		num(4, td.Remaining)
		reset(5, td.Reset)
	}
	all := string(b)
	vals := make([]string, 6)
	h := w.Header()
	set := func(i int, k string) {
		vals[i] = all[from[i]:to[i]]
		h[k] = vals[i : i+1 : i+1]
	}
	if as.TPS > 0 {
		set(0, "X-Ratelimit-Limit-Requests")
		set(1, "X-Ratelimit-Remaining-Requests")
		set(2, "X-Ratelimit-Reset-Requests")
		if !rd.Allowed {
			return &Error{Status: http.StatusTooManyRequests, Type: TypeRateLimit, Code: "rate_limit_exceeded", RetryAfter: rd.RetryAfter,
				Message: fmt.Sprintf("Rate limit reached for requests: limit %g per second. Retry after %s.", as.TPS, formatReset(rd.RetryAfter))}
		}
	}
	if as.TokenLimit > 0 {
		set(3, "X-Ratelimit-Limit-Tokens")
		set(4, "X-Ratelimit-Remaining-Tokens")
		set(5, "X-Ratelimit-Reset-Tokens")
		if !td.Allowed {
			e := &Error{Status: http.StatusTooManyRequests, Type: TypeRateLimit, Code: "tokens_exceeded", RetryAfter: td.RetryAfter,
				Message: fmt.Sprintf("Token limit reached: %d tokens per %s; this request needs about %d.", as.TokenLimit, windowName(as.TokenWindow), n)}
			if as.TokenWindow == 0 {
				e.Code, e.Message = "insufficient_quota", fmt.Sprintf("Token quota of %d exhausted; this request needs about %d.", as.TokenLimit, n)
			}
			return e
		}
		x.limited, x.reserved, x.reservedAt, x.tokenKey = as, n, now, gr.tokenKey
	}
	return nil
}

// limit runs f on the configured limiter, falling back to the local one
// when a shared limiter fails, so the request path never hangs on it:
// after a failure the shared limiter is left alone for a second, then
// tried again.
func (g *Gateway) limit(f func(Limiter) error) error {
	if g.limiter == Limiter(g.local) {
		return f(g.local)
	}
	now := time.Now().UnixNano()
	if now >= g.sharedDownUntil.Load() {
		err := f(g.limiter)
		if err == nil {
			if g.sharedDown.CompareAndSwap(true, false) {
				g.log.Info("shared limiter is back; limits are shared again")
			}
			return nil
		}
		g.sharedDownUntil.Store(now + int64(time.Second))
		if !g.sharedDown.Swap(true) {
			g.log.Warn("shared limiter failed; using per-replica limits until it is back", "err", err)
		}
	}
	return f(g.local)
}

// settle corrects the token and budget reservations with the real usage.
func (g *Gateway) settle(x *exchange, u Usage) {
	g.settleBudgets(x, u)
	if x.limited == nil {
		return
	}
	delta := u.TotalTokens - x.reserved
	key, window, at := x.tokenKey, x.limited.TokenWindow, x.reservedAt
	x.limited, x.reserved = nil, 0
	g.adjust(key, delta, window, at)
}

// estimateTokens is the reservation for a request: its prompt at about
// four bytes a token, plus the completion it may produce. Counting tokens
// uses none.
func estimateTokens(x *exchange, defaultMax int64) int64 {
	prompt, completion := estimateSplit(x, defaultMax)
	return prompt + completion
}

// estimateSplit is estimateTokens in its two parts, prompt and completion,
// which are priced apart.
func estimateSplit(x *exchange, defaultMax int64) (prompt, completion int64) {
	f := &x.parsed.fields
	bytes := f.messages.end - f.messages.start
	switch x.endpoint {
	case EndpointEmbeddings:
		bytes = f.input.end - f.input.start
	case EndpointMessages:
		bytes += f.system.end - f.system.start + f.tools.end - f.tools.start
	case EndpointResponses:
		bytes = f.input.end - f.input.start + f.instructions.end - f.instructions.start + f.tools.end - f.tools.start
	case EndpointCountTokens:
		return 0, 0
	}
	prompt = int64(bytes)/4 + 1
	if x.endpoint != EndpointEmbeddings {
		if x.parsed.maxTokens > 0 {
			completion = x.parsed.maxTokens
		} else {
			completion = defaultMax
		}
	}
	return prompt, completion
}

func windowName(w time.Duration) string {
	if w == 0 {
		return "lifetime"
	}
	return w.String()
}

// formatReset writes a duration as OpenAI's x-ratelimit-reset-* do: "1s",
// "6m0s", "20ms".
func formatReset(d time.Duration) string { return string(appendReset(nil, d)) }

// appendReset appends formatReset(d) to b: d rounded to the millisecond
// below a second, to the second above, in time.Duration's notation.
func appendReset(b []byte, d time.Duration) []byte {
	if d <= 0 {
		return append(b, "0s"...)
	}
	if d < time.Second {
		ms := int64(d.Round(time.Millisecond) / time.Millisecond)
		switch {
		case ms == 0:
			return append(b, "0s"...)
		case ms >= 1000:
			return append(b, "1s"...)
		}
		return append(strconv.AppendInt(b, ms, 10), "ms"...)
	}
	secs := int64(d.Round(time.Second) / time.Second)
	h, m, sec := secs/3600, secs/60%60, secs%60
	if h > 0 {
		b = append(strconv.AppendInt(b, h, 10), 'h')
	}
	if h > 0 || m > 0 {
		b = append(strconv.AppendInt(b, m, 10), 'm')
	}
	return append(strconv.AppendInt(b, sec, 10), 's')
}
