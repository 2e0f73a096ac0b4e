package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// Virtual keys and their assignments, with their budgets: one record,
// written in one transaction.

// keyColumns and assignmentColumns are the columns scanKeys reads; the
// three budget columns of each, NULL together, are its Budget (migration
// 0005).
const (
	keyColumns        = `k.id, k.name, k.hash, k.prefix, k.expires_at, k.created_at, k.updated_at, k.budget_usd, k.budget_period, k.budget_tz, k.budget_alerts`
	assignmentColumns = `a.id, a.connection_id, a.model_id, a.tps, a.burst, a.token_limit, a.token_window, a.budget_usd, a.budget_period, a.budget_tz, a.budget_alerts`
)

// budgetArgs are the budget columns' values of b: all NULL for no budget.
func budgetArgs(b *llmproxy.Budget) []any {
	if b == nil {
		return []any{sql.NullFloat64{}, sql.NullString{}, sql.NullString{}, sql.NullString{}}
	}
	return []any{b.USD, b.Period, b.TZ, alertsText(b.Alerts)}
}

// budgetColumns receives the three budget columns of a row.
type budgetColumns struct {
	usd                sql.NullFloat64
	period, tz, alerts sql.NullString
}

// dest is the Scan destinations of the columns.
func (c *budgetColumns) dest() []any { return []any{&c.usd, &c.period, &c.tz, &c.alerts} }

// budget is the scanned Budget: nil when budget_usd is NULL.
func (c *budgetColumns) budget() *llmproxy.Budget {
	if !c.usd.Valid {
		return nil
	}
	return &llmproxy.Budget{USD: c.usd.Float64, Period: c.period.String, TZ: c.tz.String, Alerts: parseAlerts(c.alerts)}
}

// alertsText is budget_alerts (migration 0008): the fractions comma-separated
// in shortest round-trip form, NULL for the default thresholds.
func alertsText(a []float64) sql.NullString {
	if a == nil {
		return sql.NullString{}
	}
	parts := make([]string, len(a))
	for i, f := range a {
		parts[i] = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return sql.NullString{String: strings.Join(parts, ","), Valid: true}
}

// parseAlerts reads budget_alerts back; a part that does not parse (only
// a hand-edited row has one) is skipped rather than failing the key.
func parseAlerts(s sql.NullString) []float64 {
	if !s.Valid {
		return nil
	}
	out := []float64{}
	for _, p := range strings.Split(s.String, ",") {
		if f, err := strconv.ParseFloat(strings.TrimSpace(p), 64); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// keyWriteErr maps the error of a key insert or update.
func (s *Store) keyWriteErr(err error, op string, k *llmproxy.VirtualKey) error {
	switch kind, detail := s.classify(err); {
	case err == nil:
		return nil
	case errors.Is(err, llmproxy.ErrNotFound):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: key %q", llmproxy.ErrNotFound, k.ID)
	case kind == UniqueViolation:
		switch f := uniqueField(detail); f {
		case "name":
			return fmt.Errorf("%w: key name %q", llmproxy.ErrAlreadyExists, k.Name)
		case "secret":
			return fmt.Errorf("%w: a key with this secret", llmproxy.ErrAlreadyExists)
		default:
			return fmt.Errorf("%w: key %q: %s", llmproxy.ErrAlreadyExists, k.Name, f)
		}
	case kind == ForeignKeyViolation:
		return fmt.Errorf("%w: a connection or model assigned to key %q", llmproxy.ErrNotFound, k.Name)
	}
	return fmt.Errorf("%s key %q: %w", op, k.Name, err)
}

// insertAssignments checks the targets of as and inserts them for key.
func (s *Store) insertAssignments(ctx context.Context, tx *sql.Tx, k *llmproxy.VirtualKey, as []llmproxy.Assignment) error {
	for i, a := range as {
		table, id := "connections", a.ConnectionID
		if a.ModelID != "" {
			table, id = "models", a.ModelID
		}
		ok, err := exists(ctx, tx, s, table, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s assigned to key %q", llmproxy.ErrNotFound, a.Target(), k.Name)
		}
		args := append([]any{a.ID, k.ID, i, nullString(a.ConnectionID), nullString(a.ModelID), a.TPS, a.Burst, a.TokenLimit, int64(a.TokenWindow)},
			budgetArgs(a.Budget)...)
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO assignments (id, key_id, position, connection_id, model_id, tps, burst, token_limit, token_window,
			budget_usd, budget_period, budget_tz, budget_alerts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), args...)
		if err != nil {
			return err
		}
	}
	return nil
}

// withAssignmentIDs returns a copy of as in which every assignment has an
// ID.
func withAssignmentIDs(as []llmproxy.Assignment) []llmproxy.Assignment {
	if len(as) == 0 {
		return nil
	}
	out := append([]llmproxy.Assignment(nil), as...)
	for i := range out {
		if out[i].ID == "" {
			out[i].ID = llmproxy.NewID("asg")
		}
	}
	return out
}

// CreateKey stores a new key with its assignments in one transaction.
func (s *Store) CreateKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	probe := *k
	if probe.ID == "" {
		probe.ID = llmproxy.NewID("key")
	}
	as := withAssignmentIDs(k.Assignments)
	t := now()
	err := s.configWrite(ctx, func(tx *sql.Tx) error {
		args := append([]any{probe.ID, k.Name, k.Hash, k.Prefix, nullMicros(k.ExpiresAt), toMicros(t), toMicros(t)}, budgetArgs(k.Budget)...)
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO keys (id, name, hash, prefix, expires_at, created_at, updated_at,
			budget_usd, budget_period, budget_tz, budget_alerts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), args...)
		if err != nil {
			return err
		}
		return s.insertAssignments(ctx, tx, &probe, as)
	})
	if err := s.keyWriteErr(err, "create", &probe); err != nil {
		return err
	}
	k.ID, k.CreatedAt, k.UpdatedAt, k.Assignments = probe.ID, t, t, as
	return nil
}

// UpdateKey replaces the stored key with k.ID and its assignments in one
// transaction.
func (s *Store) UpdateKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	as := withAssignmentIDs(k.Assignments)
	t := now()
	var createdAt int64
	err := s.configWrite(ctx, func(tx *sql.Tx) error {
		args := append([]any{k.Name, k.Hash, k.Prefix, nullMicros(k.ExpiresAt), toMicros(t)}, budgetArgs(k.Budget)...)
		err := tx.QueryRowContext(ctx, s.q(`UPDATE keys SET name = ?, hash = ?, prefix = ?, expires_at = ?, updated_at = ?,
			budget_usd = ?, budget_period = ?, budget_tz = ?, budget_alerts = ? WHERE id = ? RETURNING created_at`), append(args, k.ID)...).Scan(&createdAt)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM assignments WHERE key_id = ?`), k.ID); err != nil {
			return err
		}
		return s.insertAssignments(ctx, tx, k, as)
	})
	if err := s.keyWriteErr(err, "update", k); err != nil {
		return err
	}
	k.CreatedAt, k.UpdatedAt, k.Assignments = fromMicros(createdAt), t, as
	return nil
}

// scanKeys reads rows of keyColumns followed by assignmentColumns, ordered
// by key, into keys with their assignments.
func scanKeys(rows *sql.Rows) ([]llmproxy.VirtualKey, error) {
	defer rows.Close()
	var out []llmproxy.VirtualKey
	for rows.Next() {
		var (
			k                    llmproxy.VirtualKey
			expiresAt            sql.NullInt64
			createdAt, updatedAt int64
			aID, aConn, aModel   sql.NullString
			tps                  sql.NullFloat64
			burst                sql.NullInt64
			limit, window        sql.NullInt64
			kBudget, aBudget     budgetColumns
		)
		dest := []any{&k.ID, &k.Name, &k.Hash, &k.Prefix, &expiresAt, &createdAt, &updatedAt}
		dest = append(dest, kBudget.dest()...)
		dest = append(dest, &aID, &aConn, &aModel, &tps, &burst, &limit, &window)
		if err := rows.Scan(append(dest, aBudget.dest()...)...); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != k.ID {
			if expiresAt.Valid {
				k.ExpiresAt = fromMicros(expiresAt.Int64)
			}
			k.CreatedAt, k.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
			k.Budget = kBudget.budget()
			out = append(out, k)
		}
		if aID.Valid {
			last := &out[len(out)-1]
			last.Assignments = append(last.Assignments, llmproxy.Assignment{
				ID:           aID.String,
				ConnectionID: aConn.String,
				ModelID:      aModel.String,
				TPS:          tps.Float64,
				Burst:        int(burst.Int64),
				TokenLimit:   limit.Int64,
				TokenWindow:  time.Duration(window.Int64),
				Budget:       aBudget.budget(),
			})
		}
	}
	return out, rows.Err()
}

// Key returns the key with the given ID.
func (s *Store) Key(ctx context.Context, id string) (*llmproxy.VirtualKey, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+keyColumns+`, `+assignmentColumns+` FROM keys k LEFT JOIN assignments a ON a.key_id = k.id WHERE k.id = ? ORDER BY a.position`), id)
	if err != nil {
		return nil, fmt.Errorf("read key %q: %w", id, err)
	}
	keys, err := scanKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("read key %q: %w", id, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: key %q", llmproxy.ErrNotFound, id)
	}
	return &keys[0], nil
}

// Keys lists keys in ID order. One statement reads a page of keys and
// their assignments, so each key is seen as one consistent record.
func (s *Store) Keys(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.VirtualKey, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+keyColumns+`, `+assignmentColumns+`
		FROM (SELECT * FROM keys WHERE id > ? ORDER BY id`+limitClause(opts)+`) k
		LEFT JOIN assignments a ON a.key_id = k.id
		ORDER BY k.id, a.position`), opts.After)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys, err := scanKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

// DeleteKey deletes a key and its assignments; its usage records stay.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	err := s.configWrite(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM assignments WHERE key_id = ?`), id); err != nil {
			return err
		}
		return deleteRow(ctx, tx, s, "keys", "key", id)
	})
	return s.deleteErr(err, "key", id)
}
