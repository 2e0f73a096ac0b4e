package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
)

// rollupSums are usage_daily's sum columns, in llmproxy.UsageRow's order.
const rollupSums = `requests, prompt_tokens, completion_tokens, total_tokens, estimated_tokens, cache_read_tokens, cache_write_tokens, cost_micros, unknown_cost`

// rollupUpsert adds one group's sums to its day's row, creating it.
var rollupUpsert = func() string {
	var set []string
	for _, c := range strings.Split(rollupSums, ", ") {
		set = append(set, c+" = usage_daily."+c+" + excluded."+c)
	}
	return `INSERT INTO usage_daily (day, key_id, assignment_id, model, connection_id, ` + rollupSums + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (day, key_id, assignment_id, model, connection_id) DO UPDATE SET ` + strings.Join(set, ", ")
}()

// rollupSelect sums ledger rows into usage_daily's rows (the 0006
// migration does the same).
const rollupSelect = `SELECT time - time % 86400000000, key_id, assignment_id, model, connection_id, COUNT(*), SUM(prompt_tokens),
	SUM(completion_tokens), SUM(total_tokens), SUM(CASE WHEN estimated THEN total_tokens ELSE 0 END),
	SUM(cache_read_tokens), SUM(cache_write_tokens), COALESCE(SUM(cost_micros), 0), COUNT(*) - COUNT(cost_micros)
	FROM usage_records
	GROUP BY time - time % 86400000000, key_id, assignment_id, model, connection_id`

// inserted returns the records whose ID is in ids.
func inserted(records []llmproxy.UsageRecord, ids map[string]bool) []llmproxy.UsageRecord {
	if len(ids) == len(records) {
		return records
	}
	out := make([]llmproxy.UsageRecord, 0, len(ids))
	for _, r := range records {
		if ids[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// rollUp adds records to their daily rollups in tx, then to their hourly
// ones (traffic.go). The groups are
// upserted in one order (day, key, assignment, model, connection), so
// concurrent batches lock the rollup rows in one order and wait for each
// other rather than deadlock.
func (s *Store) rollUp(ctx context.Context, tx *sql.Tx, records []llmproxy.UsageRecord) error {
	if len(records) == 0 {
		return nil
	}
	groups := llmproxy.Rollups(records)
	st, err := tx.PrepareContext(ctx, s.q(rollupUpsert))
	if err != nil {
		return fmt.Errorf("roll up: %w", err)
	}
	defer st.Close()
	for _, g := range groups {
		_, err := st.ExecContext(ctx, toMicros(g.Day), g.KeyID, g.AssignmentID, g.Model, g.ConnectionID,
			g.Requests, g.PromptTokens, g.CompletionTokens, g.TotalTokens, g.EstimatedTokens,
			g.CacheReadTokens, g.CacheWriteTokens, g.CostMicros, g.UnknownCost)
		if err != nil {
			return fmt.Errorf("roll up: %w", err)
		}
	}
	return s.rollUpHours(ctx, tx, records)
}

// groupColumns are usage_daily's columns of each report dimension.
var groupColumns = map[llmproxy.UsageGroup]string{
	llmproxy.GroupKey:        "key_id",
	llmproxy.GroupAssignment: "assignment_id",
	llmproxy.GroupModel:      "model",
	llmproxy.GroupConnection: "connection_id",
	llmproxy.GroupDay:        "day",
}

// UsageReport sums the daily rollups that f selects by the dimensions in
// by, with one GROUP BY over usage_daily (never the ledger).
func (s *Store) UsageReport(ctx context.Context, f llmproxy.UsageFilter, by []llmproxy.UsageGroup) ([]llmproxy.UsageRow, error) {
	if err := llmproxy.CheckUsageGroups(by); err != nil {
		return nil, err
	}
	var c conds
	c.dims(f)
	from, to := llmproxy.ReportDays(f)
	if !from.IsZero() {
		c.add("day >= ?", toMicros(from))
	}
	if !to.IsZero() {
		c.add("day < ?", toMicros(to))
	}
	// Every dimension is selected (a constant when not grouped by), so
	// that one Scan fits every report.
	var cols, groupBy []string
	for _, g := range llmproxy.UsageGroups {
		col := groupColumns[g]
		if !containsGroup(by, g) {
			if g == llmproxy.GroupDay {
				cols = append(cols, "0")
			} else {
				cols = append(cols, "''")
			}
			continue
		}
		cols = append(cols, col)
		groupBy = append(groupBy, col)
	}
	var sums []string
	for _, col := range strings.Split(rollupSums, ", ") {
		sums = append(sums, "COALESCE(SUM("+col+"), 0)")
	}
	query := "SELECT " + strings.Join(cols, ", ") + ", " + strings.Join(sums, ", ") + " FROM usage_daily"
	query += c.clause()
	if len(groupBy) > 0 {
		query += " GROUP BY " + strings.Join(groupBy, ", ") + " ORDER BY " + strings.Join(groupBy, ", ")
	} else {
		// One row of sums; none at all when nothing is selected.
		query += " HAVING COUNT(*) > 0"
	}
	rows, err := s.db.QueryContext(ctx, s.q(query), c.args...)
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", err)
	}
	defer rows.Close()
	var out []llmproxy.UsageRow
	for rows.Next() {
		var (
			u   llmproxy.UsageRow
			day int64
		)
		if err := rows.Scan(&u.KeyID, &u.AssignmentID, &u.Model, &u.ConnectionID, &day, &u.Requests, &u.PromptTokens,
			&u.CompletionTokens, &u.TotalTokens, &u.EstimatedTokens, &u.CacheReadTokens, &u.CacheWriteTokens,
			&u.CostMicros, &u.UnknownCost); err != nil {
			return nil, fmt.Errorf("usage report: %w", err)
		}
		if containsGroup(by, llmproxy.GroupDay) {
			u.Day = fromMicros(day)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func containsGroup(by []llmproxy.UsageGroup, g llmproxy.UsageGroup) bool {
	for _, b := range by {
		if b == g {
			return true
		}
	}
	return false
}

// RebuildRollups recomputes usage_daily and usage_hourly from the ledger
// in one transaction: it empties each table and refills it with one
// INSERT … SELECT … GROUP BY, which the database runs in a single pass
// over the ledger. On PostgreSQL the tables are locked first
// (Dialect.RollupLock), so a ledger batch committed while the rebuild
// runs is either in the rebuild's snapshot or adds its rollups after the
// rebuild commits, never both or neither; SQLite's single writer gives
// the same.
func (s *Store) RebuildRollups(ctx context.Context) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if s.d.RollupLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.RollupLock); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM usage_daily`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO usage_daily (day, key_id, assignment_id, model, connection_id, `+rollupSums+`) `+rollupSelect); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM usage_hourly`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, hourlyFill)
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild rollups: %w", err)
	}
	return nil
}
