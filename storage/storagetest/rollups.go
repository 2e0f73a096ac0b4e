package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// rollupFixture returns 300 records over five UTC days (23 minutes
// apart, starting an hour before midnight so that groups straddle it):
// three keys with two assignments each, three aliases, two connections,
// known, zero and unknown costs, estimated counts and cache counts.
func rollupFixture() []llmproxy.UsageRecord {
	start := time.Date(2025, 6, 1, 23, 0, 0, 0, time.UTC)
	keys := []string{"key_r1", "key_r2", ""}
	models := []string{"gpt-4o", "claude-sonnet", "text-embedding-3-small"}
	var out []llmproxy.UsageRecord
	for i := range 300 {
		key := keys[i%3]
		r := llmproxy.UsageRecord{
			ID:               fmt.Sprintf("roll_%04d", i),
			Time:             start.Add(time.Duration(i)*23*time.Minute + time.Duration(i)*time.Microsecond),
			KeyID:            key,
			AssignmentID:     fmt.Sprintf("asg_%s_%d", key, i%2),
			Model:            models[(i/2)%3],
			ConnectionID:     fmt.Sprintf("conn_%d", (i/5)%2),
			PromptTokens:     int64(20 + i),
			CompletionTokens: int64(7 * i),
			TotalTokens:      int64(20 + 8*i),
			CacheReadTokens:  int64(i % 5),
			CacheWriteTokens: int64(i % 7),
			Estimated:        i%11 == 0,
			Status:           200,
			Endpoint:         "chat",
		}
		if i%5 != 4 {
			r.CostKnown = true
			if i%13 != 0 {
				r.CostMicros = int64(500 + 91*i)
			}
		}
		out = append(out, r)
	}
	return out
}

// reporter returns s's UsageReporter, skipping the test when it has none.
func reporter(t *testing.T, s llmproxy.Storage) llmproxy.UsageReporter {
	t.Helper()
	r, ok := s.(llmproxy.UsageReporter)
	if !ok {
		t.Skip("the store keeps no rollups (llmproxy.UsageReporter)")
	}
	return r
}

// appendRollupWorkload appends records in batches of 37, retries one
// batch whole, one overlapping a stored batch and new records, and
// appends one batch from two goroutines at once (a retry racing its
// original). Each record must be counted once.
func appendRollupWorkload(t *testing.T, s llmproxy.Storage, records []llmproxy.UsageRecord) {
	ctx := t.Context()
	for i := 0; i < 250; i += 37 {
		must(t, "AppendUsage", s.AppendUsage(ctx, records[i:min(i+37, 250)]))
	}
	must(t, "AppendUsage of a batch again", s.AppendUsage(ctx, records[37:74]))
	must(t, "AppendUsage of stored and new records", s.AppendUsage(ctx, records[240:270]))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for g := range 2 {
		wg.Go(func() { errs[g] = s.AppendUsage(ctx, records[270:]) })
	}
	wg.Wait()
	must(t, "AppendUsage racing itself", errs[0])
	must(t, "AppendUsage racing itself", errs[1])
}

// allGroupings are every subset of the report dimensions.
func allGroupings() [][]llmproxy.UsageGroup {
	var out [][]llmproxy.UsageGroup
	for mask := range 1 << len(llmproxy.UsageGroups) {
		var by []llmproxy.UsageGroup
		for i, g := range llmproxy.UsageGroups {
			if mask&(1<<i) != 0 {
				by = append(by, g)
			}
		}
		out = append(out, by)
	}
	return out
}

// checkReport checks that s's reports, under every grouping and several
// filters, equal the sums of records (the ledger's content), and that
// the report by key and model over whole days equals SumUsage of the
// ledger itself.
func checkReport(t *testing.T, what string, s llmproxy.Storage, records []llmproxy.UsageRecord) {
	t.Helper()
	ctx := t.Context()
	rep := reporter(t, s)
	day0 := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	filters := []llmproxy.UsageFilter{
		{},
		{KeyID: "key_r2"},
		{Model: "claude-sonnet", ConnectionID: "conn_1"},
		{AssignmentID: "asg__1"},
		{Since: day0, Until: day0.AddDate(0, 0, 2)},
		{Since: day0.Add(5 * time.Hour), Until: day0.Add(30 * time.Hour)}, // days 0 and 1 whole
		{Since: day0.AddDate(1, 0, 0)},                                    // nothing
	}
	rollups := llmproxy.Rollups(records)
	for _, f := range filters {
		from, to := llmproxy.ReportDays(f)
		var sel []llmproxy.UsageRow
		for i := range rollups {
			if llmproxy.RollupSelected(&rollups[i], f, from, to) {
				sel = append(sel, rollups[i])
			}
		}
		for _, by := range allGroupings() {
			got, err := rep.UsageReport(ctx, f, by)
			must(t, "UsageReport", err)
			checkRows(t, fmt.Sprintf("%s: report by %v of %+v", what, by, f), got, llmproxy.GroupUsageRows(sel, by))
		}
		// Over whole days the report agrees with the ledger's own sums.
		ledger, err := s.SumUsage(ctx, llmproxy.UsageFilter{KeyID: f.KeyID, AssignmentID: f.AssignmentID, Model: f.Model,
			ConnectionID: f.ConnectionID, Since: from, Until: to})
		must(t, "SumUsage", err)
		got, err := rep.UsageReport(ctx, f, []llmproxy.UsageGroup{llmproxy.GroupKey, llmproxy.GroupModel})
		must(t, "UsageReport", err)
		var asSums []llmproxy.UsageSummary
		for _, r := range got {
			asSums = append(asSums, llmproxy.UsageSummary{KeyID: r.KeyID, Model: r.Model, Requests: r.Requests,
				PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TotalTokens: r.TotalTokens,
				EstimatedTokens: r.EstimatedTokens, CacheReadTokens: r.CacheReadTokens, CacheWriteTokens: r.CacheWriteTokens,
				CostMicros: r.CostMicros, UnknownCost: r.UnknownCost})
		}
		checkSums(t, fmt.Sprintf("%s: report by key,model of %+v against the ledger", what, f), asSums, ledger)
	}
	if _, err := rep.UsageReport(ctx, llmproxy.UsageFilter{}, []llmproxy.UsageGroup{"region"}); !errors.Is(err, llmproxy.ErrInvalid) {
		t.Errorf("%s: report by region: err %v, want ErrInvalid", what, err)
	}
}

// checkRows compares report rows, days by instant.
func checkRows(t *testing.T, what string, got, want []llmproxy.UsageRow) {
	t.Helper()
	norm := func(rows []llmproxy.UsageRow) []llmproxy.UsageRow {
		out := make([]llmproxy.UsageRow, len(rows))
		for i, r := range rows {
			if !r.Day.IsZero() {
				r.Day = r.Day.UTC()
			}
			out[i] = r
		}
		return out
	}
	g, w := norm(got), norm(want)
	if len(g) != len(w) {
		t.Errorf("%s: %d rows, want %d:\n got %+v\nwant %+v", what, len(g), len(w), g, w)
		return
	}
	for i := range g {
		if g[i] != w[i] {
			t.Errorf("%s: row %d:\n got %+v\nwant %+v", what, i, g[i], w[i])
		}
	}
}

// testRollupsAgree checks the rollups kept as the ledger is written
// against the ledger after a mixed workload with retried batches.
func testRollupsAgree(t *testing.T, s llmproxy.Storage) {
	reporter(t, s)
	records := rollupFixture()
	appendRollupWorkload(t, s, records)
	checkReport(t, "rollups kept on write", s, records)
}

// testRollupsRebuild checks that RebuildRollups recomputes the same
// rollups, twice in a row, and that a retried batch after it adds
// nothing. (RunUpgrade checks a rebuild that fills missing rollups.)
func testRollupsRebuild(t *testing.T, s llmproxy.Storage) {
	rep := reporter(t, s)
	records := rollupFixture()
	appendRollupWorkload(t, s, records)
	must(t, "RebuildRollups", rep.RebuildRollups(t.Context()))
	checkReport(t, "after a rebuild", s, records)
	must(t, "RebuildRollups again", rep.RebuildRollups(t.Context()))
	must(t, "AppendUsage of a batch again after a rebuild", s.AppendUsage(t.Context(), records[100:150]))
	checkReport(t, "after a second rebuild and a retried batch", s, records)
}

// checkUpgradeRollups checks, after an upgrade in place during which an
// older build wrote to the ledger without rollups, that RebuildRollups
// makes the report agree with the ledger (want is its content).
func checkUpgradeRollups(t *testing.T, s llmproxy.Storage, want []llmproxy.UsageRecord) {
	rep, ok := s.(llmproxy.UsageReporter)
	if !ok {
		return
	}
	must(t, "RebuildRollups after the upgrade", rep.RebuildRollups(t.Context()))
	got, err := rep.UsageReport(t.Context(), llmproxy.UsageFilter{}, llmproxy.UsageGroups)
	must(t, "UsageReport after the upgrade", err)
	checkRows(t, "rollups rebuilt after the upgrade", got, llmproxy.GroupUsageRows(llmproxy.Rollups(want), llmproxy.UsageGroups))
	ledger, err := s.SumUsage(t.Context(), llmproxy.UsageFilter{})
	must(t, "SumUsage", err)
	byKeyModel, err := rep.UsageReport(t.Context(), llmproxy.UsageFilter{}, []llmproxy.UsageGroup{llmproxy.GroupKey, llmproxy.GroupModel})
	must(t, "UsageReport", err)
	if len(byKeyModel) != len(ledger) {
		t.Errorf("rollups rebuilt after the upgrade: %d key×model rows, the ledger %d", len(byKeyModel), len(ledger))
	}
}
