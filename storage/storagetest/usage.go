package storagetest

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

var usageEpoch = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// usageFixture returns records over two keys, the master key (empty
// KeyID), two aliases on two connections, spread one minute apart. Some
// records read from or wrote to the prompt cache, some both, some
// neither. Most have a known cost, one in seven of them a known zero (a
// free model); one in four has an unknown cost.
func usageFixture() []llmproxy.UsageRecord {
	var out []llmproxy.UsageRecord
	keys := []string{"key_b", "key_a", ""}
	models := []string{"gpt-4o", "gemini-flash"}
	for i := range 60 {
		key := keys[i%3]
		model := models[(i/3)%2]
		out = append(out, llmproxy.UsageRecord{
			ID:               fmt.Sprintf("usage_%03d", i),
			Time:             usageEpoch.Add(time.Duration(i)*time.Minute + time.Duration(i)*time.Millisecond),
			RequestID:        fmt.Sprintf("req-%d", i),
			KeyID:            key,
			AssignmentID:     fmt.Sprintf("asg_%s_%d", key, i%2),
			Model:            model,
			RemoteModel:      "remote-" + model,
			ConnectionID:     fmt.Sprintf("conn_%d", i%4),
			PromptTokens:     int64(10 + i),
			CompletionTokens: int64(100 + 2*i),
			TotalTokens:      int64(110 + 3*i),
			CacheReadTokens:  int64(i % 4 * 2),
			CacheWriteTokens: int64(i % 3),
			Estimated:        i%5 == 0,
			Status:           200,
			Latency:          time.Duration(i) * time.Millisecond,
			Streamed:         i%2 == 0,
			Endpoint:         "chat",
		})
		if i%4 != 3 {
			r := &out[len(out)-1]
			r.CostKnown = true
			if i%7 != 0 {
				r.CostMicros = int64(1_000 + 37*i)
			}
		}
	}
	return out
}

// sumReference sums records as SumUsage must: the oracle for filters.
func sumReference(records []llmproxy.UsageRecord, f llmproxy.UsageFilter) []llmproxy.UsageSummary {
	type group struct{ key, model string }
	sums := map[group]*llmproxy.UsageSummary{}
	for _, r := range records {
		if (f.KeyID != "" && r.KeyID != f.KeyID) || (f.AssignmentID != "" && r.AssignmentID != f.AssignmentID) ||
			(f.Model != "" && r.Model != f.Model) || (f.ConnectionID != "" && r.ConnectionID != f.ConnectionID) ||
			(!f.Since.IsZero() && r.Time.Before(f.Since)) || (!f.Until.IsZero() && !r.Time.Before(f.Until)) {
			continue
		}
		g := group{r.KeyID, r.Model}
		u := sums[g]
		if u == nil {
			u = &llmproxy.UsageSummary{KeyID: r.KeyID, Model: r.Model}
			sums[g] = u
		}
		u.Requests++
		u.PromptTokens += r.PromptTokens
		u.CompletionTokens += r.CompletionTokens
		u.TotalTokens += r.TotalTokens
		u.CacheReadTokens += r.CacheReadTokens
		u.CacheWriteTokens += r.CacheWriteTokens
		if r.Estimated {
			u.EstimatedTokens += r.TotalTokens
		}
		if r.CostKnown {
			u.CostMicros += r.CostMicros
		} else {
			u.UnknownCost++
		}
	}
	var out []llmproxy.UsageSummary
	for _, u := range sums {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].KeyID != out[j].KeyID {
			return out[i].KeyID < out[j].KeyID
		}
		return out[i].Model < out[j].Model
	})
	return out
}

func checkSums(t *testing.T, what string, got, want []llmproxy.UsageSummary) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testUsageSum(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	sums, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, "SumUsage on an empty ledger", err)
	if len(sums) != 0 {
		t.Fatalf("empty ledger sums to %+v", sums)
	}
	must(t, "AppendUsage of nothing", s.AppendUsage(ctx, nil))

	records := usageFixture()
	must(t, "AppendUsage", s.AppendUsage(ctx, records[:25]))
	must(t, "AppendUsage", s.AppendUsage(ctx, records[25:]))
	sums, err = s.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, "SumUsage", err)
	want := sumReference(records, llmproxy.UsageFilter{})
	// Six groups: the master key ("") first, then key_a, key_b; models
	// in byte order within each.
	if len(want) != 6 || want[0].KeyID != "" || want[0].Model != "gemini-flash" || want[5].KeyID != "key_b" {
		t.Fatalf("fixture sums unexpected: %+v", want)
	}
	checkSums(t, "SumUsage", sums, want)
	var requests, estimated, cacheRead, cacheWrite, cost, unknown int64
	for _, u := range sums {
		requests += u.Requests
		estimated += u.EstimatedTokens
		cacheRead += u.CacheReadTokens
		cacheWrite += u.CacheWriteTokens
		cost += u.CostMicros
		unknown += u.UnknownCost
	}
	// The fixture's own sums, so that a backend summing one cache column
	// into the other, or neither, or counting an unknown cost as a known
	// zero (or a known zero as unknown), cannot pass.
	if requests != 60 || estimated == 0 || cacheRead != 180 || cacheWrite != 60 {
		t.Errorf("SumUsage counts %d requests, %d estimated, %d cache-read and %d cache-write tokens; want 60, more than 0, 180 and 60",
			requests, estimated, cacheRead, cacheWrite)
	}
	if wantCost, wantUnknown := fixtureCost(records); cost != wantCost || unknown != 15 || wantUnknown != 15 {
		t.Errorf("SumUsage costs %d µ$ with %d unknown; want %d µ$ with 15 unknown", cost, unknown, wantCost)
	}
}

// fixtureCost is the known cost and the count of unknown costs of
// records, computed apart from sumReference.
func fixtureCost(records []llmproxy.UsageRecord) (micros, unknown int64) {
	for _, r := range records {
		if r.CostKnown {
			micros += r.CostMicros
		} else {
			unknown++
		}
	}
	return micros, unknown
}

// testUsageRoundTrip stores records whose every count differs from the
// others (and some beyond 32 bits), one key each, and reads each back
// alone: a column written to the wrong place, or truncated, shows.
func testUsageRoundTrip(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	records := []llmproxy.UsageRecord{
		{PromptTokens: 1_000_003, CompletionTokens: 20_011, TotalTokens: 1_020_014, CacheReadTokens: 700_001, CacheWriteTokens: 300_002,
			CostMicros: 3_301_247, CostKnown: true},
		{PromptTokens: 9_000_000_019, CompletionTokens: 7, TotalTokens: 9_000_000_026, CacheReadTokens: 6_000_000_005, CacheWriteTokens: 3_000_000_013, Estimated: true,
			CostMicros: 27_000_000_071, CostKnown: true},
		{PromptTokens: 41, CompletionTokens: 43, TotalTokens: 84, CacheWriteTokens: 41, CostKnown: true},
		{PromptTokens: 53, CompletionTokens: 59, TotalTokens: 112, CacheReadTokens: 53},
		// A cost without CostKnown is unknown: not stored, not summed.
		{PromptTokens: 61, CompletionTokens: 67, TotalTokens: 128, CostMicros: 999},
	}
	for i := range records {
		r := &records[i]
		r.ID = fmt.Sprintf("rt_%d", i)
		r.Time = usageEpoch.Add(time.Duration(i) * time.Second)
		r.KeyID = fmt.Sprintf("key_rt_%d", i)
		r.Model = "claude-sonnet"
		r.Status = 200
		r.Endpoint = llmproxy.EndpointMessages
	}
	must(t, "AppendUsage", s.AppendUsage(ctx, records))
	for _, r := range records {
		got, err := s.SumUsage(ctx, llmproxy.UsageFilter{KeyID: r.KeyID})
		must(t, "SumUsage", err)
		want := llmproxy.UsageSummary{
			KeyID: r.KeyID, Model: r.Model, Requests: 1,
			PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TotalTokens: r.TotalTokens,
			CacheReadTokens: r.CacheReadTokens, CacheWriteTokens: r.CacheWriteTokens,
		}
		if r.Estimated {
			want.EstimatedTokens = r.TotalTokens
		}
		if r.CostKnown {
			want.CostMicros = r.CostMicros
		} else {
			want.UnknownCost = 1
		}
		checkSums(t, "SumUsage of "+r.ID, got, []llmproxy.UsageSummary{want})
	}
	got, err := s.SumUsage(ctx, llmproxy.UsageFilter{Model: "claude-sonnet"})
	must(t, "SumUsage", err)
	checkSums(t, "SumUsage of every key", got, sumReference(records, llmproxy.UsageFilter{}))
}

func testUsageFilters(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	records := usageFixture()
	must(t, "AppendUsage", s.AppendUsage(ctx, records))
	tests := []struct {
		name string
		f    llmproxy.UsageFilter
		// requests is the number of records selected, to keep the oracle
		// honest.
		requests int64
	}{
		{"everything", llmproxy.UsageFilter{}, 60},
		{"key", llmproxy.UsageFilter{KeyID: "key_a"}, 20},
		{"unknown key", llmproxy.UsageFilter{KeyID: "key_none"}, 0},
		{"assignment", llmproxy.UsageFilter{AssignmentID: "asg_key_a_1"}, 10},
		{"model", llmproxy.UsageFilter{Model: "gpt-4o"}, 30},
		{"connection", llmproxy.UsageFilter{ConnectionID: "conn_3"}, 15},
		{"since is inclusive", llmproxy.UsageFilter{Since: records[50].Time}, 10},
		{"until is exclusive", llmproxy.UsageFilter{Until: records[10].Time}, 10},
		{"window", llmproxy.UsageFilter{Since: records[10].Time, Until: records[20].Time}, 10},
		{"window between records", llmproxy.UsageFilter{Since: records[10].Time.Add(time.Millisecond), Until: records[11].Time}, 0},
		{"all filters", llmproxy.UsageFilter{KeyID: "key_b", Model: "gpt-4o", ConnectionID: "conn_0", AssignmentID: "asg_key_b_0", Since: records[0].Time, Until: records[59].Time}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sumReference(records, tt.f)
			var n int64
			for _, u := range want {
				n += u.Requests
			}
			if n != tt.requests {
				t.Fatalf("fixture selects %d records, the test expects %d", n, tt.requests)
			}
			got, err := s.SumUsage(ctx, tt.f)
			must(t, "SumUsage", err)
			checkSums(t, "SumUsage", got, want)
		})
	}
}

func testUsageRetriedBatch(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	records := usageFixture()
	must(t, "AppendUsage", s.AppendUsage(ctx, records[:40]))
	must(t, "AppendUsage retried", s.AppendUsage(ctx, records[:40]))
	must(t, "AppendUsage overlapping", s.AppendUsage(ctx, records[30:]))
	// A duplicate inside one batch is stored once too.
	dup := records[0]
	dup.TotalTokens = 1_000_000
	must(t, "AppendUsage with a duplicate inside", s.AppendUsage(ctx, []llmproxy.UsageRecord{records[1], dup, records[1]}))
	got, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, "SumUsage", err)
	checkSums(t, "SumUsage after retries", got, sumReference(records, llmproxy.UsageFilter{}))
}

// testUsageLargeBatch appends one batch larger than any sensible chunk a
// backend might split it into.
func testUsageLargeBatch(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	const n = 2345
	records := make([]llmproxy.UsageRecord, n)
	for i := range records {
		records[i] = llmproxy.UsageRecord{
			ID: fmt.Sprintf("big_%05d", i), Time: usageEpoch.Add(time.Duration(i) * time.Second),
			KeyID: fmt.Sprintf("key_%d", i%7), Model: "m", PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3,
		}
	}
	must(t, "AppendUsage", s.AppendUsage(ctx, records))
	must(t, "AppendUsage retried", s.AppendUsage(ctx, records))
	got, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, "SumUsage", err)
	checkSums(t, "SumUsage", got, sumReference(records, llmproxy.UsageFilter{}))
}

func testUsageInvalid(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	err := s.AppendUsage(ctx, []llmproxy.UsageRecord{{ID: "ok", Time: usageEpoch}, {Time: usageEpoch}})
	wantErr(t, "AppendUsage with a record without ID", err, llmproxy.ErrInvalid)
}

// testConcurrent creates keys and appends usage from many goroutines at
// once, with readers polling meanwhile; nothing may be lost.
func testConcurrent(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	m := createModel(t, s, "model", c.ID)
	const (
		workers = 8
		keysPer = 10
		batches = 10
		perBat  = 25
	)
	var wg sync.WaitGroup
	errs := make(chan error, 4*workers)
	done := make(chan struct{})
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range keysPer {
				k := newKey(fmt.Sprintf("key-%d-%d", w, i), modelOnly(m.ID), connectionWide(c.ID))
				if err := s.CreateKey(ctx, k); err != nil {
					errs <- fmt.Errorf("CreateKey: %w", err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for b := range batches {
				batch := make([]llmproxy.UsageRecord, perBat)
				for i := range batch {
					batch[i] = llmproxy.UsageRecord{
						ID:   fmt.Sprintf("u-%d-%d-%d", w, b, i),
						Time: usageEpoch.Add(time.Duration(b) * time.Second), KeyID: fmt.Sprintf("key_%d", w),
						Model: "model", TotalTokens: 1,
					}
				}
				if err := s.AppendUsage(ctx, batch); err != nil {
					errs <- fmt.Errorf("AppendUsage: %w", err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.ConfigVersion(ctx); err != nil {
				errs <- fmt.Errorf("ConfigVersion: %w", err)
				return
			}
			if _, err := s.Keys(ctx, llmproxy.ListOptions{Limit: 50}); err != nil {
				errs <- fmt.Errorf("s.Keys: %w", err)
				return
			}
			if _, err := s.SumUsage(ctx, llmproxy.UsageFilter{}); err != nil {
				errs <- fmt.Errorf("SumUsage: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	keys, err := s.Keys(ctx, llmproxy.ListOptions{})
	must(t, "Keys", err)
	if len(keys) != workers*keysPer {
		t.Errorf("%d keys stored, want %d", len(keys), workers*keysPer)
	}
	for _, k := range keys {
		if len(k.Assignments) != 2 {
			t.Errorf("key %s has %d assignments, want 2", k.Name, len(k.Assignments))
		}
	}
	sums, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, "SumUsage", err)
	var total int64
	for _, u := range sums {
		total += u.Requests
		if u.Requests != batches*perBat {
			t.Errorf("key %s has %d records, want %d", u.KeyID, u.Requests, batches*perBat)
		}
	}
	if total != workers*batches*perBat {
		t.Errorf("%d usage records stored, want %d", total, workers*batches*perBat)
	}
}
