package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
	"github.com/go-llm-proxy/llmproxy/storage/storagetest"
)

// testSealer returns a sealer with a fixed key, so that two Stores on one
// file can read each other's credentials.
func testSealer(t testing.TB) secret.Sealer {
	t.Helper()
	s, err := secret.NewAESGCM(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{Sealer: testSealer(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) llmproxy.Storage {
		return open(t, filepath.Join(t.TempDir(), "llm-proxy.db"))
	})
}

func TestShared(t *testing.T) {
	storagetest.RunShared(t, func(t *testing.T) (a, b llmproxy.Storage) {
		path := filepath.Join(t.TempDir(), "llm-proxy.db")
		return open(t, path), open(t, path)
	})
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "llm-proxy.db")
	s := open(t, path)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("SchemaVersion = %d, %v; want at least 1", v, err)
	}
	c := &llmproxy.Connection{Name: "kept", Provider: llmproxy.KindOpenAI, Credentials: llmproxy.Credentials{APIKey: "k"}}
	if err := s.CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for range 2 {
		s = open(t, path)
		if again, err := s.SchemaVersion(ctx); err != nil || again != v {
			t.Fatalf("SchemaVersion after reopening = %d, %v; want %d", again, err, v)
		}
		got, err := s.Connection(ctx, c.ID)
		if err != nil || got.Credentials != c.Credentials {
			t.Fatalf("connection after reopening: %v, %v", got, err)
		}
		s.Close()
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
	if _, err := tx.ExecContext(ctx, `INSERT INTO keys (id, name, hash, prefix, expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?)`, k.ID, k.Name, k.Hash, k.Prefix, now, now); err != nil {
		return err
	}
	for i, a := range k.Assignments {
		if _, err := tx.ExecContext(ctx, `INSERT INTO assignments (id, key_id, position, connection_id, model_id, tps, burst, token_limit, token_window) VALUES (?, ?, ?, ?, NULL, ?, ?, 0, 0)`,
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
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

// TestUpgradeLedger upgrades in place a file at schema version 1, with an
// older build's writer still open on it.
func TestUpgradeLedger(t *testing.T) {
	storagetest.RunUpgrade(t, func(t *testing.T) storagetest.Upgrade {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "llm-proxy.db")
		old, err := sqlite.OpenAtVersion(ctx, path, sqlite.Options{Sealer: testSealer(t)}, 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { old.Close() })
		if v, err := old.SchemaVersion(ctx); err != nil || v != 1 {
			t.Fatalf("SchemaVersion of the old database = %d, %v; want 1", v, err)
		}
		// Prepared before the upgrade, as a running older build's is.
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
				s := open(t, path)
				if v, err := s.SchemaVersion(t.Context()); err != nil || v < 2 {
					t.Fatalf("SchemaVersion after the upgrade = %d, %v; want 2 or more", v, err)
				}
				return s
			},
		}
	})
}

// TestConcurrentOpen opens one new file from several goroutines at once,
// as several processes starting together would: every Open succeeds and
// the schema is applied once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llm-proxy.db")
	const n = 6
	stores := make([]*sqlite.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = sqlite.Open(t.Context(), path, sqlite.Options{Sealer: testSealer(t)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	if err := stores[0].CreateConnection(t.Context(), &llmproxy.Connection{Name: "c", Provider: "openai"}); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		list, err := s.Connections(t.Context(), llmproxy.ListOptions{})
		if err != nil || len(list) != 1 {
			t.Fatalf("store %d lists %d connections, %v; want 1", i, len(list), err)
		}
	}
}

// TestCredentialsSealed checks that no credential reaches the database
// file in plaintext, and that a wrong key cannot open them.
func TestCredentialsSealed(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "llm-proxy.db")
	s := open(t, path)
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
	s.Close()

	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte("bedrock")) {
		t.Fatal("the database files do not even hold the connection name: the check is blind")
	}
	for _, secret := range []string{secrets.APIKey, secrets.AccessKeyID, secrets.SecretAccessKey, secrets.SessionToken} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("the database files hold %q in plaintext", secret)
		}
	}

	wrong, err := secret.NewAESGCM(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Options{Sealer: wrong})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Connection(ctx, c.ID)
	if !errors.Is(err, secret.ErrDecrypt) {
		t.Errorf("Connection with the wrong key: %v, want ErrDecrypt", err)
	}
	if err != nil && strings.Contains(err.Error(), "PLAINTEXT") {
		t.Errorf("error reveals a secret: %v", err)
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, path := range []string{"", ":memory:", "a?b", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if s, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func BenchmarkAppendUsage(b *testing.B) {
	// 100 a batch, and 1,000: the gateway's ledger batch under load.
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "llm-proxy.db"))
			defer s.Close()
			storagetest.BenchmarkAppendUsage(b, s, n)
		})
	}
}

// TestProcesses has several processes (this test binary, re-run) write keys
// and usage to one file at once: nothing is lost and nobody sees "database
// is locked".
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "llm-proxy.db")
	s := open(t, path)
	defer s.Close()
	const procs, batches, perBatch, keys = 3, 20, 50, 10
	cmds := make([]*exec.Cmd, procs)
	outs := make([]bytes.Buffer, procs)
	for i := range cmds {
		cmds[i] = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestWriterProcess$", "-test.v")
		cmds[i].Env = append(os.Environ(), "LLMPROXY_WRITER_DB="+path, fmt.Sprintf("LLMPROXY_WRITER_ID=%d", i))
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v\n%s", i, err, outs[i].String())
		} else if !strings.Contains(outs[i].String(), "--- PASS: TestWriterProcess") {
			t.Errorf("writer %d did not run:\n%s", i, outs[i].String())
		}
	}
	ks, err := s.Keys(t.Context(), llmproxy.ListOptions{})
	if err != nil || len(ks) != procs*keys {
		t.Errorf("%d keys, %v; want %d", len(ks), err, procs*keys)
	}
	sums, err := s.SumUsage(t.Context(), llmproxy.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, u := range sums {
		n += u.Requests
	}
	if n != procs*batches*perBatch {
		t.Errorf("%d usage records, want %d", n, procs*batches*perBatch)
	}
}

// TestWriterProcess is the body of TestProcesses' child processes; it does
// nothing in a normal run.
func TestWriterProcess(t *testing.T) {
	path, id := os.Getenv("LLMPROXY_WRITER_DB"), os.Getenv("LLMPROXY_WRITER_ID")
	if path == "" {
		return
	}
	const batches, perBatch, keys = 20, 50, 10
	s := open(t, path)
	defer s.Close()
	ctx := t.Context()
	for b := range batches {
		if b < keys {
			k := &llmproxy.VirtualKey{Name: fmt.Sprintf("p%s-k%d", id, b), Hash: llmproxy.HashKey(fmt.Sprintf("p%s-k%d", id, b))}
			if err := s.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		batch := make([]llmproxy.UsageRecord, perBatch)
		for i := range batch {
			batch[i] = llmproxy.UsageRecord{ID: fmt.Sprintf("p%s-%d-%d", id, b, i), Time: time.Now(), KeyID: "k" + id, Model: "m", TotalTokens: 1}
		}
		if err := s.AppendUsage(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
}
