package memory_test

import (
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
