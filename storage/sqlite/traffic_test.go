package sqlite_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy/storage/internal/sqlstore"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
	"github.com/go-llm-proxy/llmproxy/storage/storagetest"
)

// usesIndex finds the index a SQLite plan reads usage_records through.
var usesIndex = regexp.MustCompile(`usage_records USING (?:COVERING )?INDEX (\w+)`)

// TestRecentUsagePlans checks that RecentUsage, under every combination
// of its filters, reads the index it names (the best of those the filters
// lead, or the time index with none) in the order asked for: no scan of
// the ledger and no sort.
func TestRecentUsagePlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "llm-proxy.db"))
	defer s.Close()
	for _, f := range sqlstore.RecentFilters() {
		query, args := sqlite.RecentQuery(s, f)
		rows, err := s.DB().QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var (
				id, parent, unused int
				detail             string
			)
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		m := usesIndex.FindStringSubmatch(all)
		if want := sqlstore.RecentIndex(f); m == nil || m[1] != want || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("RecentUsage(%+v): plan %q, want a read of %s and no sort", f, all, want)
		}
	}
}

// TestTrafficAtScale times the web console's queries on a large ledger
// (storagetest.MeasureTraffic); it runs only when LLMPROXY_TRAFFIC_ROWS
// sets the ledger's size, e.g. 10000000, on the file LLMPROXY_TRAFFIC_DB
// names (kept, and reused by the next run) or on a temporary one.
func TestTrafficAtScale(t *testing.T) {
	rows, err := strconv.ParseInt(os.Getenv("LLMPROXY_TRAFFIC_ROWS"), 10, 64)
	if err != nil || rows <= 0 {
		t.Skip("set LLMPROXY_TRAFFIC_ROWS to measure the console's queries on a ledger that large")
	}
	path := os.Getenv("LLMPROXY_TRAFFIC_DB")
	if path == "" {
		path = filepath.Join(t.TempDir(), "llm-proxy.db")
	}
	s := open(t, path)
	defer s.Close()
	storagetest.MeasureTraffic(t, s, rows, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}
