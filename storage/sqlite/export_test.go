package sqlite

import (
	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/storage/internal/sqlstore"
)

// OpenAtVersion is Open migrating the schema only up to the given
// version: the database an older build left, for tests of upgrades.
var OpenAtVersion = open

// RecentQuery is the query RecentUsage runs for f, with its arguments.
func RecentQuery(s *Store, f llmproxy.RecentFilter) (string, []any) {
	return sqlstore.RecentQuery(s.core, f)
}
