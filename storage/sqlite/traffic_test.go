package sqlite_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-llm-proxy/llmproxy/storage/internal/sqlstore"
	"github.com/go-llm-proxy/llmproxy/storage/sqlite"
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
		if want := sqlstore.RecentIndexes(f)[0]; m == nil || m[1] != want || strings.Contains(all, "TEMP B-TREE") {
			t.Errorf("RecentUsage(%+v): plan %q, want a read of %s and no sort", f, all, want)
		}
	}
}
