package storagetest

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// BenchmarkAppendUsage measures the usage ledger's write throughput in
// batches of batchSize records: "serial" is one writer (a gateway's
// flusher), "parallel" is GOMAXPROCS writers (several replicas). It
// reports records/s.
func BenchmarkAppendUsage(b *testing.B, s llmproxy.Storage, batchSize int) {
	var seq atomic.Int64
	batch := func() []llmproxy.UsageRecord {
		n := seq.Add(1)
		out := make([]llmproxy.UsageRecord, batchSize)
		for i := range out {
			out[i] = llmproxy.UsageRecord{
				ID: fmt.Sprintf("bench_%010d_%04d", n, i), Time: usageEpoch.Add(time.Duration(n) * time.Millisecond),
				RequestID: "req", KeyID: fmt.Sprintf("key_%d", i%10), AssignmentID: "asg", Model: "gpt-4o", RemoteModel: "gpt-4o-2024-08-06",
				ConnectionID: "conn", PromptTokens: 120, CompletionTokens: 340, TotalTokens: 460, CacheReadTokens: 96, CacheWriteTokens: 24, Status: 200,
				Latency: 850 * time.Millisecond, Streamed: true, Endpoint: "chat",
			}
		}
		return out
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)*float64(batchSize)/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := s.AppendUsage(b.Context(), batch()); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.AppendUsage(b.Context(), batch()); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b)
	})
}

// trafficKeys are the keys of GenerateTraffic's records: twenty virtual
// keys and the master key.
const trafficKeys = 21

// trafficRecord is GenerateTraffic's i-th record of n, ending at end: a
// hash of i picks its key, alias (eight), status (95% 200, then 429, 500
// and 502) and latency (up to 60 s, most under 2 s), so that no two
// dimensions move together.
func trafficRecord(i, n int64, end time.Time, span time.Duration) llmproxy.UsageRecord {
	h := uint64(i)*0x9E3779B97F4A7C15 ^ uint64(i)>>7
	h ^= h >> 29
	key := ""
	if k := h % trafficKeys; k > 0 {
		key = fmt.Sprintf("key_gen_%02d", k)
	}
	status := 200
	switch p := h >> 16 % 100; {
	case p >= 99:
		status = 502
	case p >= 97:
		status = 500
	case p >= 95:
		status = 429
	}
	latency := time.Duration(h>>24%2000) * time.Millisecond
	if h>>40%50 == 0 {
		latency = time.Duration(h>>24%60_000) * time.Millisecond
	}
	r := llmproxy.UsageRecord{
		ID:           fmt.Sprintf("gen_%012d", i),
		Time:         end.Add(-span + time.Duration(float64(span)*float64(i)/float64(n))).Truncate(time.Millisecond),
		KeyID:        key,
		AssignmentID: "asg_" + key,
		Model:        fmt.Sprintf("model-%d", h>>8%8),
		RemoteModel:  "remote", ConnectionID: "conn_gen",
		PromptTokens: int64(100 + i%900), CompletionTokens: int64(10 + i%300),
		Status: status, Latency: latency, Endpoint: llmproxy.EndpointChat,
	}
	r.TotalTokens = r.PromptTokens + r.CompletionTokens
	if i%10 != 0 {
		r.CostMicros, r.CostKnown = r.TotalTokens*3, true
	}
	return r
}

// MeasureTraffic times what the web console reads on a ledger of rows
// records over the 30 days before end, appending them through
// AppendUsage first (so the rollups are kept as a gateway keeps them)
// unless s already holds a ledger whose newest record is at end, e.g.
// from an earlier run on the same database. Each query runs five times;
// it logs the slowest and the median, and fails when a median passes
// 300 ms, the console's budget for a page.
func MeasureTraffic(t *testing.T, s llmproxy.Storage, rows int64, end time.Time) {
	ctx := t.Context()
	tr, ok := s.(llmproxy.TrafficReporter)
	if !ok {
		t.Skip("the store keeps no hourly traffic (llmproxy.TrafficReporter)")
	}
	const span = 30 * 24 * time.Hour
	newest, err := tr.RecentUsage(ctx, llmproxy.RecentFilter{Limit: 1})
	must(t, "RecentUsage", err)
	if len(newest) == 0 || !newest[0].Time.Equal(trafficRecord(rows-1, rows, end, span).Time) {
		start := time.Now()
		const batch = 4096
		buf := make([]llmproxy.UsageRecord, 0, batch)
		for i := range rows {
			buf = append(buf, trafficRecord(i, rows, end, span))
			if len(buf) == batch || i == rows-1 {
				must(t, "AppendUsage", s.AppendUsage(ctx, buf))
				buf = buf[:0]
			}
		}
		took := time.Since(start)
		t.Logf("appended %d records in %s (%.0f records/s)", rows, took.Round(time.Second), float64(rows)/took.Seconds())
	}
	mid := end.Add(-span / 2)
	measure := func(what string, run func() (int, error)) {
		t.Helper()
		var times []time.Duration
		var n int
		for range 5 {
			start := time.Now()
			got, err := run()
			times = append(times, time.Since(start))
			must(t, what, err)
			n = got
		}
		slices.Sort(times)
		t.Logf("%-58s %4d rows  median %8s  slowest %8s", what, n, times[2].Round(10*time.Microsecond), times[4].Round(10*time.Microsecond))
		if times[2] > 300*time.Millisecond {
			t.Errorf("%s: median %s, over the console's 300 ms", what, times[2])
		}
	}
	for _, f := range []llmproxy.TrafficFilter{
		{Since: end.Add(-span), Until: end},
		{KeyID: "key_gen_07", Since: end.Add(-span), Until: end},
		{Since: end.Add(-7 * 24 * time.Hour), Until: end},
		{Since: end.Add(-24 * time.Hour), Until: end},
	} {
		measure(fmt.Sprintf("Traffic %s key=%q", f.Until.Sub(f.Since), f.KeyID), func() (int, error) {
			p, err := tr.Traffic(ctx, f)
			return len(p), err
		})
	}
	for _, f := range []llmproxy.RecentFilter{
		{},
		{KeyID: "key_gen_07"},
		{Model: "model-3"},
		{Status: 200},
		{Status: 429},
		{Errors: true},
		{Errors: true, KeyID: "key_gen_07"},
		{Errors: true, Model: "model-3"},
		{KeyID: "key_gen_07", Model: "model-3"},
		{KeyID: "key_gen_07", Model: "model-3", Status: 502},
		{Model: "model-3", Status: 502},
		{KeyID: "key_none"},
		// The worst case: a key and an alias it never used, so the whole
		// of the key's records is read for nothing.
		{KeyID: "key_gen_07", Model: "model-none"},
		{Before: mid},
		{Before: mid, KeyID: "key_gen_07", Errors: true},
		{Before: end.Add(-span + time.Hour), Status: 502},
		{Limit: 500, Errors: true},
	} {
		what := fmt.Sprintf("RecentUsage key=%q model=%q status=%d errors=%v", f.KeyID, f.Model, f.Status, f.Errors)
		if !f.Before.IsZero() {
			what += " before=" + end.Sub(f.Before).Round(time.Hour).String() + " ago"
		}
		if f.Limit != 0 {
			what += fmt.Sprintf(" limit=%d", f.Limit)
		}
		measure(what, func() (int, error) {
			r, err := tr.RecentUsage(ctx, f)
			return len(r), err
		})
	}
}
