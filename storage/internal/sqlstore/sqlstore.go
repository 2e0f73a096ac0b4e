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
	"math/bits"
	"slices"
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

// ---- keys ----

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

// ---- usage ----

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
	if f.AssignmentID != "" {
		add("assignment_id = ?", f.AssignmentID)
	}
	if f.Model != "" {
		add("model = ?", f.Model)
	}
	if f.ConnectionID != "" {
		add("connection_id = ?", f.ConnectionID)
	}
	if !f.Since.IsZero() {
		add("time >= ?", toMicros(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", toMicros(f.Until))
	}
	query := `SELECT key_id, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
		SUM(CASE WHEN estimated THEN total_tokens ELSE 0 END), SUM(cache_read_tokens), SUM(cache_write_tokens),
		COALESCE(SUM(cost_micros), 0), COUNT(*) - COUNT(cost_micros)
		FROM usage_records`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " GROUP BY key_id, model ORDER BY key_id, model"
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
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
