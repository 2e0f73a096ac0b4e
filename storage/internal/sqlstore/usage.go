package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
)

// The usage ledger: batched inserts that skip stored IDs, and sums.

const usageColumns = `id, time, request_id, key_id, assignment_id, model, remote_model, connection_id, prompt_tokens, completion_tokens, total_tokens, estimated, status, latency, streamed, endpoint, cache_read_tokens, cache_write_tokens, cost_micros`

// usageColumnCount is the number of usageColumns: the parameters of one
// record in the INSERT.
var usageColumnCount = strings.Count(usageColumns, ",") + 1

// usageRowPlaceholders is one record's "(?, ?, …)" in the INSERT.
var usageRowPlaceholders = "(" + strings.Repeat("?, ", usageColumnCount-1) + "?)"

// usageChunk is the most records in one INSERT: 19 columns each, 9,728
// parameters, well under SQLite's (32,766) and PostgreSQL's (65,535)
// limits on bound parameters.
const usageChunk = 512

// usageInsert returns the INSERT of n records (n a power of two up to
// usageChunk), prepared. Batches are cut into chunks of those sizes, so
// that there are only ten such statements, each prepared once per
// connection that runs it: preparing a new statement of up to 8,000
// parameters for every batch was a third of the ledger's cost in
// profiles of the gateway under load (SQLite), and PostgreSQL plans
// each statement it is sent unprepared.
func (s *Store) usageInsert(ctx context.Context, n int) (*sql.Stmt, error) {
	i := bits.Len(uint(n)) - 1
	s.insertMu.Lock()
	defer s.insertMu.Unlock()
	if st := s.inserts[i]; st != nil {
		return st, nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO usage_records (` + usageColumns + `) VALUES `)
	for j := range n {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString(usageRowPlaceholders)
	}
	b.WriteString(` ON CONFLICT (id) DO NOTHING RETURNING id`)
	st, err := s.db.PrepareContext(ctx, s.q(b.String()))
	if err != nil {
		return nil, err
	}
	s.inserts[i] = st
	return st, nil
}

// AppendUsage inserts records, skipping IDs already stored, with one
// multi-row INSERT per chunk of records, and adds the inserted ones to
// their daily rollups in the same transaction (rollups.go).
func (s *Store) AppendUsage(ctx context.Context, records []llmproxy.UsageRecord) error {
	if len(records) == 0 {
		return nil
	}
	for _, r := range records {
		if r.ID == "" {
			return fmt.Errorf("%w: usage record without an ID", llmproxy.ErrInvalid)
		}
	}
	// Inserting in ID order makes concurrent batches that share records
	// (a retry racing its original) lock rows in one order: they wait
	// for each other instead of deadlocking.
	records = slices.Clone(records)
	slices.SortFunc(records, func(a, b llmproxy.UsageRecord) int { return strings.Compare(a.ID, b.ID) })
	// The statements are had before the transaction begins: preparing
	// one may need a connection of its own, and waiting for a connection
	// while holding one deadlocks a full pool.
	type chunk struct {
		n    int
		stmt *sql.Stmt
	}
	var chunks []chunk
	for rest := len(records); rest > 0; {
		n := usageChunk
		for n > rest {
			n /= 2
		}
		st, err := s.usageInsert(ctx, n)
		if err != nil {
			return fmt.Errorf("append usage: %w", err)
		}
		chunks = append(chunks, chunk{n, st})
		rest -= n
	}
	// ids collects the IDs the INSERTs report as inserted (RETURNING
	// skips the conflicting ones): only those are rolled up, so a retried
	// batch adds nothing to the rollups.
	ids := map[string]bool{}
	collectIDs := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids[id] = true
		}
		return rows.Err()
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		clear(ids) // a retried transaction starts over
		args := make([]any, 0, min(len(records), usageChunk)*usageColumnCount)
		rest := records
		for _, c := range chunks {
			args = args[:0]
			for _, r := range rest[:c.n] {
				args = append(args, r.ID, toMicros(r.Time), r.RequestID, r.KeyID, r.AssignmentID, r.Model, r.RemoteModel, r.ConnectionID,
					r.PromptTokens, r.CompletionTokens, r.TotalTokens, r.Estimated, r.Status, int64(r.Latency), r.Streamed, r.Endpoint,
					r.CacheReadTokens, r.CacheWriteTokens, sql.NullInt64{Int64: r.CostMicros, Valid: r.CostKnown})
			}
			rest = rest[c.n:]
			if err := collectIDs(tx.StmtContext(ctx, c.stmt).QueryContext(ctx, args...)); err != nil {
				return err
			}
		}
		return s.rollUp(ctx, tx, inserted(records, ids))
	})
	if err != nil {
		return fmt.Errorf("append usage: %w", err)
	}
	return nil
}

// SumUsage sums the selected records by key and model alias.
func (s *Store) SumUsage(ctx context.Context, f llmproxy.UsageFilter) ([]llmproxy.UsageSummary, error) {
	var c conds
	c.dims(f)
	if !f.Since.IsZero() {
		c.add("time >= ?", toMicros(f.Since))
	}
	if !f.Until.IsZero() {
		c.add("time < ?", toMicros(f.Until))
	}
	query := `SELECT key_id, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
		SUM(CASE WHEN estimated THEN total_tokens ELSE 0 END), SUM(cache_read_tokens), SUM(cache_write_tokens),
		COALESCE(SUM(cost_micros), 0), COUNT(*) - COUNT(cost_micros)
		FROM usage_records`
	query += c.clause()
	query += " GROUP BY key_id, model ORDER BY key_id, model"
	rows, err := s.db.QueryContext(ctx, s.q(query), c.args...)
	if err != nil {
		return nil, fmt.Errorf("sum usage: %w", err)
	}
	defer rows.Close()
	var out []llmproxy.UsageSummary
	for rows.Next() {
		var u llmproxy.UsageSummary
		if err := rows.Scan(&u.KeyID, &u.Model, &u.Requests, &u.PromptTokens, &u.CompletionTokens, &u.TotalTokens, &u.EstimatedTokens,
			&u.CacheReadTokens, &u.CacheWriteTokens, &u.CostMicros, &u.UnknownCost); err != nil {
			return nil, fmt.Errorf("sum usage: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
