// Package sqlite is an llmproxy.Storage on a SQLite database file, for a
// single machine: one or several processes sharing the file.
//
// The database runs in WAL mode (readers never wait for the writer) with a
// busy timeout, so several processes may open the same file; foreign keys
// are enforced. The schema is migrated on Open. Connection credentials are
// sealed with Options.Sealer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/mattn/go-sqlite3"

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
}

// Store is an llmproxy.Storage on a SQLite file. It is safe for concurrent
// use, and several Stores (in one process or several) may share a file.
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

// busyTimeoutMS is how long a writer waits for another process's write
// transaction before failing with "database is locked".
const busyTimeoutMS = 10000

// Open opens (creating if needed) the SQLite database at path and applies
// the schema migrations it lacks. path names a file; ":memory:" is not
// supported (use storage/memory).
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return open(ctx, path, opts, 0)
}

// open is Open migrating the schema only up to version upTo (0: all the
// way), for tests of upgrades.
func open(ctx context.Context, path string, opts Options, upTo int) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("%w: sqlite database path %q: want a file name without '?' or '#'", llmproxy.ErrInvalid, path)
	}
	params := url.Values{
		"_journal_mode": {"WAL"},
		"_busy_timeout": {fmt.Sprint(busyTimeoutMS)},
		"_foreign_keys": {"on"},
		"_synchronous":  {"NORMAL"}, // durable across process crashes; WAL makes it safe
		// Write transactions take the write lock when they begin, so a
		// transaction never fails midway on a lock upgrade; waiting for
		// the lock honours the busy timeout.
		"_txlock": {"immediate"},
	}
	db, err := sql.Open("sqlite3", path+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	// A small pool: readers run concurrently in WAL mode; writes are
	// serialized anyway.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	s := &Store{sqlstore.New(db, dialect, opts.Sealer)}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := sqlstore.MigrateTo(ctx, s.core, migrations, upTo); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite database %s: %w", path, err)
	}
	return s, nil
}

var dialect = sqlstore.Dialect{
	Classify:        classify,
	SerializeWrites: true,
	IndexedBy:       true,
}

func classify(err error) (sqlstore.ErrorKind, string) {
	var e sqlite3.Error
	if !errors.As(err, &e) {
		return sqlstore.OtherError, ""
	}
	switch e.ExtendedCode {
	case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
		return sqlstore.UniqueViolation, e.Error()
	case sqlite3.ErrConstraintForeignKey:
		return sqlstore.ForeignKeyViolation, e.Error()
	}
	return sqlstore.OtherError, ""
}
