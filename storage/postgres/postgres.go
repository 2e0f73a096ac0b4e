// Package postgres is an llmproxy.Storage on PostgreSQL, for production:
// several gateway replicas share one database.
//
// The schema is migrated on Open, in one transaction holding an advisory
// lock, so replicas starting together apply each migration once;
// migrations only ever add to the schema. Configuration writes bump a
// one-row version counter in the same transaction (which also serializes
// them); usage is an append-only ledger written with multi-row INSERT …
// ON CONFLICT DO NOTHING. Connection credentials are sealed with
// Options.Sealer.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/lib/pq"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options configures a Store. The zero value works for a store whose
// connections carry no credentials.
type Options struct {
	// Sealer encrypts connection credentials at rest. Without one, writing
	// or reading a connection that has credentials fails.
	Sealer secret.Sealer
	// MaxConns caps the connections the Store opens; zero means 16.
	MaxConns int
}

// Store is an llmproxy.Storage on PostgreSQL, safe for concurrent use by
// goroutines and by several processes on one database.
//
// Store implements every llmproxy.Storage method and llmproxy.ResponseStore
// (promoted from the SQL core it shares with the other SQL backend).
type Store struct {
	*core
}

type core = sqlstore.Store

// SchemaVersion returns the highest schema migration applied to the
// database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) { return s.core.SchemaVersion(ctx) }

// DB returns the underlying database handle, e.g. for health checks.
func (s *Store) DB() *sql.DB { return s.core.DB() }

var (
	_ llmproxy.Storage       = (*Store)(nil)
	_ llmproxy.ResponseStore = (*Store)(nil)
)

// migrationLockID is the advisory lock key held while migrating:
// "llmproxy" in ASCII.
const migrationLockID = 0x6c6c6d70726f7879

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value connection string, as lib/pq accepts) and applies the schema
// migrations it lacks.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	return open(ctx, dsn, opts, 0)
}

// open is Open migrating the schema only up to version upTo (0: all the
// way), for tests of upgrades.
func open(ctx context.Context, dsn string, opts Options, upTo int) (*Store, error) {
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		// The parser's message may quote the DSN, password included.
		return nil, fmt.Errorf("%w: the postgres DSN is neither a postgres:// URL nor a key=value string", llmproxy.ErrInvalid)
	}
	db := sql.OpenDB(connector)
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = 16
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	s := &Store{sqlstore.New(db, dialect, opts.Sealer)}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := sqlstore.MigrateTo(ctx, s.core, migrations, upTo); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

var dialect = sqlstore.Dialect{
	Numbered:      true,
	Classify:      classify,
	MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockID),
	// Both rollup tables, in the order the ledger's writers upsert them.
	RollupLock: "LOCK TABLE usage_daily, usage_hourly IN EXCLUSIVE MODE",
}

func classify(err error) (sqlstore.ErrorKind, string) {
	var e *pq.Error
	if !errors.As(err, &e) {
		return sqlstore.OtherError, ""
	}
	switch e.Code {
	case "23505": // unique_violation
		return sqlstore.UniqueViolation, e.Constraint
	case "23503": // foreign_key_violation
		return sqlstore.ForeignKeyViolation, e.Constraint
	}
	return sqlstore.OtherError, ""
}
