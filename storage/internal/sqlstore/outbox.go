package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// Budget alert deliveries live in the alert_outbox table (schema version
// 7), keyed by their idempotency ID.

var _ llmproxy.AlertOutbox = (*Store)(nil)

// EnqueueAlert inserts d unless a row with its ID exists (INSERT … ON
// CONFLICT DO NOTHING, atomic across processes).
func (s *Store) EnqueueAlert(ctx context.Context, d *llmproxy.AlertDelivery) (bool, error) {
	if d == nil || d.ID == "" {
		return false, fmt.Errorf("%w: alert delivery without an ID", llmproxy.ErrInvalid)
	}
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO alert_outbox
			(id, event_id, url, payload, created_at, next_at, attempts, last_error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			d.ID, d.EventID, d.URL, nonNil(d.Payload), toMicros(d.CreatedAt), toMicros(d.NextAt), d.Attempts, d.LastError)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("enqueue alert %q: %w", d.ID, err)
	}
	return n == 1, nil
}

// DueAlerts returns the undelivered rows due at now.
func (s *Store) DueAlerts(ctx context.Context, now time.Time, limit int) ([]llmproxy.AlertDelivery, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, event_id, url, payload, created_at, next_at, attempts, last_error
		FROM alert_outbox WHERE delivered_at IS NULL AND next_at <= ? ORDER BY next_at, id LIMIT ?`), toMicros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("read due alerts: %w", err)
	}
	defer rows.Close()
	var out []llmproxy.AlertDelivery
	for rows.Next() {
		var d llmproxy.AlertDelivery
		var created, next int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.URL, &d.Payload, &created, &next, &d.Attempts, &d.LastError); err != nil {
			return nil, fmt.Errorf("read due alerts: %w", err)
		}
		d.CreatedAt, d.NextAt = fromMicros(created), fromMicros(next)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read due alerts: %w", err)
	}
	return out, nil
}

// MarkAlertDelivered sets the row's delivered_at.
func (s *Store) MarkAlertDelivered(ctx context.Context, id string, at time.Time) error {
	return s.updateAlert(ctx, id, `UPDATE alert_outbox SET delivered_at = ? WHERE id = ?`, toMicros(at), id)
}

// MarkAlertAttempt counts a failed attempt and sets the next try.
func (s *Store) MarkAlertAttempt(ctx context.Context, id string, next time.Time, lastError string) error {
	return s.updateAlert(ctx, id, `UPDATE alert_outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?`,
		toMicros(next), lastError, id)
}

func (s *Store) updateAlert(ctx context.Context, id, query string, args ...any) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("update alert %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: alert delivery %q", llmproxy.ErrNotFound, id)
	}
	return nil
}
