package memory

import (
	"context"

	"github.com/go-llm-proxy/llmproxy"
)

// rollUp adds r to its daily rollup. The caller holds s.mu for writing.
func (s *Store) rollUp(r *llmproxy.UsageRecord) {
	g := llmproxy.RollupOf(r)
	u := s.rollups[g]
	if u == nil {
		u = &g
		s.rollups[g] = u
	}
	u.AddRecord(r)
}

// UsageReport sums the daily rollups that f selects by the dimensions in
// by (see llmproxy.UsageReporter).
func (s *Store) UsageReport(ctx context.Context, f llmproxy.UsageFilter, by []llmproxy.UsageGroup) ([]llmproxy.UsageRow, error) {
	if err := llmproxy.CheckUsageGroups(by); err != nil {
		return nil, err
	}
	from, to := llmproxy.ReportDays(f)
	s.mu.RLock()
	rows := make([]llmproxy.UsageRow, 0, len(s.rollups))
	for _, u := range s.rollups {
		if llmproxy.RollupSelected(u, f, from, to) {
			rows = append(rows, *u)
		}
	}
	s.mu.RUnlock()
	return llmproxy.GroupUsageRows(rows, by), nil
}

// RebuildRollups recomputes the daily and hourly rollups from the
// ledger.
func (s *Store) RebuildRollups(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.rollups)
	clear(s.hourly)
	for i := range s.usage {
		s.rollUp(&s.usage[i])
		s.rollUpHour(&s.usage[i])
	}
	return nil
}
