package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/postgres"
	"github.com/go-llm-proxy/llmproxy/storage/storagetest"
)

// adminDSN is the server the tests create their databases on.
func adminDSN() string {
	if dsn := os.Getenv("LLMPROXY_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	adminOnce sync.Once
	admin     *sql.DB
	adminErr  error
)

// newDatabase creates an empty database with a random name, dropped when
// the test ends, and returns its DSN. Without a server the test is
// skipped, or fails under CI=true.
func newDatabase(t testing.TB) string {
	t.Helper()
	adminOnce.Do(func() {
		admin, adminErr = sql.Open("postgres", adminDSN())
		if adminErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			adminErr = admin.PingContext(ctx)
		}
	})
	if adminErr != nil {
		msg := "PostgreSQL is not reachable at " + redact(adminDSN()) + " (set LLMPROXY_TEST_POSTGRES to an admin DSN): " + adminErr.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "llmproxy_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return withDatabase(t, adminDSN(), name)
}

// withDatabase returns dsn naming database name instead.
func withDatabase(t testing.TB, dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("LLMPROXY_TEST_POSTGRES: %v", err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	return "the configured server"
}

func testSealer(t testing.TB) secret.Sealer {
	t.Helper()
	s, err := secret.NewAESGCM(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{Sealer: testSealer(t), MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fast turns off waiting for the WAL flush at commit in the suite's
// sessions: a crash loses nothing a test needs, and the suite makes
// hundreds of small commits. The benchmarks keep the default.
func fast(dsn string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "synchronous_commit=off"
	}
	return dsn + " synchronous_commit=off"
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) llmproxy.Storage { return open(t, fast(newDatabase(t))) })
}

func TestShared(t *testing.T) {
	storagetest.RunShared(t, func(t *testing.T) (a, b llmproxy.Storage) {
		dsn := fast(newDatabase(t))
		return open(t, dsn), open(t, dsn)
	})
}

// TestConcurrentMigrations starts several replicas on one new database at
// once: every Open succeeds and each migration is applied once.
func TestConcurrentMigrations(t *testing.T) {
	dsn := newDatabase(t)
	const n = 5
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(t.Context(), dsn, postgres.Options{Sealer: testSealer(t), MaxConns: 2})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	for i, s := range stores {
		v, err := s.SchemaVersion(t.Context())
		if err != nil || v < 1 {
			t.Errorf("replica %d: SchemaVersion = %d, %v", i, v, err)
		}
	}
	var applied int
	if err := stores[0].DB().QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE version = 1`).Scan(&applied); err != nil || applied != 1 {
		t.Errorf("migration 1 recorded %d times (%v), want once", applied, err)
	}
	// Reopening an up-to-date database changes nothing.
	s := open(t, dsn)
	defer s.Close()
	if v, err := s.SchemaVersion(t.Context()); err != nil || v < 1 {
		t.Errorf("SchemaVersion after reopening = %d, %v", v, err)
	}
}

// createLegacyKey writes k as the builds before budgets (schema version
// 4 and earlier) did: without the budget columns; its assignments are
// connection-wide.
func createLegacyKey(ctx context.Context, db *sql.DB, k *llmproxy.VirtualKey) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UnixMicro()
	if _, err := tx.ExecContext(ctx, `INSERT INTO keys (id, name, hash, prefix, expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, NULL, $5, $6)`, k.ID, k.Name, k.Hash, k.Prefix, now, now); err != nil {
		return err
	}
	for i, a := range k.Assignments {
		if _, err := tx.ExecContext(ctx, `INSERT INTO assignments (id, key_id, position, connection_id, model_id, tps, burst, token_limit, token_window) VALUES ($1, $2, $3, $4, NULL, $5, $6, 0, 0)`,
			a.ID, k.ID, i, a.ConnectionID, a.TPS, a.Burst); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// legacyUsageInsert is the ledger's INSERT of one record by the builds
// before the cache columns (schema version 1).
const legacyUsageInsert = `INSERT INTO usage_records (id, time, request_id, key_id, assignment_id, model, remote_model, connection_id,
	prompt_tokens, completion_tokens, total_tokens, estimated, status, latency, streamed, endpoint)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (id) DO NOTHING`

// TestUpgradeLedger upgrades in place a database at schema version 1,
// with an older replica's connections still open on it.
func TestUpgradeLedger(t *testing.T) {
	storagetest.RunUpgrade(t, func(t *testing.T) storagetest.Upgrade {
		ctx := t.Context()
		dsn := newDatabase(t)
		old, err := postgres.OpenAtVersion(ctx, dsn, postgres.Options{Sealer: testSealer(t), MaxConns: 2}, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { old.Close() })
		if v, err := old.SchemaVersion(ctx); err != nil || v != 1 {
			t.Fatalf("SchemaVersion of the old database = %d, %v; want 1", v, err)
		}
		// Prepared before the upgrade, as a running older replica's is.
		insert, err := old.DB().PrepareContext(ctx, legacyUsageInsert)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { insert.Close() })
		return storagetest.Upgrade{
			CreateOldKey: func(ctx context.Context, k *llmproxy.VirtualKey) error {
				return createLegacyKey(ctx, old.DB(), k)
			},
			AppendOld: func(ctx context.Context, records []llmproxy.UsageRecord) error {
				for _, r := range records {
					if _, err := insert.ExecContext(ctx, r.ID, r.Time.UnixMicro(), r.RequestID, r.KeyID, r.AssignmentID, r.Model, r.RemoteModel, r.ConnectionID,
						r.PromptTokens, r.CompletionTokens, r.TotalTokens, r.Estimated, r.Status, int64(r.Latency), r.Streamed, r.Endpoint); err != nil {
						return err
					}
				}
				return nil
			},
			Open: func(t *testing.T) llmproxy.Storage {
				s := open(t, dsn)
				if v, err := s.SchemaVersion(t.Context()); err != nil || v < 2 {
					t.Fatalf("SchemaVersion after the upgrade = %d, %v; want 2 or more", v, err)
				}
				return s
			},
		}
	})
}

// TestCredentialsSealed checks that no column of the stored connection
// holds a credential in plaintext, and that a wrong key cannot open them.
func TestCredentialsSealed(t *testing.T) {
	ctx := t.Context()
	dsn := newDatabase(t)
	s := open(t, dsn)
	defer s.Close()
	secrets := llmproxy.Credentials{
		APIKey:          "sk-PLAINTEXT-api-key-0123456789",
		AccessKeyID:     "AKIA-PLAINTEXT-ACCESS-KEY",
		SecretAccessKey: "PLAINTEXT-secret-access-key",
		SessionToken:    "PLAINTEXT-session-token",
	}
	c := &llmproxy.Connection{Name: "bedrock", Provider: llmproxy.KindBedrock, Credentials: secrets}
	if err := s.CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	var row string
	if err := s.DB().QueryRow(`SELECT row_to_json(c)::text FROM connections c`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(row, "bedrock") {
		t.Fatalf("row %s lacks the connection name: the check is blind", row)
	}
	for _, secret := range []string{secrets.APIKey, secrets.AccessKeyID, secrets.SecretAccessKey, secrets.SessionToken} {
		if strings.Contains(row, secret) {
			t.Errorf("the stored row holds %q in plaintext", secret)
		}
	}
	wrong, _ := secret.NewAESGCM(bytes.Repeat([]byte{8}, 32))
	other, err := postgres.Open(ctx, dsn, postgres.Options{Sealer: wrong})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Connection(ctx, c.ID); !errors.Is(err, secret.ErrDecrypt) {
		t.Errorf("Connection with the wrong key: %v, want ErrDecrypt", err)
	}
}

func TestOpenErrors(t *testing.T) {
	newDatabase(t) // skips without a server
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://postgres:s3cret-pw@127.0.0.1:1/x?sslmode=disable", // nothing listens on port 1
		withDatabase(t, adminDSN(), "llmproxy_test_does_not_exist"),
		"postgres://%zz",
	} {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("Open error reveals the password: %v", err)
		}
	}
}

func BenchmarkAppendUsage(b *testing.B) {
	s := open(b, newDatabase(b))
	defer s.Close()
	storagetest.BenchmarkAppendUsage(b, s, 100)
}
