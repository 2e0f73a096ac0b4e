package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/redislimit"
	"github.com/redis/go-redis/v9"
)

// open returns a Limiter on the test Redis (LLMPROXY_TEST_REDIS, default
// redis://127.0.0.1:6379/0) with a prefix of its own.
func open(t testing.TB) *redislimit.Limiter {
	t.Helper()
	url := os.Getenv("LLMPROXY_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "llmproxy-test-" + hex.EncodeToString(b) + ":"
	l, err := redislimit.Open(url, redislimit.Options{Prefix: prefix, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		// Leave nothing behind in the shared server.
		o, _ := redis.ParseURL(url)
		c := redis.NewClient(o)
		defer c.Close()
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	if err := l.Ping(context.Background()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is not reachable: %v", url, err)
		}
		t.Skipf("Redis at %s is not reachable (set LLMPROXY_TEST_REDIS): %v", url, err)
	}
	return l
}

func TestBurstThenRate(t *testing.T) {
	l := open(t)
	ctx := context.Background()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	// 50 requests at once from 10 goroutines: the burst of 5 passes.
	for range 10 {
		wg.Go(func() {
			for range 5 {
				d, err := l.AllowRequest(ctx, "a", 5, 5, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				} else if d.RetryAfter <= 0 || d.RetryAfter > 200*time.Millisecond {
					t.Errorf("retry after %v", d.RetryAfter)
				}
			}
		})
	}
	wg.Wait()
	// The burst, plus what refilled (5/s) while the 50 calls ran.
	most := 5 + int64(5*time.Since(began).Seconds()) + 1
	if n := allowed.Load(); n < 5 || n > most {
		t.Errorf("allowed %d at once, want 5 to %d", n, most)
	}
}

func TestTokensShared(t *testing.T) {
	l := open(t)
	ctx := context.Background()
	now := time.Now()
	d, err := l.ReserveTokens(ctx, "t", 600, 1000, time.Hour, now)
	if err != nil || !d.Allowed || d.Remaining != 400 {
		t.Fatalf("%+v %v", d, err)
	}
	d, _ = l.ReserveTokens(ctx, "t", 600, 1000, time.Hour, now)
	if d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("overrun allowed: %+v", d)
	}
	// Settling lower frees room; a second limiter (another replica) sees it.
	if err := l.AdjustTokens(ctx, "t", -500, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.TokensUsed(ctx, "t", time.Hour, now); n != 100 {
		t.Errorf("used %d, want 100", n)
	}
	d, _ = l.ReserveTokens(ctx, "t", 600, 1000, time.Hour, now)
	if !d.Allowed {
		t.Errorf("refused after settling: %+v", d)
	}
	// Lifetime quotas have no window.
	d, _ = l.ReserveTokens(ctx, "life", 10, 10, 0, now)
	d2, _ := l.ReserveTokens(ctx, "life", 1, 10, 0, now.Add(1000*time.Hour))
	if !d.Allowed || d2.Allowed {
		t.Errorf("lifetime quota: %+v %+v", d, d2)
	}
}

func TestUnreachableFailsFast(t *testing.T) {
	l, err := redislimit.Open("redis://127.0.0.1:1/0", redislimit.Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	if _, err := l.AllowRequest(context.Background(), "x", 1, 1, time.Now()); err == nil {
		t.Error("no error from a closed port")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	var _ llmproxy.Limiter = l
}

func BenchmarkAllowRequest(b *testing.B) {
	l := open(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := l.AllowRequest(ctx, "bench", 1e9, 1e9, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReserveTokens(b *testing.B) {
	l := open(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := l.ReserveTokens(ctx, "bench", 1, 1<<62, time.Hour, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTakeBothInOneTrip(t *testing.T) {
	l := open(t)
	ctx := context.Background()
	now := time.Now()
	// Tokens refused: the request is not counted either.
	r, tk, err := l.Take(ctx, "r", 1, 1, "t", 50, 40, time.Hour, now)
	if err != nil || !r.Allowed || tk.Allowed {
		t.Fatalf("%+v %+v %v", r, tk, err)
	}
	r, tk, _ = l.Take(ctx, "r", 1, 1, "t", 30, 40, time.Hour, now)
	if !r.Allowed || !tk.Allowed || tk.Remaining != 10 {
		t.Fatalf("both should pass: %+v %+v", r, tk)
	}
	// The bucket of one is now empty: refused, and no tokens reserved.
	r, tk, _ = l.Take(ctx, "r", 1, 1, "t", 5, 40, time.Hour, now)
	if r.Allowed || tk != (llmproxy.Decision{}) || r.RetryAfter <= 0 {
		t.Fatalf("rate refusal: %+v %+v", r, tk)
	}
	if n, _ := l.TokensUsed(ctx, "t", time.Hour, now); n != 30 {
		t.Errorf("used %d, want 30", n)
	}
}

func BenchmarkTake(b *testing.B) {
	l := open(b)
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := l.Take(ctx, "r", 1e9, 1e9, "t", 1, 1<<62, time.Hour, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
