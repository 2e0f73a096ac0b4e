package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
	"github.com/go-llm-proxy/llmproxy/provider/anthropic"
	"github.com/go-llm-proxy/llmproxy/provider/azure"
	"github.com/go-llm-proxy/llmproxy/provider/bedrock"
	"github.com/go-llm-proxy/llmproxy/provider/openai"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/mongodb"
	"github.com/go-llm-proxy/llmproxy/storage/postgres"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
)

// run runs the command line args (without the program name) and reports
// any error as one line on stderr before returning it. getenv reads the
// environment; ctx is cancelled on SIGINT or SIGTERM.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := newRoot(&env{getenv: getenv, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		// One line, whatever cobra or a store said.
		fmt.Fprintf(stderr, "llm-proxy: %s\n", strings.Join(strings.Fields(err.Error()), " "))
	}
	return err
}

// env is what every command shares: the process environment, the output
// streams, and the database flags.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	dbType, dbDSN  string
}

func (e *env) env(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "llm-proxy",
		Short: "An LLM gateway: virtual keys, limits and usage in front of many providers",
		Long: `llm-proxy is one gateway in front of many LLM providers. Clients get virtual
keys and speak OpenAI's API; the gateway checks each key's rights and limits,
forwards the call to the real provider and records the usage.

Environment:
  DB_TYPE         sqlite (default), postgres or mongodb   (--db-type)
  DB_DSN          database file, URL or URI; default llm-proxy.db  (--db-dsn)
  PORT            port "serve" listens on; default 8080   (--port)
  MASTER_KEY      admin key that may use every model
  ENCRYPTION_KEY  key for provider secrets at rest (64 hex characters, base64 of
                  32 bytes, or a passphrase). Required for postgres and mongodb;
                  for sqlite a key file is created beside the database when unset.
  ENCRYPTION_KEY_PREVIOUS  old keys (comma-separated) that can still decrypt,
                  while rotating (see rotate-encryption-key)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().StringVar(&e.dbType, "db-type", e.env("DB_TYPE", "sqlite"), "database: sqlite, postgres or mongodb (env DB_TYPE)")
	root.PersistentFlags().StringVar(&e.dbDSN, "db-dsn", e.env("DB_DSN", "llm-proxy.db"), "database file (sqlite), URL (postgres) or URI (mongodb) (env DB_DSN)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())
	})
	root.AddCommand(
		newServeCmd(e),
		newConnectionCmd(e),
		newModelCmd(e),
		newVKeyCmd(e),
		newUsageCmd(e),
		newPricesCmd(e),
		newMigrateCmd(e),
		newApplyCmd(e),
		newRotateCmd(e),
	)
	return root
}

// providers maps every provider kind to its constructor.
func providers() map[string]llmproxy.NewProviderFunc {
	return map[string]llmproxy.NewProviderFunc{
		llmproxy.KindOpenAI:     openai.New,
		llmproxy.KindGoogle:     openai.New,
		llmproxy.KindCompatible: openai.New,
		llmproxy.KindAzure:      azure.New,
		llmproxy.KindBedrock:    bedrock.New,
		llmproxy.KindAnthropic:  anthropic.New,
	}
}

// store is a Storage that can report its schema version.
type store interface {
	llmproxy.Storage
	SchemaVersion(ctx context.Context) (int, error)
}

// open opens the configured database, applying its migrations.
func (e *env) open(ctx context.Context) (store, error) {
	kind := strings.ToLower(strings.TrimSpace(e.dbType))
	dsn := strings.TrimSpace(e.dbDSN)
	if dsn == "" {
		return nil, errors.New("DB_DSN (--db-dsn) is empty")
	}
	switch kind {
	case "sqlite", "sqlite3", "postgres", "postgresql", "mongodb", "mongo":
	default:
		return nil, fmt.Errorf("unknown DB_TYPE %q: use sqlite, postgres or mongodb", e.dbType)
	}
	sealer, err := e.sealer(kind, dsn)
	if err != nil {
		return nil, err
	}
	var s store
	switch kind {
	case "sqlite", "sqlite3":
		s, err = sqlite.Open(ctx, dsn, sqlite.Options{Sealer: sealer})
	case "postgres", "postgresql":
		s, err = postgres.Open(ctx, dsn, postgres.Options{Sealer: sealer})
	case "mongodb", "mongo":
		s, err = mongodb.Open(ctx, dsn, mongodb.Options{Sealer: sealer})
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", kind, err)
	}
	return s, nil
}

// sealer returns the Sealer for provider secrets: from ENCRYPTION_KEY, or
// for SQLite from a key file beside the database.
func (e *env) sealer(kind, dsn string) (secret.Sealer, error) {
	var key []byte
	var err error
	if v := e.getenv("ENCRYPTION_KEY"); v != "" {
		key, err = secret.ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("ENCRYPTION_KEY: %w", err)
		}
	} else if kind == "sqlite" || kind == "sqlite3" {
		path := sqliteKeyFile(dsn)
		if path == "" {
			return nil, errors.New("ENCRYPTION_KEY is not set and an in-memory SQLite database has no place for a key file; set ENCRYPTION_KEY")
		}
		key, err = secret.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("encryption key file: %w", err)
		}
	} else {
		return nil, fmt.Errorf("ENCRYPTION_KEY is not set: DB_TYPE=%s needs it to encrypt provider keys (e.g. ENCRYPTION_KEY=$(openssl rand -hex 32))", kind)
	}
	return e.withPreviousKeys(key)
}

// sqliteKeyFile is where the key file of a SQLite database lives: the
// database path plus ".key". DSNs may be "file:PATH?opts".
func sqliteKeyFile(dsn string) string {
	p := strings.TrimPrefix(dsn, "file:")
	p, _, _ = strings.Cut(p, "?")
	if p == "" || p == ":memory:" {
		return ""
	}
	return p + ".key"
}

// admin opens the database and runs f with an Admin on it.
func (e *env) admin(ctx context.Context, f func(*admin.Service) error) error {
	s, err := e.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	p := providers()
	return f(&admin.Service{Storage: s, Kinds: slices.Sorted(maps.Keys(p)), Providers: p})
}

// exactArgs is cobra.ExactArgs with a message naming what is missing.
func exactArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s takes one argument: %s", cmd.CommandPath(), what)
		}
		return nil
	}
}
