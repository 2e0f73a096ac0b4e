package postgres_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/storage/internal/sqlstore"
	"github.com/go-llm-proxy/llmproxy/storage/postgres"
	"github.com/go-llm-proxy/llmproxy/storage/storagetest"
)

// indexScan is a plan's read of an index of usage_records.
var indexScan = regexp.MustCompile(`(?:Index Scan|Index Only Scan)(?: Backward)? using usage_records_\w+ on usage_records|Bitmap Index Scan on usage_records_\w+`)

// TestRecentUsagePlans checks that RecentUsage, under every combination
// of its filters, reads the ledger through its indexes, never whole, on
// a ledger analyzed so that the planner knows reading it whole costs more
// than a page. Which index PostgreSQL picks depends on its statistics: a
// filter's own index, or the time index read backwards until the page is
// full when the filtered value is common. The query is written so that
// each filter's index can serve it (the errors filter is the partial
// index's predicate, literally).
func TestRecentUsagePlans(t *testing.T) {
	ctx := t.Context()
	s := open(t, newDatabase(t))
	defer s.Close()
	db := s.DB()
	// A ledger of 50,000 records over ten keys, four aliases and mostly
	// successes (one in 25 an error), analyzed: enough for the planner to
	// see that reading the ledger whole costs more than the page. The
	// filters' key and alias (sqlstore.RecentFilters) are among them.
	if _, err := db.ExecContext(ctx, `INSERT INTO usage_records (id, time, key_id, model, status, latency)
		SELECT 'u' || lpad(i::text, 8, '0'), 1750000000000000 + i::bigint * 1000000, CASE WHEN i % 10 = 0 THEN 'key_x' ELSE 'key_' || (i % 10) END,
			CASE WHEN i % 4 = 0 THEN 'gpt-4o' ELSE 'model_' || (i % 4) END,
			CASE WHEN i % 25 = 0 THEN 500 WHEN i % 25 = 1 THEN 429 ELSE 200 END, i
		FROM generate_series(1, 50000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE usage_records`); err != nil {
		t.Fatal(err)
	}
	for _, f := range sqlstore.RecentFilters() {
		query, args := postgres.RecentQuery(s, f)
		rows, err := db.QueryContext(ctx, "EXPLAIN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		all := strings.Join(plan, "\n")
		if strings.Contains(all, "Seq Scan") || !indexScan.MatchString(all) {
			t.Errorf("RecentUsage(%+v): plan\n%s\nwant a read through an index and no scan of the ledger", f, all)
		}
	}
}

// TestTrafficAtScale times the web console's queries on a large ledger
// (storagetest.MeasureTraffic); it runs only when LLMPROXY_TRAFFIC_ROWS
// sets the ledger's size, e.g. 10000000, on the database
// LLMPROXY_TRAFFIC_DSN names (kept, and reused by the next run) or on a
// temporary one.
func TestTrafficAtScale(t *testing.T) {
	rows, err := strconv.ParseInt(os.Getenv("LLMPROXY_TRAFFIC_ROWS"), 10, 64)
	if err != nil || rows <= 0 {
		t.Skip("set LLMPROXY_TRAFFIC_ROWS to measure the console's queries on a ledger that large")
	}
	dsn := os.Getenv("LLMPROXY_TRAFFIC_DSN")
	if dsn == "" {
		dsn = newDatabase(t)
	}
	s := open(t, dsn)
	defer s.Close()
	// A ledger written for hours is analyzed by autovacuum as it grows;
	// one just bulk-loaded may not be yet, and its plans would read stale
	// statistics (an empty table's). storagetest.MeasureTraffic loads it
	// on the first run, so the measurement proper runs on the next.
	if _, err := s.DB().ExecContext(t.Context(), `ANALYZE usage_records`); err != nil {
		t.Fatal(err)
	}
	storagetest.MeasureTraffic(t, s, rows, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}
