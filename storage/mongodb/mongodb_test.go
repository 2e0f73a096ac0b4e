package mongodb_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/secret"
	"github.com/go-llm-proxy/llmproxy/storage/mongodb"
	"github.com/go-llm-proxy/llmproxy/storage/storagetest"
)

// baseURI returns the server the tests use, from LLMPROXY_TEST_MONGODB
// (set by ./scripts/test.sh, which starts FerretDB). Without it the test
// skips, or fails under CI.
func baseURI(t testing.TB) string {
	t.Helper()
	base := os.Getenv("LLMPROXY_TEST_MONGODB")
	if base == "" {
		msg := "LLMPROXY_TEST_MONGODB is not set: run ./scripts/test.sh, which starts FerretDB, or point it at a MongoDB server (mongodb://host:port/)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return base
}

// newDatabase returns the URI of a new, randomly named database on the
// test server, dropped when the test ends.
func newDatabase(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(baseURI(t))
	if err != nil {
		t.Fatalf("LLMPROXY_TEST_MONGODB: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "llmproxy_test_" + hex.EncodeToString(b[:])
	u.Path = "/" + name
	uri := u.String()

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer client.Disconnect(ctx)
		if err := client.Database(name).Drop(ctx); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return uri
}

var sealer = func() secret.Sealer {
	s, err := secret.NewAESGCM(make([]byte, 32))
	if err != nil {
		panic(err)
	}
	return s
}()

// open opens a Store on uri, closed when the test ends.
func open(t testing.TB, uri string) *mongodb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongodb.Open(ctx, uri, mongodb.Options{Sealer: sealer})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) llmproxy.Storage {
		return open(t, newDatabase(t))
	})
}

func TestConformanceShared(t *testing.T) {
	storagetest.RunShared(t, func(t *testing.T) (a, b llmproxy.Storage) {
		uri := newDatabase(t)
		return open(t, uri), open(t, uri)
	})
}

func TestTwoStoresShareOneDatabase(t *testing.T) {
	ctx := context.Background()
	uri := newDatabase(t)
	a, b := open(t, uri), open(t, uri)

	v0, err := b.ConfigVersion(ctx)
	if err != nil || v0 == "" {
		t.Fatalf("ConfigVersion = %q, %v; want a non-empty stamp", v0, err)
	}
	c := &llmproxy.Connection{Name: "openai", Provider: llmproxy.KindOpenAI, Credentials: llmproxy.Credentials{APIKey: "sk-secret"}}
	if err := a.CreateConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := b.Connection(ctx, c.ID)
	if err != nil {
		t.Fatalf("the other store does not see the new connection: %v", err)
	}
	if got.Name != c.Name || got.Credentials.APIKey != "sk-secret" {
		t.Errorf("other store read %+v, want %+v", got, c)
	}
	v1, err := b.ConfigVersion(ctx)
	if err != nil || v1 == v0 {
		t.Fatalf("ConfigVersion after a write in the other store = %q, %v; want a change from %q", v1, err, v0)
	}

	// A name taken through one store is taken for the other.
	dup := &llmproxy.Connection{Name: "openai", Provider: llmproxy.KindOpenAI}
	if err := b.CreateConnection(ctx, dup); !errors.Is(err, llmproxy.ErrAlreadyExists) {
		t.Errorf("duplicate name through the other store: %v, want ErrAlreadyExists", err)
	}

	// Concurrent config writes through both stores: every one is stored,
	// and the version moves after each of them.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for j, s := range []*mongodb.Store{a, b} {
			wg.Go(func() {
				errs <- s.CreateModel(ctx, &llmproxy.Model{Name: fmt.Sprintf("m%d-%d", i, j), Remote: "gpt-4o", ConnectionID: c.ID})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, s := range []*mongodb.Store{a, b} {
		ms, err := s.Models(ctx, llmproxy.ListOptions{})
		if err != nil || len(ms) != 40 {
			t.Errorf("Models = %d models, %v; want 40", len(ms), err)
		}
	}
	v2, _ := a.ConfigVersion(ctx)
	if v2 == v1 {
		t.Errorf("ConfigVersion did not change after concurrent writes")
	}
}

func TestOpenErrors(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	tests := []struct {
		name string
		uri  string
		want error  // a sentinel, or nil for any error
		text string // part of the message
	}{
		{"no database", "mongodb://127.0.0.1:27017", llmproxy.ErrInvalid, "names no database"},
		{"no database, slash", "mongodb://127.0.0.1:27017/", llmproxy.ErrInvalid, "names no database"},
		{"not a mongodb URI", "postgres://localhost/x", llmproxy.ErrInvalid, "mongodb URI"},
		{"bad port", "mongodb://u:hunter2@host:notaport/x", llmproxy.ErrInvalid, "mongodb URI"},
		{"bad escape in password", "mongodb://u:hunter2%zz@host/x", llmproxy.ErrInvalid, "mongodb URI"},
		{"unreachable", "mongodb://" + closed + "/llmproxy", nil, "cannot reach " + closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := mongodb.Open(context.Background(), tt.uri, mongodb.Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Open: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Open: %q, want it to say %q", err, tt.text)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open: %q shows the password", err)
			}
			t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Open took %v to fail, want a few seconds", d)
			}
		})
	}
}

// schemaVersion is the schema version this build sets up: step 2 added
// the responses collection, step 3 the daily rollups' unique index, step
// 4 the hourly rollups' and the ledger's indexes for RecentUsage.
const schemaVersion = 4

func TestSchemaSetupIsConcurrentAndRepeatable(t *testing.T) {
	ctx := context.Background()
	uri := newDatabase(t)

	// Several replicas starting at once on an empty database.
	stores := make([]*mongodb.Store, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = mongodb.Open(ctx, uri, mongodb.Options{Sealer: sealer})
		})
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		s.Close()
	}

	s := open(t, uri)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != schemaVersion {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, schemaVersion)
	}
	// The unique indexes are in place once.
	k := &llmproxy.VirtualKey{Name: "k", Hash: llmproxy.HashKey("secret")}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []*llmproxy.VirtualKey{
		{Name: "k", Hash: llmproxy.HashKey("other")},
		{Name: "other", Hash: llmproxy.HashKey("secret")},
	} {
		if err := s.CreateKey(ctx, dup); !errors.Is(err, llmproxy.ErrAlreadyExists) {
			t.Errorf("CreateKey(%s): %v, want ErrAlreadyExists", dup.Name, err)
		}
	}
	// Reopening changes nothing and keeps the data.
	s2 := open(t, uri)
	if v, err := s2.SchemaVersion(ctx); err != nil || v != schemaVersion {
		t.Errorf("SchemaVersion after reopening = %d, %v; want %d", v, err, schemaVersion)
	}
	if _, err := s2.Key(ctx, k.ID); err != nil {
		t.Errorf("key lost on reopening: %v", err)
	}

	// A database set up by a newer build is refused, not downgraded.
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	u, _ := url.Parse(uri)
	meta := client.Database(strings.TrimPrefix(u.Path, "/")).Collection("meta")
	if _, err := meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: "schema"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: 99}}}}); err != nil {
		t.Fatal(err)
	}
	if s3, err := mongodb.Open(ctx, uri, mongodb.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		if err == nil {
			s3.Close()
		}
		t.Errorf("Open of a schema version 99 database: %v, want an error saying it is newer", err)
	}
	if _, err := s2.Key(ctx, k.ID); err != nil {
		t.Errorf("key lost after a refused Open: %v", err)
	}
}

func TestAppendUsageIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := open(t, newDatabase(t))
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6789, time.UTC)
	batch := make([]llmproxy.UsageRecord, 10)
	for i := range batch {
		batch[i] = llmproxy.UsageRecord{ID: llmproxy.NewID("use"), Time: t0.Add(time.Duration(i) * time.Nanosecond), KeyID: "key_a", Model: "m", PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, Estimated: i%2 == 0,
			CostMicros: 100, CostKnown: i%2 == 1}
	}
	if err := s.AppendUsage(ctx, batch[:4]); err != nil {
		t.Fatal(err)
	}
	// A retried batch that overlaps the stored part.
	if err := s.AppendUsage(ctx, batch); err != nil {
		t.Fatalf("retried batch: %v", err)
	}
	if err := s.AppendUsage(ctx, batch); err != nil {
		t.Fatalf("batch stored twice: %v", err)
	}
	got, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
	want := []llmproxy.UsageSummary{{KeyID: "key_a", Model: "m", Requests: 10, PromptTokens: 10, CompletionTokens: 20, TotalTokens: 30, EstimatedTokens: 15, CostMicros: 500, UnknownCost: 5}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SumUsage = %+v, %v; want %+v", got, err, want)
	}
	// Time filters are exact to the nanosecond.
	got, err = s.SumUsage(ctx, llmproxy.UsageFilter{Since: t0.Add(3), Until: t0.Add(5)})
	if err != nil || len(got) != 1 || got[0].Requests != 2 {
		t.Errorf("SumUsage over 2ns = %+v, %v; want 2 requests", got, err)
	}
}

// legacyUsageDoc is a ledger document as the builds before the cache
// columns wrote it.
type legacyUsageDoc struct {
	ID               string    `bson:"_id"`
	Time             time.Time `bson:"time"`
	TimeNS           int64     `bson:"time_ns"`
	RequestID        string    `bson:"request_id,omitempty"`
	KeyID            string    `bson:"key_id"`
	AssignmentID     string    `bson:"assignment_id,omitempty"`
	Model            string    `bson:"model"`
	RemoteModel      string    `bson:"remote_model,omitempty"`
	ConnectionID     string    `bson:"connection_id,omitempty"`
	PromptTokens     int64     `bson:"prompt_tokens"`
	CompletionTokens int64     `bson:"completion_tokens"`
	TotalTokens      int64     `bson:"total_tokens"`
	EstimatedTokens  int64     `bson:"estimated_tokens"`
	Estimated        bool      `bson:"estimated"`
	Status           int       `bson:"status"`
	LatencyNS        int64     `bson:"latency_ns"`
	Streamed         bool      `bson:"streamed"`
	Endpoint         string    `bson:"endpoint,omitempty"`
}

// legacyKeyDoc is k as the builds before budgets wrote it: without the
// budget fields of the key and its (connection-wide) assignments.
func legacyKeyDoc(k *llmproxy.VirtualKey) bson.D {
	as := bson.A{}
	for _, a := range k.Assignments {
		as = append(as, bson.D{{Key: "id", Value: a.ID}, {Key: "connection_id", Value: a.ConnectionID}, {Key: "tps", Value: a.TPS},
			{Key: "burst", Value: a.Burst}, {Key: "token_limit", Value: int64(0)}, {Key: "token_window_ns", Value: int64(0)}})
	}
	now := time.Now().UTC()
	return bson.D{{Key: "_id", Value: k.ID}, {Key: "name", Value: k.Name}, {Key: "hash", Value: k.Hash}, {Key: "prefix", Value: k.Prefix},
		{Key: "assignments", Value: as}, {Key: "created_at", Value: now}, {Key: "updated_at", Value: now}}
}

// TestUpgradeLedger upgrades a database at schema version 1, whose ledger
// the builds before the cache and cost fields wrote: their documents lack
// them, which read as 0 tokens and an unknown cost without any schema
// step rewriting them, and
// such a build may go on writing. Step 2 adds the responses collection.
func TestUpgradeLedger(t *testing.T) {
	storagetest.RunUpgrade(t, func(t *testing.T) storagetest.Upgrade {
		ctx := t.Context()
		uri := newDatabase(t)
		old, err := mongodb.OpenAtVersion(ctx, uri, mongodb.Options{Sealer: sealer}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := old.SchemaVersion(ctx); err != nil || v != 1 {
			t.Fatalf("SchemaVersion of the old database = %d, %v; want 1", v, err)
		}
		old.Close()
		client, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Disconnect(context.Background()) })
		u, _ := url.Parse(uri)
		usage := client.Database(strings.TrimPrefix(u.Path, "/")).Collection("usage")
		keys := client.Database(strings.TrimPrefix(u.Path, "/")).Collection("keys")
		return storagetest.Upgrade{
			CreateOldKey: func(ctx context.Context, k *llmproxy.VirtualKey) error {
				_, err := keys.InsertOne(ctx, legacyKeyDoc(k))
				return err
			},
			AppendOld: func(ctx context.Context, records []llmproxy.UsageRecord) error {
				docs := make([]any, len(records))
				for i, r := range records {
					d := &legacyUsageDoc{
						ID: r.ID, Time: r.Time.UTC(), TimeNS: r.Time.UnixNano(), RequestID: r.RequestID, KeyID: r.KeyID,
						AssignmentID: r.AssignmentID, Model: r.Model, RemoteModel: r.RemoteModel, ConnectionID: r.ConnectionID,
						PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TotalTokens: r.TotalTokens,
						Estimated: r.Estimated, Status: r.Status, LatencyNS: int64(r.Latency), Streamed: r.Streamed, Endpoint: r.Endpoint,
					}
					if r.Estimated {
						d.EstimatedTokens = r.TotalTokens
					}
					docs[i] = d
				}
				_, err := usage.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
				var bwe mongo.BulkWriteException
				if errors.As(err, &bwe) && bwe.WriteConcernError == nil && !slices.ContainsFunc(bwe.WriteErrors, func(we mongo.BulkWriteError) bool { return we.Code != 11000 }) {
					return nil // only records already stored
				}
				return err
			},
			Open: func(t *testing.T) llmproxy.Storage {
				s, err := mongodb.Open(ctx, uri, mongodb.Options{Sealer: sealer})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if v, err := s.SchemaVersion(t.Context()); err != nil || v != schemaVersion {
					t.Fatalf("SchemaVersion after the upgrade = %d, %v; want %d", v, err, schemaVersion)
				}
				return s
			},
		}
	})
}

// BenchmarkAppendUsage writes the ledger in batches of 100, as the
// Gateway's ledger does, and reports records/s.
func BenchmarkAppendUsage(b *testing.B) {
	ctx := context.Background()
	s := open(b, newDatabase(b))
	const batch = 100
	recs := make([]llmproxy.UsageRecord, batch)
	now := time.Now()
	for b.Loop() {
		for i := range recs {
			recs[i] = llmproxy.UsageRecord{ID: llmproxy.NewID("use"), Time: now, KeyID: "key_bench", Model: "gpt-4o", RemoteModel: "gpt-4o-2024-08-06", ConnectionID: "conn_x", PromptTokens: 100, CompletionTokens: 50, TotalTokens: 150, Status: 200, Latency: time.Second, Endpoint: "chat"}
		}
		if err := s.AppendUsage(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
}

// TestResponsesCollection checks what the conformance suite cannot see:
// the expiry sweep's index exists, and a response larger than a document
// holds is refused up front, as ErrInvalid, without its content in the
// message.
func TestResponsesCollection(t *testing.T) {
	ctx := t.Context()
	uri := newDatabase(t)
	s := open(t, uri)

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	u, _ := url.Parse(uri)
	cur, err := client.Database(strings.TrimPrefix(u.Path, "/")).Collection("responses").Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type index struct {
		Name string `bson:"name"`
		Key  bson.D `bson:"key"`
	}
	var indexes []index
	if err := cur.All(ctx, &indexes); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(indexes, func(ix index) bool { return len(ix.Key) == 1 && ix.Key[0].Key == "expires_at" }) {
		t.Errorf("the responses collection has no index on expires_at: %+v", indexes)
	}

	big := strings.Repeat("SECRET", 3<<20) // 18 MiB
	r := &llmproxy.StoredResponse{ID: "resp_big", Items: []byte(big[:12<<20]), Response: []byte(big[12<<20:]),
		CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	err = s.PutResponse(ctx, r)
	if !errors.Is(err, llmproxy.ErrInvalid) {
		t.Errorf("PutResponse of 18 MiB: %v, want ErrInvalid", err)
	}
	if err != nil && strings.Contains(err.Error(), "SECRET") {
		t.Errorf("PutResponse error quotes the content")
	}
	if _, err := s.GetResponse(ctx, r.ID); !errors.Is(err, llmproxy.ErrNotFound) {
		t.Errorf("GetResponse of the refused response: %v, want ErrNotFound", err)
	}
}
