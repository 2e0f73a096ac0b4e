package sqlstore

import (
	"os"
	"strings"
	"testing"
)

// TestHourlyFillInMigrations holds the 0009 migrations' fill of
// usage_hourly to RebuildRollups' (hourlyFill), which the conformance
// suite checks against the ledger: both must bucket latencies alike.
func TestHourlyFillInMigrations(t *testing.T) {
	for _, path := range []string{"../../sqlite/migrations/0009_usage_hourly.sql", "../../postgres/migrations/0009_usage_hourly.sql"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), hourlyFill) {
			t.Errorf("%s does not hold RebuildRollups' fill of usage_hourly:\n%s", path, hourlyFill)
		}
	}
}
