// Package sqlstore is the llmproxy.Storage logic shared by the SQL
// backends (SQLite and PostgreSQL). What differs between them — placeholder
// style, how the driver reports constraint violations, how concurrent
// writers and migrators are kept apart, and the schema itself — is a
// Dialect and a set of migration files.
//
// Layout: one table per record kind, an assignments table whose rows
// belong to a key (written with the key in one transaction, with foreign
// keys to the connections and models they name), an append-only
// usage_records ledger, a one-row config_version counter bumped by every
// configuration write in the same transaction, a usage_daily table of
// daily rollups of the ledger (rollups.go), and a responses table for
// the Responses API's stored responses (responses.go). Times are stored as
// UTC unix microseconds, durations as nanoseconds.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"github.com/go-llm-proxy/llmproxy/secret"
)

// ErrorKind classifies a driver error.
type ErrorKind int

// Kinds of driver errors the store maps to llmproxy's sentinels.
const (
	OtherError ErrorKind = iota
	UniqueViolation
	ForeignKeyViolation
)

// Dialect is what differs between SQL databases.
type Dialect struct {
	// Numbered makes placeholders $1, $2… instead of ?.
	Numbered bool
	// Classify reports the kind of a driver error and, for a unique
	// violation, the constraint or columns the database named (used only
	// to word the error message).
	Classify func(err error) (ErrorKind, string)
	// SerializeWrites runs this process's write transactions one at a
	// time. SQLite allows one writer per database; waiting on a mutex is
	// cheaper than spinning in its busy handler.
	SerializeWrites bool
	// MigrationLock, when set, is executed first in the migration
	// transaction to keep concurrent migrators apart.
	MigrationLock string
	// RollupLock, when set, is executed first in RebuildRollups'
	// transaction to hold off the ledger writers' rollup upserts.
	RollupLock string
	// IndexedBy makes RecentUsage name the index it reads (SQLite's
	// INDEXED BY): a planner without statistics cannot tell which of
	// two filtered columns is the rarer (see RecentIndex).
	IndexedBy bool
}

// Store implements llmproxy.Storage on a *sql.DB.
type Store struct {
	db      *sql.DB
	d       Dialect
	sealer  secret.Sealer
	writeMu sync.Mutex

	insertMu sync.Mutex
	inserts  [10]*sql.Stmt // [i] inserts 1<<i usage records; nil until used
}

// New returns a Store on db, which must already hold the schema (see
// Migrate). sealer seals connection credentials.
func New(db *sql.DB, d Dialect, sealer secret.Sealer) *Store {
	return &Store{db: db, d: d, sealer: sealer}
}

// DB returns the underlying database.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error {
	s.insertMu.Lock()
	for i, st := range s.inserts {
		if st != nil {
			st.Close()
			s.inserts[i] = nil
		}
	}
	s.insertMu.Unlock()
	return s.db.Close()
}

// q rewrites ? placeholders for the dialect. Queries never contain a
// literal question mark.
func (s *Store) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// now is the store's clock at the precision it stores.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(n int64) time.Time { return time.UnixMicro(n).UTC() }

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// write runs fn in a transaction.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.d.SerializeWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// configWrite runs fn in a transaction that first bumps the configuration
// version. Bumping first takes the counter row's lock, so configuration
// writes are serialized across processes and the existence checks fn makes
// cannot race another writer; the foreign keys remain as a backstop.
func (s *Store) configWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE config_version SET version = version + 1 WHERE id = 1`); err != nil {
			return fmt.Errorf("bump config version: %w", err)
		}
		return fn(tx)
	})
}

// ConfigVersion returns the configuration counter.
func (s *Store) ConfigVersion(ctx context.Context) (string, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM config_version WHERE id = 1`).Scan(&v); err != nil {
		return "", fmt.Errorf("read config version: %w", err)
	}
	return strconv.FormatInt(v, 10), nil
}

// classify maps a driver error to its kind.
func (s *Store) classify(err error) (ErrorKind, string) {
	if s.d.Classify == nil || err == nil {
		return OtherError, ""
	}
	return s.d.Classify(err)
}

// uniqueField names the unique column a violation detail refers to.
func uniqueField(detail string) string {
	d := strings.ToLower(detail)
	switch {
	case strings.Contains(d, "assignments"):
		return "assignment ID"
	case strings.Contains(d, "hash"):
		return "secret"
	case strings.Contains(d, "name"):
		return "name"
	}
	return "ID"
}

// exists reports whether table has a row with id.
func exists(ctx context.Context, tx *sql.Tx, s *Store, table, id string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM `+table+` WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func count(ctx context.Context, tx *sql.Tx, s *Store, query string, args ...any) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, s.q(query), args...).Scan(&n)
	return n, err
}

func limitClause(opts llmproxy.ListOptions) string {
	if opts.Limit <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(opts.Limit)
}

// ---- connections ----

const connectionColumns = `id, name, provider, endpoint, credentials, settings, created_at, updated_at`

func encodeSettings(m map[string]string) (sql.NullString, error) {
	if len(m) == 0 {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return sql.NullString{}, err
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// CreateConnection stores a new connection.
func (s *Store) CreateConnection(ctx context.Context, c *llmproxy.Connection) error {
	if err := c.Validate(); err != nil {
		return err
	}
	sealed, err := secret.SealCredentials(s.sealer, c.Credentials)
	if err != nil {
		return fmt.Errorf("connection %q: %w", c.Name, err)
	}
	settings, err := encodeSettings(c.Settings)
	if err != nil {
		return fmt.Errorf("connection %q: %w", c.Name, err)
	}
	id := c.ID
	if id == "" {
		id = llmproxy.NewID("conn")
	}
	t := now()
	err = s.configWrite(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO connections (`+connectionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			id, c.Name, c.Provider, c.Endpoint, sealed, settings, toMicros(t), toMicros(t))
		return err
	})
	if err != nil {
		if kind, detail := s.classify(err); kind == UniqueViolation {
			return fmt.Errorf("%w: connection %s %q", llmproxy.ErrAlreadyExists, uniqueField(detail), pick(uniqueField(detail) == "name", c.Name, id))
		}
		return fmt.Errorf("create connection %q: %w", c.Name, err)
	}
	c.ID, c.CreatedAt, c.UpdatedAt = id, t, t
	return nil
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

type scanner interface{ Scan(dest ...any) error }

func (s *Store) scanConnection(r scanner) (llmproxy.Connection, error) {
	var (
		c                    llmproxy.Connection
		sealed               []byte
		settings             sql.NullString
		createdAt, updatedAt int64
	)
	if err := r.Scan(&c.ID, &c.Name, &c.Provider, &c.Endpoint, &sealed, &settings, &createdAt, &updatedAt); err != nil {
		return c, err
	}
	creds, err := secret.OpenCredentials(s.sealer, sealed)
	if err != nil {
		return c, fmt.Errorf("connection %q credentials: %w", c.Name, err)
	}
	c.Credentials = creds
	if settings.Valid && settings.String != "" {
		if err := json.Unmarshal([]byte(settings.String), &c.Settings); err != nil {
			return c, fmt.Errorf("connection %q settings: %w", c.Name, err)
		}
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return c, nil
}

// Connection returns the connection with the given ID.
func (s *Store) Connection(ctx context.Context, id string) (*llmproxy.Connection, error) {
	c, err := s.scanConnection(s.db.QueryRowContext(ctx, s.q(`SELECT `+connectionColumns+` FROM connections WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: connection %q", llmproxy.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Connections lists connections in ID order.
func (s *Store) Connections(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Connection, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+connectionColumns+` FROM connections WHERE id > ? ORDER BY id`+limitClause(opts)), opts.After)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	defer rows.Close()
	var out []llmproxy.Connection
	for rows.Next() {
		c, err := s.scanConnection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateConnection replaces the stored connection with c.ID.
func (s *Store) UpdateConnection(ctx context.Context, c *llmproxy.Connection) error {
	if err := c.Validate(); err != nil {
		return err
	}
	sealed, err := secret.SealCredentials(s.sealer, c.Credentials)
	if err != nil {
		return fmt.Errorf("connection %q: %w", c.Name, err)
	}
	settings, err := encodeSettings(c.Settings)
	if err != nil {
		return fmt.Errorf("connection %q: %w", c.Name, err)
	}
	t := now()
	var createdAt int64
	err = s.configWrite(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.q(`UPDATE connections SET name = ?, provider = ?, endpoint = ?, credentials = ?, settings = ?, updated_at = ? WHERE id = ? RETURNING created_at`),
			c.Name, c.Provider, c.Endpoint, sealed, settings, toMicros(t), c.ID).Scan(&createdAt)
	})
	switch kind, _ := s.classify(err); {
	case err == nil:
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: connection %q", llmproxy.ErrNotFound, c.ID)
	case kind == UniqueViolation:
		return fmt.Errorf("%w: connection name %q", llmproxy.ErrAlreadyExists, c.Name)
	default:
		return fmt.Errorf("update connection %q: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(createdAt), t
	return nil
}

// DeleteConnection deletes a connection no model or assignment refers to.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	err := s.configWrite(ctx, func(tx *sql.Tx) error {
		models, err := count(ctx, tx, s, `SELECT COUNT(*) FROM models WHERE connection_id = ?`, id)
		if err != nil {
			return err
		}
		keys, err := count(ctx, tx, s, `SELECT COUNT(DISTINCT key_id) FROM assignments WHERE connection_id = ?`, id)
		if err != nil {
			return err
		}
		if models > 0 || keys > 0 {
			return fmt.Errorf("%w: connection %q has %d models and is assigned to %d keys", llmproxy.ErrInUse, id, models, keys)
		}
		return deleteRow(ctx, tx, s, "connections", "connection", id)
	})
	return s.deleteErr(err, "connection", id)
}

func deleteRow(ctx context.Context, tx *sql.Tx, s *Store, table, what, id string) error {
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE id = ?`), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("%w: %s %q", llmproxy.ErrNotFound, what, id)
	}
	return nil
}

func (s *Store) deleteErr(err error, what, id string) error {
	switch kind, _ := s.classify(err); {
	case err == nil:
		return nil
	case errors.Is(err, llmproxy.ErrInUse), errors.Is(err, llmproxy.ErrNotFound):
		return err
	case kind == ForeignKeyViolation:
		return fmt.Errorf("%w: %s %q is referred to", llmproxy.ErrInUse, what, id)
	}
	return fmt.Errorf("delete %s %q: %w", what, id, err)
}

// ---- models ----

// modelColumns are the models table's columns; the five prices, NULL
// together, are Model.Price (migration 0004).
const modelColumns = `id, name, remote, connection_id, weight, created_at, updated_at,
	input_price, output_price, cached_input_price, cache_write_price, cache_write_1h_price`

func scanModel(r scanner) (llmproxy.Model, error) {
	var (
		m                    llmproxy.Model
		createdAt, updatedAt int64
		price                [5]sql.NullFloat64
	)
	err := r.Scan(&m.ID, &m.Name, &m.Remote, &m.ConnectionID, &m.Weight, &createdAt, &updatedAt,
		&price[0], &price[1], &price[2], &price[3], &price[4])
	m.CreatedAt, m.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	if price[0].Valid {
		m.Price = &pricing.Price{Input: price[0].Float64, Output: price[1].Float64, CachedInput: price[2].Float64,
			CacheWrite: price[3].Float64, CacheWrite1h: price[4].Float64}
	}
	return m, err
}

// priceArgs are the price columns' values of p: all NULL for no price.
func priceArgs(p *pricing.Price) []any {
	if p == nil {
		var null sql.NullFloat64
		return []any{null, null, null, null, null}
	}
	return []any{p.Input, p.Output, p.CachedInput, p.CacheWrite, p.CacheWrite1h}
}

func (s *Store) checkConnection(ctx context.Context, tx *sql.Tx, id, of string) error {
	ok, err := exists(ctx, tx, s, "connections", id)
	if err == nil && !ok {
		err = fmt.Errorf("%w: connection %q of %s", llmproxy.ErrNotFound, id, of)
	}
	return err
}

// modelWriteErr maps the error of a model insert or update.
func (s *Store) modelWriteErr(err error, op string, m *llmproxy.Model) error {
	switch kind, detail := s.classify(err); {
	case err == nil:
		return nil
	case errors.Is(err, llmproxy.ErrNotFound):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: model %q", llmproxy.ErrNotFound, m.ID)
	case kind == UniqueViolation && uniqueField(detail) == "name":
		return fmt.Errorf("%w: model %q on connection %q", llmproxy.ErrAlreadyExists, m.Name, m.ConnectionID)
	case kind == UniqueViolation:
		return fmt.Errorf("%w: model ID %q", llmproxy.ErrAlreadyExists, m.ID)
	case kind == ForeignKeyViolation:
		return fmt.Errorf("%w: connection %q of model %q", llmproxy.ErrNotFound, m.ConnectionID, m.Name)
	}
	return fmt.Errorf("%s model %q: %w", op, m.Name, err)
}

// CreateModel stores a new model on an existing connection.
func (s *Store) CreateModel(ctx context.Context, m *llmproxy.Model) error {
	if err := m.Validate(); err != nil {
		return err
	}
	id := m.ID
	if id == "" {
		id = llmproxy.NewID("model")
	}
	t := now()
	err := s.configWrite(ctx, func(tx *sql.Tx) error {
		if err := s.checkConnection(ctx, tx, m.ConnectionID, fmt.Sprintf("model %q", m.Name)); err != nil {
			return err
		}
		args := append([]any{id, m.Name, m.Remote, m.ConnectionID, m.Weight, toMicros(t), toMicros(t)}, priceArgs(m.Price)...)
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO models (`+modelColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), args...)
		return err
	})
	probe := *m
	probe.ID = id
	if err := s.modelWriteErr(err, "create", &probe); err != nil {
		return err
	}
	m.ID, m.CreatedAt, m.UpdatedAt = id, t, t
	return nil
}

// Model returns the model with the given ID.
func (s *Store) Model(ctx context.Context, id string) (*llmproxy.Model, error) {
	m, err := scanModel(s.db.QueryRowContext(ctx, s.q(`SELECT `+modelColumns+` FROM models WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: model %q", llmproxy.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// Models lists models in ID order.
func (s *Store) Models(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Model, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+modelColumns+` FROM models WHERE id > ? ORDER BY id`+limitClause(opts)), opts.After)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	defer rows.Close()
	var out []llmproxy.Model
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// UpdateModel replaces the stored model with m.ID.
func (s *Store) UpdateModel(ctx context.Context, m *llmproxy.Model) error {
	if err := m.Validate(); err != nil {
		return err
	}
	t := now()
	var createdAt int64
	err := s.configWrite(ctx, func(tx *sql.Tx) error {
		if err := s.checkConnection(ctx, tx, m.ConnectionID, fmt.Sprintf("model %q", m.Name)); err != nil {
			return err
		}
		args := append([]any{m.Name, m.Remote, m.ConnectionID, m.Weight, toMicros(t)}, priceArgs(m.Price)...)
		return tx.QueryRowContext(ctx, s.q(`UPDATE models SET name = ?, remote = ?, connection_id = ?, weight = ?, updated_at = ?,
			input_price = ?, output_price = ?, cached_input_price = ?, cache_write_price = ?, cache_write_1h_price = ?
			WHERE id = ? RETURNING created_at`), append(args, m.ID)...).Scan(&createdAt)
	})
	if err := s.modelWriteErr(err, "update", m); err != nil {
		return err
	}
	m.CreatedAt, m.UpdatedAt = fromMicros(createdAt), t
	return nil
}

// DeleteModel deletes a model no assignment refers to.
func (s *Store) DeleteModel(ctx context.Context, id string) error {
	err := s.configWrite(ctx, func(tx *sql.Tx) error {
		keys, err := count(ctx, tx, s, `SELECT COUNT(DISTINCT key_id) FROM assignments WHERE model_id = ?`, id)
		if err != nil {
			return err
		}
		if keys > 0 {
			return fmt.Errorf("%w: model %q is assigned to %d keys", llmproxy.ErrInUse, id, keys)
		}
		return deleteRow(ctx, tx, s, "models", "model", id)
	})
	return s.deleteErr(err, "model", id)
}
