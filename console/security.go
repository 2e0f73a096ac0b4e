package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// contentSecurityPolicy allows only the console's own files: no inline
// script or style anywhere, so that an injected tag does nothing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setSecurityHeaders sets the headers every answer of the console
// carries.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// The refusals of a change that did not come from the console's own
// page.
const (
	msgCSRF   = "Invalid or missing CSRF token. Reload the page and try again."
	msgOrigin = "Invalid or missing CSRF token: the request came from another site (its Origin is not this host)."
)

// newToken returns 32 random bytes, base64url: session ids and CSRF
// tokens.
func newToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand's contract)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenEqual compares a submitted token with the expected one in
// constant time; an empty one never matches.
func tokenEqual(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin reports whether a POST may have come from the console's own
// pages: its Origin header, when present, names this host, and the
// browser does not say it came from another site. The CSRF token is the
// real check; this one stops a forged request even if a token leaked.
func sameOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // "null" among others
	}
	return strings.EqualFold(u.Host, r.Host)
}

// secureRequest reports whether the browser reached the server over
// TLS, directly or through a proxy that says so.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// clientIP is the address failed sign-ins are counted by: the
// connection's, which a client cannot choose (X-Forwarded-For could be
// forged to escape the throttle).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// The sign-in throttle: each failed attempt is answered only after
// 1 s × 2^(failures in the window − 1), at most maxLoginDelay; after
// maxLoginFailures in the window, attempts are refused (429) without
// checking the key. A success clears the address's count.
const (
	loginWindow      = 15 * time.Minute
	maxLoginFailures = 10
	maxLoginDelay    = 8 * time.Second
	// throttleSweep is how many addresses the throttle holds before it
	// drops those whose failures have all left the window.
	throttleSweep = 10_000
)

// loginThrottle counts failed sign-ins per client address.
type loginThrottle struct {
	mu    sync.Mutex
	fails map[string][]time.Time // in the window, oldest first
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{fails: map[string][]time.Time{}}
}

// recent drops ip's failures older than the window and returns the rest.
// The caller holds t.mu.
func (t *loginThrottle) recent(ip string, now time.Time) []time.Time {
	f := t.fails[ip]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= loginWindow {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(t.fails, ip)
	} else {
		t.fails[ip] = f
	}
	return f
}

// blocked reports whether ip has failed too often to try again, and when
// it may.
func (t *loginThrottle) blocked(ip string, now time.Time) (retryAfter time.Duration, blocked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.recent(ip, now)
	if len(f) < maxLoginFailures {
		return 0, false
	}
	// Allowed again when enough of the oldest failures leave the window.
	return f[len(f)-maxLoginFailures].Add(loginWindow).Sub(now), true
}

// fail counts a failed attempt of ip and returns how long to wait before
// answering it.
func (t *loginThrottle) fail(ip string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fails) >= throttleSweep {
		for other := range t.fails {
			t.recent(other, now)
		}
	}
	f := append(t.recent(ip, now), now)
	t.fails[ip] = f
	d := time.Second << min(len(f)-1, 3)
	return min(d, maxLoginDelay)
}

// reset forgets ip's failures.
func (t *loginThrottle) reset(ip string) {
	t.mu.Lock()
	delete(t.fails, ip)
	t.mu.Unlock()
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
