package storagetest

import (
	"fmt"
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
