package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

func testSharedWritesVisible(t *testing.T, a, b llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, a, "conn")
	got, err := b.Connection(ctx, c.ID)
	must(t, "b.Connection of a's write", err)
	equalConnection(t, "b sees a's connection", got, c)

	m := createModel(t, b, "model", c.ID)
	k := createKey(t, a, "key", modelOnly(m.ID))
	gk, err := b.Key(ctx, k.ID)
	must(t, "b.Key of a's write", err)
	equalKey(t, "b sees a's key", gk, k)

	k.Assignments = []llmproxy.Assignment{connectionWide(c.ID)}
	must(t, "b.UpdateKey", b.UpdateKey(ctx, k))
	gk, err = a.Key(ctx, k.ID)
	must(t, "a.Key of b's update", err)
	equalKey(t, "a sees b's update", gk, k)

	wantErr(t, "b.DeleteConnection of a connection a assigned", b.DeleteConnection(ctx, c.ID), llmproxy.ErrInUse)
	must(t, "a.DeleteKey", a.DeleteKey(ctx, k.ID))
	wantErr(t, "b.Key after a's delete", func() error { _, err := b.Key(ctx, k.ID); return err }(), llmproxy.ErrNotFound)
}

func testSharedConfigVersion(t *testing.T, a, b llmproxy.Storage) {
	ctx := t.Context()
	version := func(s llmproxy.Storage) string {
		t.Helper()
		v, err := s.ConfigVersion(ctx)
		must(t, "ConfigVersion", err)
		return v
	}
	vb := version(b)
	c := createConnection(t, a, "conn")
	if nb := version(b); nb == vb {
		t.Fatalf("b's ConfigVersion %q unchanged after a's CreateConnection", nb)
	} else {
		vb = nb
	}
	va := version(a)
	c.Endpoint = "http://changed"
	must(t, "b.UpdateConnection", b.UpdateConnection(ctx, c))
	if na := version(a); na == va {
		t.Fatalf("a's ConfigVersion %q unchanged after b's UpdateConnection", na)
	}
	must(t, "b.DeleteConnection", b.DeleteConnection(ctx, c.ID))
	if na, nb := version(a), version(b); na != nb || nb == vb {
		t.Fatalf("after b's delete: a sees %q, b sees %q (before %q); want one new version", na, nb, vb)
	}
}

// testSharedUniqueNames races the same names through both stores: exactly
// one create of each wins.
func testSharedUniqueNames(t *testing.T, a, b llmproxy.Storage) {
	ctx := t.Context()
	const names = 10
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 4*names)
	var wg sync.WaitGroup
	for _, s := range []llmproxy.Storage{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				name := fmt.Sprintf("conn-%d", i)
				results <- result{name, s.CreateConnection(ctx, newConnection(name))}
			}
		}()
	}
	wg.Wait()
	close(results)
	wins := map[string]int{}
	for r := range results {
		switch {
		case r.err == nil:
			wins[r.name]++
		case !errors.Is(r.err, llmproxy.ErrAlreadyExists):
			t.Errorf("CreateConnection %s: %v, want success or ErrAlreadyExists", r.name, r.err)
		}
	}
	for i := range names {
		if n := wins[fmt.Sprintf("conn-%d", i)]; n != 1 {
			t.Errorf("conn-%d created %d times, want once", i, n)
		}
	}
	list, err := b.Connections(ctx, llmproxy.ListOptions{})
	must(t, "Connections", err)
	if len(list) != names {
		t.Errorf("%d connections stored, want %d", len(list), names)
	}
}

// testSharedConcurrentWrites creates keys and appends usage through both
// stores at once, retrying some batches through the other store.
func testSharedConcurrentWrites(t *testing.T, a, b llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, a, "conn")
	const (
		workers = 4
		keysPer = 10
		batches = 10
		perBat  = 50
	)
	stores := []llmproxy.Storage{a, b}
	var wg sync.WaitGroup
	errs := make(chan error, 4*workers)
	for w := range workers {
		s, other := stores[w%2], stores[(w+1)%2]
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range keysPer {
				if err := s.CreateKey(ctx, newKey(fmt.Sprintf("key-%d-%d", w, i), connectionWide(c.ID))); err != nil {
					errs <- fmt.Errorf("CreateKey: %w", err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for bt := range batches {
				batch := make([]llmproxy.UsageRecord, perBat)
				for i := range batch {
					batch[i] = llmproxy.UsageRecord{
						ID:   fmt.Sprintf("u-%d-%d-%d", w, bt, i),
						Time: usageEpoch.Add(time.Duration(bt) * time.Second), KeyID: fmt.Sprintf("key_%d", w),
						Model: "model", PromptTokens: 1, TotalTokens: 1,
					}
				}
				if err := s.AppendUsage(ctx, batch); err != nil {
					errs <- fmt.Errorf("AppendUsage: %w", err)
					return
				}
				if bt%3 == 0 { // a retry that landed on the other replica
					if err := other.AppendUsage(ctx, batch); err != nil {
						errs <- fmt.Errorf("AppendUsage retried: %w", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for name, s := range map[string]llmproxy.Storage{"a": a, "b": b} {
		keys, err := s.Keys(ctx, llmproxy.ListOptions{})
		must(t, name+".Keys", err)
		if len(keys) != workers*keysPer {
			t.Errorf("%s lists %d keys, want %d", name, len(keys), workers*keysPer)
		}
		sums, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
		must(t, name+".SumUsage", err)
		var total int64
		for _, u := range sums {
			total += u.PromptTokens
		}
		if total != workers*batches*perBat {
			t.Errorf("%s sums %d usage records, want %d", name, total, workers*batches*perBat)
		}
	}
}
