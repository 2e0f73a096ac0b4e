package memory_test

import (
	"context"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/storage/memory"
	"github.com/go-llm-proxy/llmproxy/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) llmproxy.Storage { return memory.New() })
}

// TestShared runs the shared-database tests on one Store seen twice, which
// checks the suite itself against the reference backend.
func TestShared(t *testing.T) {
	storagetest.RunShared(t, func(*testing.T) (a, b llmproxy.Storage) {
		s := memory.New()
		return s, s
	})
}

// TestUpgrade runs the upgrade suite on a Store that has no schema: an
// older build's records are the same records with the cache counts
// and the cost left out. It checks the suite against the reference backend.
func TestUpgrade(t *testing.T) {
	storagetest.RunUpgrade(t, func(*testing.T) storagetest.Upgrade {
		s := memory.New()
		return storagetest.Upgrade{
			AppendOld: func(ctx context.Context, records []llmproxy.UsageRecord) error {
				old := make([]llmproxy.UsageRecord, len(records))
				for i, r := range records {
					r.CacheReadTokens, r.CacheWriteTokens = 0, 0
					r.CostMicros, r.CostKnown = 0, false
					old[i] = r
				}
				return s.AppendUsage(ctx, old)
			},
			Open: func(*testing.T) llmproxy.Storage { return s },
		}
	})
}
