package llmproxy_test

import (
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

func TestTrafficPercentile(t *testing.T) {
	var p llmproxy.TrafficPoint
	if got := p.Percentile(0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
	// 100 requests between 100 and 200 ms, 10 over 100 s.
	for i := range 110 {
		d := 150 * time.Millisecond
		if i >= 100 {
			d = 200 * time.Second
		}
		p.AddRecord(&llmproxy.UsageRecord{Latency: d, Status: 200})
	}
	if got := p.Percentile(0.5); got <= 100*time.Millisecond || got > 200*time.Millisecond {
		t.Errorf("p50 %v; want within (100ms, 200ms]", got)
	}
	if got := p.Percentile(0.95); got != 100*time.Second {
		t.Errorf("p95 %v; want the open bucket's lower bound, 100s", got)
	}
	for _, c := range []struct {
		d    time.Duration
		want int
	}{{0, 0}, {time.Millisecond, 0}, {time.Millisecond + 1, 1}, {time.Second, 9}, {time.Hour, llmproxy.LatencyBuckets - 1}} {
		if got := llmproxy.LatencyBucket(c.d); got != c.want {
			t.Errorf("LatencyBucket(%v) = %d; want %d", c.d, got, c.want)
		}
	}
}
