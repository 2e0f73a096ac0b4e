package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// The hourly traffic rollups (usage_hourly) and the recent-requests
// query, which the web console reads (llmproxy.TrafficReporter).

var _ llmproxy.TrafficReporter = (*Store)(nil)

// trafficSums are usage_hourly's sum columns, in llmproxy.TrafficPoint's
// order, the latency histogram last (lat_00 … lat_16, one per
// llmproxy.LatencyBucket).
var trafficSums = func() string {
	cols := []string{"requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_micros", "unknown_cost"}
	for i := range llmproxy.LatencyBuckets {
		cols = append(cols, fmt.Sprintf("lat_%02d", i))
	}
	return strings.Join(cols, ", ")
}()

// trafficSumCount is the number of trafficSums.
var trafficSumCount = strings.Count(trafficSums, ",") + 1

// hourMicros is an hour in the ledger's unit of time.
const hourMicros = int64(time.Hour / time.Microsecond)

// hourlyUpsert adds one (hour, key)'s sums to its row, creating it.
var hourlyUpsert = func() string {
	var set []string
	for _, c := range strings.Split(trafficSums, ", ") {
		set = append(set, c+" = usage_hourly."+c+" + excluded."+c)
	}
	return `INSERT INTO usage_hourly (hour, key_id, ` + trafficSums + `)
		VALUES (` + strings.Repeat("?, ", trafficSumCount+1) + `?)
		ON CONFLICT (hour, key_id) DO UPDATE SET ` + strings.Join(set, ", ")
}()

// hourlyFill rolls the whole ledger up into usage_hourly: RebuildRollups
// runs it, and the 0009 migrations hold the very same statement (a test
// holds them to it). A request's latency bucket is the first bound (in
// nanoseconds, as the ledger keeps latency) it does not exceed.
var hourlyFill = func() string {
	sums := []string{"COUNT(*)", "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)", "SUM(prompt_tokens)", "SUM(completion_tokens)",
		"SUM(total_tokens)", "COALESCE(SUM(cost_micros), 0)", "COUNT(*) - COUNT(cost_micros)"}
	for i := range llmproxy.LatencyBuckets {
		var cond string
		switch {
		case i == 0:
			cond = fmt.Sprintf("latency <= %d", llmproxy.LatencyBounds[0])
		case i == len(llmproxy.LatencyBounds):
			cond = fmt.Sprintf("latency > %d", llmproxy.LatencyBounds[i-1])
		default:
			cond = fmt.Sprintf("latency > %d AND latency <= %d", llmproxy.LatencyBounds[i-1], llmproxy.LatencyBounds[i])
		}
		sums = append(sums, "SUM(CASE WHEN "+cond+" THEN 1 ELSE 0 END)")
	}
	hour := fmt.Sprintf("time - time %% %d", hourMicros)
	return "INSERT INTO usage_hourly (hour, key_id, " + trafficSums + ")\nSELECT " + hour + ", key_id,\n\t" +
		strings.Join(sums, ",\n\t") + "\nFROM usage_records\nGROUP BY " + hour + ", key_id;"
}()

// hourGroup is one usage_hourly row's key.
type hourGroup struct {
	hour  int64 // unix microseconds of the UTC hour
	keyID string
}

// rollUpHours adds records to their hourly rollups in tx, upserting the
// (hour, key) groups in one order, as rollUp does the daily ones and
// after them, so that concurrent batches lock rollup rows in one order.
func (s *Store) rollUpHours(ctx context.Context, tx *sql.Tx, records []llmproxy.UsageRecord) error {
	if len(records) == 0 {
		return nil
	}
	sums := map[hourGroup]*llmproxy.TrafficPoint{}
	for i := range records {
		r := &records[i]
		p := llmproxy.TrafficOf(r)
		g := hourGroup{toMicros(p.Hour), r.KeyID}
		if q := sums[g]; q != nil {
			q.Add(p)
		} else {
			sums[g] = &p
		}
	}
	groups := make([]hourGroup, 0, len(sums))
	for g := range sums {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b hourGroup) int {
		return cmp.Or(cmp.Compare(a.hour, b.hour), strings.Compare(a.keyID, b.keyID))
	})
	st, err := tx.PrepareContext(ctx, s.q(hourlyUpsert))
	if err != nil {
		return fmt.Errorf("roll up hours: %w", err)
	}
	defer st.Close()
	args := make([]any, 0, trafficSumCount+2)
	for _, g := range groups {
		p := sums[g]
		args = append(args[:0], g.hour, g.keyID, p.Requests, p.Errors, p.PromptTokens, p.CompletionTokens, p.TotalTokens,
			p.CostMicros, p.UnknownCost)
		for _, n := range p.Latency {
			args = append(args, n)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("roll up hours: %w", err)
		}
	}
	return nil
}

// Traffic sums the hourly rollups that f selects over keys, by hour,
// reading usage_hourly only: a month is 720 rows per key.
func (s *Store) Traffic(ctx context.Context, f llmproxy.TrafficFilter) ([]llmproxy.TrafficPoint, error) {
	var (
		where []string
		args  []any
	)
	if f.KeyID != "" {
		where = append(where, "key_id = ?")
		args = append(args, f.KeyID)
	}
	// The hours overlapping [Since, Until): from Since's hour on, before
	// Until.
	if !f.Since.IsZero() {
		where = append(where, "hour >= ?")
		args = append(args, toMicros(f.Since.UTC().Truncate(time.Hour)))
	}
	if !f.Until.IsZero() {
		where = append(where, "hour < ?")
		args = append(args, toMicros(f.Until))
	}
	var sums []string
	for _, c := range strings.Split(trafficSums, ", ") {
		sums = append(sums, "SUM("+c+")")
	}
	query := "SELECT hour, " + strings.Join(sums, ", ") + " FROM usage_hourly"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " GROUP BY hour ORDER BY hour"
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("traffic: %w", err)
	}
	defer rows.Close()
	var out []llmproxy.TrafficPoint
	for rows.Next() {
		var (
			p    llmproxy.TrafficPoint
			hour int64
		)
		dest := []any{&hour, &p.Requests, &p.Errors, &p.PromptTokens, &p.CompletionTokens, &p.TotalTokens, &p.CostMicros, &p.UnknownCost}
		for i := range p.Latency {
			dest = append(dest, &p.Latency[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("traffic: %w", err)
		}
		p.Hour = fromMicros(hour)
		out = append(out, p)
	}
	return out, rows.Err()
}

// RecentUsage returns the newest ledger records f selects. Every filter
// is a condition an index of the ledger answers in time order — key_id,
// model, the pair of them and status each lead an index on (…, time),
// and the errors filter is written literally as the predicate of the
// partial indexes of errors (a bound parameter would not match it) — so
// the query reads an index backwards and stops after the limit, never
// sorting or scanning the ledger (RecentIndex names the best one). Ties
// in time are ordered by ID, which SQLite's indexes all carry after time
// and PostgreSQL's end in, but for the two the ledger began with (on
// time, and on key and time), after which it sorts each tie's records.
func (s *Store) RecentUsage(ctx context.Context, f llmproxy.RecentFilter) ([]llmproxy.UsageRecord, error) {
	query, args := recentQuery(f, s.d.IndexedBy)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("recent usage: %w", err)
	}
	defer rows.Close()
	var out []llmproxy.UsageRecord
	for rows.Next() {
		var (
			r       llmproxy.UsageRecord
			t, lat  int64
			costMic sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &t, &r.RequestID, &r.KeyID, &r.AssignmentID, &r.Model, &r.RemoteModel, &r.ConnectionID,
			&r.PromptTokens, &r.CompletionTokens, &r.TotalTokens, &r.Estimated, &r.Status, &lat, &r.Streamed, &r.Endpoint,
			&r.CacheReadTokens, &r.CacheWriteTokens, &costMic); err != nil {
			return nil, fmt.Errorf("recent usage: %w", err)
		}
		r.Time = fromMicros(t)
		r.Latency = time.Duration(lat)
		r.CostMicros, r.CostKnown = costMic.Int64, costMic.Valid
		out = append(out, r)
	}
	return out, rows.Err()
}

// recentQuery is RecentUsage's query and its arguments; indexedBy names
// the index to read (see Dialect.IndexedBy).
func recentQuery(f llmproxy.RecentFilter, indexedBy bool) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.KeyID != "" {
		add("key_id = ?", f.KeyID)
	}
	if f.Model != "" {
		add("model = ?", f.Model)
	}
	if f.Status != 0 {
		add("status = ?", f.Status)
	}
	// An error status is an error: saying so lets the query read the
	// partial indexes of errors.
	if f.Errors || f.Status >= 400 {
		where = append(where, "status >= 400")
	}
	if !f.Before.IsZero() {
		add("time < ?", toMicros(f.Before))
	}
	query := "SELECT " + usageColumns + " FROM usage_records"
	if indexedBy {
		query += " INDEXED BY " + RecentIndex(f)
	}
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY time DESC, id DESC LIMIT ?"
	return query, append(args, f.RecentLimit())
}

// RecentQuery is the query RecentUsage runs on s for f, placeholders
// rewritten for s's dialect, with its arguments: for the backends' tests
// of its plan. It is a function, not a method, so that it is not promoted
// into the backends' public Stores.
func RecentQuery(s *Store, f llmproxy.RecentFilter) (string, []any) {
	query, args := recentQuery(f, s.d.IndexedBy)
	return s.q(query), args
}

// RecentIndex is the ledger's index that serves RecentUsage's filters f
// best, read backwards in time order: of the filters set, the pair of
// key and model, or else the one most likely to be rare, leads it — a
// key before an alias (there are many keys, few aliases), an alias
// before an exact status (200 is most requests), errors with a key or an
// alias before either alone (errors are few, and a key without any must
// not be read whole to say so). SQLite, which plans without statistics,
// is told this index; PostgreSQL's planner picks its own.
func RecentIndex(f llmproxy.RecentFilter) string {
	errs := f.Errors || f.Status >= 400
	switch {
	case f.KeyID != "" && errs:
		return "usage_records_key_errors_time"
	case f.KeyID != "" && f.Model != "":
		return "usage_records_key_model_time"
	case f.KeyID != "":
		return "usage_records_key_time"
	case f.Model != "" && errs:
		return "usage_records_model_errors_time"
	case f.Model != "":
		return "usage_records_model_time"
	case f.Status != 0:
		return "usage_records_status_time"
	case f.Errors:
		return "usage_records_errors_time"
	}
	return "usage_records_time"
}

// RecentFilters are every combination of RecentUsage's filters, for the
// backends' tests of its plan.
func RecentFilters() []llmproxy.RecentFilter {
	var out []llmproxy.RecentFilter
	for mask := range 1 << 5 {
		var f llmproxy.RecentFilter
		if mask&1 != 0 {
			f.KeyID = "key_x"
		}
		if mask&2 != 0 {
			f.Model = "gpt-4o"
		}
		if mask&4 != 0 {
			f.Status = 429
		}
		if mask&8 != 0 {
			f.Errors = true
		}
		if mask&16 != 0 {
			f.Before = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
		}
		out = append(out, f)
	}
	return out
}
