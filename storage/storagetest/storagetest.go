// Package storagetest is the conformance suite every llmproxy.Storage
// backend passes. A backend's test is one line:
//
//	func TestConformance(t *testing.T) { storagetest.Run(t, openFresh) }
//
// and, for backends that several processes share, a second line with
// RunShared; RunUpgrade checks an upgrade in place of a ledger that an
// older build wrote. Errors are checked by kind (errors.Is against llmproxy's
// sentinels), never by message.
//
// The Response tests (and their shared and upgrade parts) run on a Storage
// that implements llmproxy.ResponseStore, as every standard backend does,
// and skip on one that does not.
//
// Times the suite stores (ExpiresAt, usage times) are whole milliseconds,
// the coarsest precision a backend may have. Times a backend sets itself
// (CreatedAt, UpdatedAt) must read back equal to what it set on the
// record.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

// Run runs the suite. open returns a fresh, empty store on its own
// database for each subtest; the suite closes it when the subtest ends
// (register any further cleanup, such as dropping the database, with
// t.Cleanup in open).
func Run(t *testing.T, open func(t *testing.T) llmproxy.Storage) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s llmproxy.Storage)
	}{
		{"ConnectionCreate", testConnectionCreate},
		{"ConnectionRoundTrip", testConnectionRoundTrip},
		{"ConnectionUpdate", testConnectionUpdate},
		{"ModelRoundTrip", testModelRoundTrip},
		{"ModelUpdate", testModelUpdate},
		{"KeyRoundTrip", testKeyRoundTrip},
		{"KeyUpdateReplacesAssignments", testKeyUpdateReplacesAssignments},
		{"KeyBudgets", testKeyBudgets},
		{"RecordsAreCopies", testRecordsAreCopies},
		{"AlreadyExists", testAlreadyExists},
		{"SameAliasOnTwoConnections", testSameAliasOnTwoConnections},
		{"NotFound", testNotFound},
		{"FailedWriteLeavesNothing", testFailedWriteLeavesNothing},
		{"InUse", testInUse},
		{"Invalid", testInvalid},
		{"Delete", testDelete},
		{"ListPaging", testListPaging},
		{"ConfigVersion", testConfigVersion},
		{"UsageSum", testUsageSum},
		{"UsageRoundTrip", testUsageRoundTrip},
		{"UsageFilters", testUsageFilters},
		{"UsageRetriedBatch", testUsageRetriedBatch},
		{"UsageLargeBatch", testUsageLargeBatch},
		{"UsageInvalid", testUsageInvalid},
		{"RollupsAgree", testRollupsAgree},
		{"RollupsRebuild", testRollupsRebuild},
		{"Traffic", testTraffic},
		{"RecentUsage", testRecentUsage},
		{"RecentUsageLimit", testRecentUsageLimit},
		{"Concurrent", testConcurrent},
		{"ResponseRoundTrip", testResponseRoundTrip},
		{"ResponseReplace", testResponseReplace},
		{"ResponseNotFound", testResponseNotFound},
		{"ResponseExpirySweep", testResponseExpirySweep},
		{"ResponseInvalid", testResponseInvalid},
		{"ResponseConcurrent", testResponseConcurrent},
		{"Outbox", testOutbox},
		{"OutboxConcurrentEnqueue", testOutboxConcurrentEnqueue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

// RunShared runs the tests for two Stores on one database, as two
// processes (or replicas) would have: openPair returns two Stores opened
// separately on the same fresh database. The suite closes both.
func RunShared(t *testing.T, openPair func(t *testing.T) (a, b llmproxy.Storage)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b llmproxy.Storage)
	}{
		{"WritesVisible", testSharedWritesVisible},
		{"ConfigVersion", testSharedConfigVersion},
		{"UniqueNames", testSharedUniqueNames},
		{"ConcurrentWrites", testSharedConcurrentWrites},
		{"Responses", testSharedResponses},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := openPair(t)
			t.Cleanup(func() { a.Close(); b.Close() })
			tt.fn(t, a, b)
		})
	}
}

// wantErr fails t unless err is (or wraps) want; want nil means success.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: error %v, want one wrapping %q", what, err, want)
	}
}

// must fails t now if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func ids[T any](records []T, id func(*T) string) []string {
	out := make([]string, len(records))
	for i := range records {
		out[i] = id(&records[i])
	}
	return out
}

func connID(c *llmproxy.Connection) string { return c.ID }
func modelID(m *llmproxy.Model) string     { return m.ID }
func keyID(k *llmproxy.VirtualKey) string  { return k.ID }

// listAll pages through a listing limit records at a time, checking that
// pages are in strictly increasing ID order and never exceed limit.
func listAll[T any](t *testing.T, list func(context.Context, llmproxy.ListOptions) ([]T, error), id func(*T) string, limit int) []T {
	t.Helper()
	var all []T
	opts := llmproxy.ListOptions{Limit: limit}
	for page := 0; ; page++ {
		got, err := list(t.Context(), opts)
		must(t, fmt.Sprintf("list page %d after %q", page, opts.After), err)
		if len(got) > limit {
			t.Fatalf("page %d has %d records, limit %d", page, len(got), limit)
		}
		all = append(all, got...)
		if len(got) < limit {
			break
		}
		opts.After = id(&got[len(got)-1])
		if page > 10000 {
			t.Fatal("listing does not end")
		}
	}
	gotIDs := ids(all, id)
	if !slices.IsSorted(gotIDs) || len(slices.Compact(slices.Clone(gotIDs))) != len(gotIDs) {
		t.Fatalf("listing is not in strictly increasing ID order: %v", gotIDs)
	}
	return all
}
