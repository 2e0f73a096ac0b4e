package pricing

import "testing"

func TestCost(t *testing.T) {
	// Claude Sonnet-like: $3 in, $15 out, $0.30 cache read, $3.75 cache write.
	p := Price{Input: 3, Output: 15, CachedInput: 0.30, CacheWrite: 3.75}
	// 1,000 prompt tokens of which 600 read and 100 written: 300 uncached.
	got := p.Cost(1000, 200, 600, 100)
	want := int64(300*3 + 600*0.30 + 100*3.75 + 200*15) // micro-dollars
	if got != want {
		t.Errorf("Cost = %d µ$, want %d", got, want)
	}
	// OpenAI-like: no separate cache-write price.
	if got := (Price{Input: 2, Output: 8, CachedInput: 0.5}).Cost(100, 10, 40, 20); got != 40*2+40*0.5+20*2+10*8 {
		t.Errorf("cache writes without their own price: %d", got)
	}
	if got := (Price{Input: 1}).Cost(5, 0, 9, 0); got != 9*0 {
		t.Errorf("more cached than prompt must not go negative: %d", got)
	}
}
