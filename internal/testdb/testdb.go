// Package testdb gives tests their own databases on the real servers the
// test scripts provide: a fresh PostgreSQL database, a Redis key prefix,
// dropped when the test ends. Without a server a test is skipped, or
// fails when CI=true (./scripts/test.sh and CI always provide them).
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/lib/pq" // the postgres driver for the admin connection
	"github.com/redis/go-redis/v9"
)

// Unavailable skips t because what, a server or program the test needs,
// cannot be had (err says why); under CI=true, where ./scripts/test.sh
// must provide everything, it fails t instead.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := what + " is unavailable (run ./scripts/test.sh, which provides it or says what to install): " + err.Error()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Postgres creates an empty database and returns its DSN.
func Postgres(t testing.TB) string {
	t.Helper()
	adminDSN := os.Getenv("LLMPROXY_TEST_POSTGRES")
	if adminDSN == "" {
		adminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := sql.Open("postgres", adminDSN)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		Unavailable(t, "PostgreSQL", err)
	}
	name := randomName("llmproxy_test_")
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		db.Close()
	})
	u, err := url.Parse(adminDSN)
	if err != nil {
		t.Fatalf("LLMPROXY_TEST_POSTGRES must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisURL returns the test Redis URL and a key prefix of the test's own;
// keys under the prefix are deleted when the test ends.
func RedisURL(t testing.TB) (redisURL, prefix string) {
	t.Helper()
	redisURL = os.Getenv("LLMPROXY_TEST_REDIS")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("LLMPROXY_TEST_REDIS: %v", err)
	}
	c := redis.NewClient(o)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		Unavailable(t, "Redis", err)
	}
	prefix = randomName("llmproxy-test-") + ":"
	t.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		if keys, _ := c.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return redisURL, prefix
}
