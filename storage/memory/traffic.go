package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// hourKey is one hourly traffic rollup's group.
type hourKey struct {
	hour  int64 // unix seconds of the UTC hour
	keyID string
}

var _ llmproxy.TrafficReporter = (*Store)(nil)

// rollUpHour adds r to its hourly traffic rollup. The caller holds s.mu
// for writing.
func (s *Store) rollUpHour(r *llmproxy.UsageRecord) {
	p := llmproxy.TrafficOf(r)
	k := hourKey{p.Hour.Unix(), r.KeyID}
	if q := s.hourly[k]; q != nil {
		q.Add(p)
		return
	}
	s.hourly[k] = &p
}

// Traffic sums the hourly rollups f selects over keys (see
// llmproxy.TrafficReporter).
func (s *Store) Traffic(ctx context.Context, f llmproxy.TrafficFilter) ([]llmproxy.TrafficPoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byHour := map[int64]*llmproxy.TrafficPoint{}
	for k, p := range s.hourly {
		switch {
		case f.KeyID != "" && k.keyID != f.KeyID,
			!f.Since.IsZero() && !p.Hour.Add(time.Hour).After(f.Since),
			!f.Until.IsZero() && !p.Hour.Before(f.Until):
			continue
		}
		if q := byHour[k.hour]; q != nil {
			q.Add(*p)
		} else {
			q := *p
			byHour[k.hour] = &q
		}
	}
	out := make([]llmproxy.TrafficPoint, 0, len(byHour))
	for _, p := range byHour {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b llmproxy.TrafficPoint) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}

// RecentUsage returns the newest records f selects. The ledger is
// appended in arrival order, not time order, so it is scanned whole: a
// memory store holds what a test or a trial run writes, not millions.
func (s *Store) RecentUsage(ctx context.Context, f llmproxy.RecentFilter) ([]llmproxy.UsageRecord, error) {
	s.mu.RLock()
	var out []llmproxy.UsageRecord
	for _, r := range s.usage {
		switch {
		case f.KeyID != "" && r.KeyID != f.KeyID,
			f.Model != "" && r.Model != f.Model,
			f.Status != 0 && r.Status != f.Status,
			f.Errors && r.Status < 400,
			!f.Before.IsZero() && !r.Time.Before(f.Before):
			continue
		}
		out = append(out, r)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b llmproxy.UsageRecord) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.ID, a.ID))
	})
	if n := f.RecentLimit(); len(out) > n {
		out = out[:n]
	}
	return slices.Clip(out), nil
}
