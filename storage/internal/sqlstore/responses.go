package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// The Responses API's stored responses live in the responses table (schema
// version 3): one row per response id, items and response as bytes, times
// as unix microseconds, expires_at NULL for a response that never expires.
//
// A response is expired once its ExpiresAt is not after the store's clock,
// as a virtual key is; GetResponse and DeleteResponse then answer
// ErrNotFound and leave the row to DeleteExpiredResponses. No error
// message quotes a response's content.

var _ llmproxy.ResponseStore = (*Store)(nil)

// nonNil returns b, or an empty slice for nil: the columns are NOT NULL,
// and a nil []byte is bound as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// PutResponse stores r, replacing a response with the same ID, in one
// statement (INSERT … ON CONFLICT DO UPDATE), so a concurrent reader sees
// either the old response or the new one, whole.
func (s *Store) PutResponse(ctx context.Context, r *llmproxy.StoredResponse) error {
	if r == nil || r.ID == "" {
		return fmt.Errorf("%w: stored response without an ID", llmproxy.ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO responses
			(id, key_id, connection_id, model, native, previous_id, items, response, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				key_id = excluded.key_id, connection_id = excluded.connection_id, model = excluded.model,
				native = excluded.native, previous_id = excluded.previous_id, items = excluded.items,
				response = excluded.response, created_at = excluded.created_at, expires_at = excluded.expires_at`),
			r.ID, r.KeyID, r.ConnectionID, r.Model, r.Native, r.PreviousID, nonNil(r.Items), nonNil(r.Response),
			toMicros(r.CreatedAt), nullMicros(r.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("store response %q: %w", r.ID, err)
	}
	return nil
}

// GetResponse returns the response with id unless it has expired.
func (s *Store) GetResponse(ctx context.Context, id string) (*llmproxy.StoredResponse, error) {
	r := llmproxy.StoredResponse{ID: id}
	var created int64
	var expires sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT key_id, connection_id, model, native, previous_id, items, response, created_at, expires_at
		FROM responses WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)`), id, toMicros(now())).
		Scan(&r.KeyID, &r.ConnectionID, &r.Model, &r.Native, &r.PreviousID, &r.Items, &r.Response, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: response %q", llmproxy.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read response %q: %w", id, err)
	}
	r.CreatedAt = fromMicros(created)
	if expires.Valid {
		r.ExpiresAt = fromMicros(expires.Int64)
	}
	return &r, nil
}

// DeleteResponse deletes the response with id unless it has expired (then
// it is already gone as far as the API is concerned, and the sweep
// removes it).
func (s *Store) DeleteResponse(ctx context.Context, id string) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM responses WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)`),
			id, toMicros(now()))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete response %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: response %q", llmproxy.ErrNotFound, id)
	}
	return nil
}

// sweepChunk is the most expired responses one transaction of the sweep
// deletes: a sweep after a long pause may find very many, megabytes each,
// and SQLite's single writer (the usage ledger's too) should not wait for
// all of them at once.
const sweepChunk = 500

// DeleteExpiredResponses deletes the responses whose ExpiresAt is before
// now, through the index on expires_at, sweepChunk rows a transaction.
func (s *Store) DeleteExpiredResponses(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q(`DELETE FROM responses WHERE id IN
				(SELECT id FROM responses WHERE expires_at < ? LIMIT ?)`), toMicros(now), sweepChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("delete expired responses: %w", err)
		}
		if n < sweepChunk {
			return total, nil
		}
	}
}
