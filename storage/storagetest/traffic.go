package storagetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// trafficLatencies cover every latency bucket, with each bucket's
// inclusive upper bound and the smallest step past it.
var trafficLatencies = []time.Duration{
	0, 999 * time.Microsecond, time.Millisecond, time.Millisecond + time.Nanosecond, 3 * time.Millisecond,
	7 * time.Millisecond, 10 * time.Millisecond, 15 * time.Millisecond, 35 * time.Millisecond, 75 * time.Millisecond,
	150 * time.Millisecond, 350 * time.Millisecond, 750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second,
	7 * time.Second, 15 * time.Second, 35 * time.Second, 75 * time.Second, 100 * time.Second, 100*time.Second + time.Millisecond,
	250 * time.Second,
}

// trafficStart is the fixture's first record: half past an hour, an
// hour and a half before midnight, so hours and days are both straddled.
var trafficStart = time.Date(2025, 7, 1, 22, 30, 0, 0, time.UTC)

// trafficFixture returns 300 records over about three and a half days,
// 17 minutes apart (so most hours hold one record, some two): two keys
// and the master key, three aliases, statuses 200, 429, 500 and 502,
// latencies in every bucket, known and unknown costs. Every tenth
// record (i%10 == 5) has the very time of the one before it, so that
// the order of ties (by ID, descending) and paging across them show.
// Every field differs between records, so a column read from the wrong
// place shows in RecentUsage.
func trafficFixture() []llmproxy.UsageRecord {
	keys := []string{"key_t1", "key_t2", ""}
	models := []string{"gpt-4o", "claude-sonnet", "gemini-flash"}
	statuses := []int{200, 200, 429, 200, 500, 200, 502}
	endpoints := []string{llmproxy.EndpointChat, llmproxy.EndpointMessages, llmproxy.EndpointEmbeddings}
	out := make([]llmproxy.UsageRecord, 300)
	for i := range out {
		key := keys[i%3]
		model := models[(i/2)%3]
		r := llmproxy.UsageRecord{
			ID:               fmt.Sprintf("traffic_%04d", i),
			Time:             trafficStart.Add(time.Duration(i)*17*time.Minute + time.Duration(i)*time.Millisecond),
			RequestID:        fmt.Sprintf("req-t-%d", i),
			KeyID:            key,
			AssignmentID:     fmt.Sprintf("asg_%s_%d", key, i%2),
			Model:            model,
			RemoteModel:      "remote-" + model,
			ConnectionID:     fmt.Sprintf("conn_%d", i%4),
			PromptTokens:     int64(30 + i),
			CompletionTokens: int64(5 * i),
			TotalTokens:      int64(30 + 6*i),
			CacheReadTokens:  int64(i % 6),
			CacheWriteTokens: int64(i % 4),
			Estimated:        i%9 == 0,
			Status:           statuses[i%7],
			Latency:          trafficLatencies[i%len(trafficLatencies)],
			Streamed:         i%2 == 1,
			Endpoint:         endpoints[i%3],
		}
		if i%10 == 5 {
			r.Time = out[i-1].Time
		}
		if i%6 != 5 {
			r.CostKnown = true
			if i%11 != 0 {
				r.CostMicros = int64(700 + 53*i)
			}
		}
		out[i] = r
	}
	return out
}

// trafficReporter returns s's TrafficReporter, skipping the test when it
// has none.
func trafficReporter(t *testing.T, s llmproxy.Storage) llmproxy.TrafficReporter {
	t.Helper()
	r, ok := s.(llmproxy.TrafficReporter)
	if !ok {
		t.Skip("the store keeps no hourly traffic (llmproxy.TrafficReporter)")
	}
	return r
}

// TrafficReference sums records into the hourly points f selects, as
// Traffic must: the oracle, built from llmproxy.TrafficOf and Add.
func TrafficReference(records []llmproxy.UsageRecord, f llmproxy.TrafficFilter) []llmproxy.TrafficPoint {
	byHour := map[time.Time]*llmproxy.TrafficPoint{}
	for i := range records {
		r := &records[i]
		if f.KeyID != "" && r.KeyID != f.KeyID {
			continue
		}
		p := llmproxy.TrafficOf(r)
		// An hour is selected when it overlaps [Since, Until).
		if (!f.Since.IsZero() && !p.Hour.Add(time.Hour).After(f.Since)) || (!f.Until.IsZero() && !p.Hour.Before(f.Until)) {
			continue
		}
		if q := byHour[p.Hour]; q != nil {
			q.Add(p)
		} else {
			byHour[p.Hour] = &p
		}
	}
	var out []llmproxy.TrafficPoint
	for _, p := range byHour {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b llmproxy.TrafficPoint) int { return a.Hour.Compare(b.Hour) })
	return out
}

// checkTraffic compares hourly points, hours by instant.
func checkTraffic(t *testing.T, what string, got, want []llmproxy.TrafficPoint) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d hours, want %d:\n got %+v\nwant %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		g.Hour, w.Hour = g.Hour.UTC(), w.Hour.UTC()
		if g != w {
			t.Errorf("%s: hour %d:\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

// trafficFilters are the selections checked against the reference.
func trafficFilters() []llmproxy.TrafficFilter {
	day1 := time.Date(2025, 7, 2, 0, 0, 0, 0, time.UTC)
	return []llmproxy.TrafficFilter{
		{},
		{KeyID: "key_t1"},
		{KeyID: "key_none"},
		// Cut mid-hour at both ends: both hours are whole in the answer.
		{Since: day1.Add(3*time.Hour + 20*time.Minute), Until: day1.Add(29*time.Hour + 10*time.Minute)},
		{KeyID: "key_t2", Since: day1.Add(3*time.Hour + 20*time.Minute), Until: day1.Add(29*time.Hour + 10*time.Minute)},
		// On the hour: Until's hour is out, Since's in.
		{Since: day1.Add(5 * time.Hour), Until: day1.Add(9 * time.Hour)},
		{Since: day1.Add(40 * time.Hour)},
		{Until: day1.Add(2 * time.Hour)},
		{Since: day1.AddDate(1, 0, 0)}, // nothing
	}
}

// checkTrafficAgrees checks s's Traffic under every trafficFilter
// against the reference computed from records (the ledger's content).
func checkTrafficAgrees(t *testing.T, what string, s llmproxy.Storage, records []llmproxy.UsageRecord) {
	t.Helper()
	tr := trafficReporter(t, s)
	for _, f := range trafficFilters() {
		got, err := tr.Traffic(t.Context(), f)
		must(t, "Traffic", err)
		checkTraffic(t, fmt.Sprintf("%s: traffic of %+v", what, f), got, TrafficReference(records, f))
	}
}

// testTraffic checks the hourly traffic kept as the ledger is written,
// after a workload with retried and racing batches, and again after
// RebuildRollups and a retried batch after it.
func testTraffic(t *testing.T, s llmproxy.Storage) {
	trafficReporter(t, s)
	records := trafficFixture()
	// The fixture must exercise what it claims to.
	want := TrafficReference(records, llmproxy.TrafficFilter{})
	var total llmproxy.TrafficPoint
	for _, p := range want {
		total.Add(p)
	}
	if total.Requests != 300 || total.Errors == 0 || slices.Contains(total.Latency[:], 0) || total.UnknownCost == 0 {
		t.Fatalf("fixture: %+v, want 300 requests, errors, unknown costs and every latency bucket", total)
	}
	appendRollupWorkload(t, s, records)
	checkTrafficAgrees(t, "traffic kept on write", s, records)

	rep, ok := s.(llmproxy.UsageReporter)
	if !ok {
		return
	}
	must(t, "RebuildRollups", rep.RebuildRollups(t.Context()))
	checkTrafficAgrees(t, "traffic after a rebuild", s, records)
	must(t, "AppendUsage of a batch again after a rebuild", s.AppendUsage(t.Context(), records[100:150]))
	checkTrafficAgrees(t, "traffic after a rebuild and a retried batch", s, records)
}

// recentReference returns the records f selects, newest first, ties by
// ID descending, at most limit of them (none: all).
func recentReference(records []llmproxy.UsageRecord, f llmproxy.RecentFilter, limit int) []llmproxy.UsageRecord {
	var out []llmproxy.UsageRecord
	for _, r := range records {
		switch {
		case f.KeyID != "" && r.KeyID != f.KeyID,
			f.Model != "" && r.Model != f.Model,
			f.Status != 0 && r.Status != f.Status,
			f.Errors && r.Status < 400,
			!f.Before.IsZero() && !r.Time.Before(f.Before):
			continue
		}
		if !r.CostKnown {
			r.CostMicros = 0 // unknown: the ledger keeps no cost
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b llmproxy.UsageRecord) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.ID, a.ID))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// checkRecords compares ledger records field by field, times by instant.
func checkRecords(t *testing.T, what string, got, want []llmproxy.UsageRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d:\n got %v\nwant %v", what, len(got), len(want),
			ids(got, usageID), ids(want, usageID))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("%s: record %d (%s) time %v, want %v", what, i, g.ID, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("%s: record %d:\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

func usageID(r *llmproxy.UsageRecord) string { return r.ID }

// testRecentUsage checks RecentUsage's filters, order and limits against
// the reference, and paging back through each selection.
func testRecentUsage(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	tr := trafficReporter(t, s)
	got, err := tr.RecentUsage(ctx, llmproxy.RecentFilter{})
	must(t, "RecentUsage of an empty ledger", err)
	if len(got) != 0 {
		t.Fatalf("RecentUsage of an empty ledger: %d records", len(got))
	}
	records := trafficFixture()
	appendRollupWorkload(t, s, records)
	tie := records[45].Time // records 44 and 45 share it
	filters := []llmproxy.RecentFilter{
		{},
		{KeyID: "key_t2"},
		{KeyID: "key_none"},
		{Model: "claude-sonnet"},
		{Status: 429},
		{Status: 502, KeyID: ""},
		{Errors: true},
		{Errors: true, KeyID: "key_t1"},
		{Errors: true, Model: "gpt-4o"},
		{Errors: true, Status: 200}, // nothing
		{Status: 500, Model: "gemini-flash", KeyID: "key_t2"},
		{Before: tie},                       // strictly older: neither of the tie
		{Before: tie.Add(time.Microsecond)}, // both of the tie
		{Before: tie, KeyID: "key_t1", Errors: true},
		{Before: records[0].Time}, // nothing
		{Limit: 7},
		{Limit: 7, Model: "gpt-4o", Before: records[200].Time},
		{Limit: 1, Errors: true},
		{Limit: -3}, // 50
		{Limit: 1000},
	}
	for _, f := range filters {
		got, err := tr.RecentUsage(ctx, f)
		must(t, "RecentUsage", err)
		want := recentReference(records, f, f.RecentLimit())
		checkRecords(t, fmt.Sprintf("RecentUsage(%+v)", f), got, want)
	}
	for _, f := range []llmproxy.RecentFilter{{}, {KeyID: "key_t1"}, {Errors: true}, {Model: "gemini-flash", Status: 200}} {
		for _, limit := range []int{3, 8, 50} {
			f.Limit = limit
			checkRecords(t, fmt.Sprintf("paging %+v", f), pageRecent(t, tr, f), recentReference(records, f, 0))
		}
	}
}

// pageRecent pages back through everything f selects, f.Limit records a
// page, as a console does: RecentFilter.Before is a time, so a full page
// drops its trailing run of records that share the page's oldest time
// (the next page starts with them) and asks next for the records before
// the oldest time it kept. A page of a single time cannot be cut, and
// fails the test (the fixture's ties are pairs).
func pageRecent(t *testing.T, tr llmproxy.TrafficReporter, f llmproxy.RecentFilter) []llmproxy.UsageRecord {
	t.Helper()
	var all []llmproxy.UsageRecord
	for n := 0; ; n++ {
		page, err := tr.RecentUsage(t.Context(), f)
		must(t, "RecentUsage", err)
		if len(page) < f.RecentLimit() {
			return append(all, page...)
		}
		if len(page) > f.RecentLimit() {
			t.Fatalf("paging %+v: %d records, limit %d", f, len(page), f.RecentLimit())
		}
		oldest := page[len(page)-1].Time
		keep := len(page)
		for keep > 0 && page[keep-1].Time.Equal(oldest) {
			keep--
		}
		if keep == 0 {
			t.Fatalf("paging %+v: a whole page of records at %v", f, oldest)
		}
		all = append(all, page[:keep]...)
		f.Before = page[keep-1].Time
		if n > 10000 {
			t.Fatal("paging does not end")
		}
	}
}

// testRecentUsageLimit checks the cap of 500 records.
func testRecentUsageLimit(t *testing.T, s llmproxy.Storage) {
	tr := trafficReporter(t, s)
	records := make([]llmproxy.UsageRecord, 520)
	for i := range records {
		records[i] = llmproxy.UsageRecord{ID: fmt.Sprintf("cap_%04d", i), Time: usageEpoch.Add(time.Duration(i) * time.Second),
			KeyID: "key_cap", Model: "m", Status: 200, CostKnown: true}
	}
	must(t, "AppendUsage", s.AppendUsage(t.Context(), records))
	for _, limit := range []int{0, 500, 501, 10_000} {
		f := llmproxy.RecentFilter{Limit: limit}
		got, err := tr.RecentUsage(t.Context(), f)
		must(t, "RecentUsage", err)
		checkRecords(t, fmt.Sprintf("RecentUsage with limit %d", limit), got, recentReference(records, f, f.RecentLimit()))
	}
}

// checkUpgradeTraffic checks, after an upgrade in place during which an
// older build wrote to the ledger without rollups and RebuildRollups
// then ran, that the hourly traffic agrees with the ledger (want is its
// content) and that the newest records read back whole.
func checkUpgradeTraffic(t *testing.T, s llmproxy.Storage, want []llmproxy.UsageRecord) {
	tr, ok := s.(llmproxy.TrafficReporter)
	if !ok {
		return
	}
	got, err := tr.Traffic(t.Context(), llmproxy.TrafficFilter{})
	must(t, "Traffic after the upgrade", err)
	checkTraffic(t, "traffic rebuilt after the upgrade", got, TrafficReference(want, llmproxy.TrafficFilter{}))
	recent, err := tr.RecentUsage(t.Context(), llmproxy.RecentFilter{Limit: 500})
	must(t, "RecentUsage after the upgrade", err)
	checkRecords(t, "RecentUsage after the upgrade", recent, recentReference(want, llmproxy.RecentFilter{}, 500))
}
