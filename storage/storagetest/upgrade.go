package storagetest

import (
	"context"
	"slices"
	"testing"

	"github.com/go-llm-proxy/llmproxy"
)

// Upgrade is a database as an older build left it, for RunUpgrade.
type Upgrade struct {
	// AppendOld appends records as that build wrote them: every field
	// but CacheReadTokens, CacheWriteTokens, CostMicros and CostKnown,
	// which it did not know,
	// skipping IDs already stored. It must keep working after Open has
	// migrated the database, as an older replica still running during a
	// rolling upgrade does.
	AppendOld func(ctx context.Context, records []llmproxy.UsageRecord) error
	// CreateOldKey, when set, stores k (ID, name, hash, prefix and its
	// assignments, which have IDs) as that build wrote keys, without
	// budgets, which it did not know. Like AppendOld it must keep working
	// after the upgrade. Nil skips the check that old keys read no budget.
	CreateOldKey func(ctx context.Context, k *llmproxy.VirtualKey) error
	// Open opens this build's Store on the same database, migrating it.
	// It is called more than once; the suite closes what it returns.
	Open func(t *testing.T) llmproxy.Storage
}

// RunUpgrade checks an upgrade in place of a ledger written before it
// had the prompt-cache and cost columns (and the daily rollups, which
// RebuildRollups then fills from the ledger): no record is lost, the old
// records read 0 for the cache counts and an unknown cost (they had no
// price when they were written, so their cost is unknown, not free), old and new writers then work side by side, and
// opening again changes nothing. A backend that keeps Responses API
// responses (llmproxy.ResponseStore) stores one after the upgrade, which
// the older build had no place for, and reads it after opening again. old returns a fresh database at the
// schema of the build before the cache columns (for a backend whose
// schema version did not change, a database as that build wrote it).
func RunUpgrade(t *testing.T, old func(t *testing.T) Upgrade) {
	ctx := t.Context()
	u := old(t)
	records := usageFixture()
	// What the ledger must hold: the cache counts of the records that
	// the old build wrote are lost, and read 0; their costs are unknown.
	want := make([]llmproxy.UsageRecord, len(records))
	copy(want, records)
	for i := range want[:40] {
		want[i].CacheReadTokens, want[i].CacheWriteTokens = 0, 0
		want[i].CostMicros, want[i].CostKnown = 0, false
	}
	must(t, "AppendOld before the upgrade", u.AppendOld(ctx, records[:30]))
	oldKey := &llmproxy.VirtualKey{ID: "key_old", Name: "old", Hash: llmproxy.HashKey("sk-old-key"), Prefix: "sk-old"}
	if u.CreateOldKey != nil {
		must(t, "CreateOldKey before the upgrade", u.CreateOldKey(ctx, oldKey))
	}

	s := u.Open(t)
	t.Cleanup(func() { s.Close() })
	// The upgraded store keeps responses (the older build had no place
	// for them), and they are there when it is opened again.
	stored := newResponse("resp_after_upgrade", 50_000)
	rs, keepsResponses := s.(llmproxy.ResponseStore)
	if keepsResponses {
		must(t, "PutResponse after the upgrade", rs.PutResponse(ctx, stored))
	}
	got, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, "SumUsage after the upgrade", err)
	checkSums(t, "SumUsage of the old records after the upgrade", got, sumReference(want[:30], llmproxy.UsageFilter{}))

	// An older replica still writing, this build writing, and a batch of
	// old records retried by this build (stored once, as they were).
	must(t, "AppendOld after the upgrade", u.AppendOld(ctx, records[30:40]))
	must(t, "AppendUsage after the upgrade", s.AppendUsage(ctx, records[40:]))
	must(t, "AppendUsage of old records again", s.AppendUsage(ctx, records[:10]))
	must(t, "AppendOld of new records again", u.AppendOld(ctx, records[50:]))
	for _, f := range []llmproxy.UsageFilter{
		{},
		{KeyID: "key_a"},
		{Since: records[35].Time},
		{Model: "gpt-4o", Until: records[45].Time},
	} {
		got, err := s.SumUsage(ctx, f)
		must(t, "SumUsage", err)
		checkSums(t, "SumUsage of old and new records", got, sumReference(want, f))
	}

	if u.CreateOldKey != nil {
		checkOldKeys(t, s, u, oldKey)
	}

	again := u.Open(t)
	t.Cleanup(func() { again.Close() })
	got, err = again.SumUsage(ctx, llmproxy.UsageFilter{})
	must(t, "SumUsage after opening again", err)
	checkSums(t, "SumUsage after opening again", got, sumReference(want, llmproxy.UsageFilter{}))
	if keepsResponses {
		getResponse(t, responseStore(t, again), "response after opening again", stored)
	}
	checkUpgradeRollups(t, again, want)
	checkUpgradeTraffic(t, again, want)
}

// checkOldKeys checks that keys an older build wrote, before the upgrade
// (oldKey) and after it (with an assignment), read no budget, and that
// this build can then give them budgets.
func checkOldKeys(t *testing.T, s llmproxy.Storage, u Upgrade, oldKey *llmproxy.VirtualKey) {
	ctx := t.Context()
	c := createConnection(t, s, "after-upgrade")
	later := &llmproxy.VirtualKey{ID: "key_old_later", Name: "old-later", Hash: llmproxy.HashKey("sk-old-later"), Prefix: "sk-old",
		Assignments: []llmproxy.Assignment{{ID: "asg_old_later", ConnectionID: c.ID, TPS: 2, Burst: 3}}}
	must(t, "CreateOldKey after the upgrade", u.CreateOldKey(ctx, later))
	for _, k := range []*llmproxy.VirtualKey{oldKey, later} {
		got, err := s.Key(ctx, k.ID)
		must(t, "Key of an old key", err)
		if got.Budget != nil || len(got.Assignments) != len(k.Assignments) ||
			slices.ContainsFunc(got.Assignments, func(a llmproxy.Assignment) bool { return a.Budget != nil }) {
			t.Errorf("old key %s after the upgrade: %+v, want no budgets and %d assignments", k.Name, got, len(k.Assignments))
		}
	}
	keys, err := s.Keys(ctx, llmproxy.ListOptions{})
	must(t, "Keys", err)
	if len(keys) != 2 || keys[0].Budget != nil || keys[1].Budget != nil {
		t.Errorf("old keys listed after the upgrade: %+v, want 2 without budgets", keys)
	}
	got, err := s.Key(ctx, later.ID)
	must(t, "Key", err)
	got.Budget = &llmproxy.Budget{USD: 10, Period: llmproxy.BudgetMonthly, TZ: "UTC"}
	got.Assignments[0].Budget = &llmproxy.Budget{USD: 1, Period: llmproxy.BudgetDaily}
	must(t, "UpdateKey of an old key", s.UpdateKey(ctx, got))
	back, err := s.Key(ctx, later.ID)
	must(t, "Key", err)
	equalKey(t, "old key given budgets", back, got)
}
