package storagetest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// newConnection returns a connection with every field set.
func newConnection(name string) *llmproxy.Connection {
	return &llmproxy.Connection{
		Name:     name,
		Provider: llmproxy.KindBedrock,
		Endpoint: "https://bedrock-runtime.eu-west-1.amazonaws.com/" + name,
		Credentials: llmproxy.Credentials{
			APIKey:          "api-key-" + name,
			AccessKeyID:     "AKIA-" + name,
			SecretAccessKey: "secret-access-key-" + name,
			SessionToken:    "session-token-" + name,
		},
		Settings: map[string]string{"region": "eu-west-1", "api_version": "2024-10-21", "name": name},
	}
}

func newModel(name, connectionID string) *llmproxy.Model {
	return &llmproxy.Model{Name: name, Remote: "remote-" + name, ConnectionID: connectionID, Weight: 3}
}

// newKey returns a key named name with a hash derived from it.
func newKey(name string, as ...llmproxy.Assignment) *llmproxy.VirtualKey {
	secret := "sk-test-" + name
	return &llmproxy.VirtualKey{
		Name:        name,
		Hash:        llmproxy.HashKey(secret),
		Prefix:      llmproxy.KeyPrefix(secret),
		ExpiresAt:   time.Date(2031, 2, 3, 4, 5, 6, 789_000_000, time.UTC),
		Assignments: as,
	}
}

// connectionWide and modelOnly return assignments with every limit set.
func connectionWide(connectionID string) llmproxy.Assignment {
	return llmproxy.Assignment{ConnectionID: connectionID, TPS: 2.5, Burst: 7, TokenLimit: 100_000, TokenWindow: 24 * time.Hour}
}

func modelOnly(modelID string) llmproxy.Assignment {
	return llmproxy.Assignment{ModelID: modelID, TPS: 0.25, Burst: 1, TokenLimit: 5_000_000, TokenWindow: 30 * time.Minute}
}

func createConnection(t *testing.T, s llmproxy.Storage, name string) *llmproxy.Connection {
	t.Helper()
	c := newConnection(name)
	must(t, "CreateConnection "+name, s.CreateConnection(t.Context(), c))
	return c
}

func createModel(t *testing.T, s llmproxy.Storage, name, connectionID string) *llmproxy.Model {
	t.Helper()
	m := newModel(name, connectionID)
	must(t, "CreateModel "+name, s.CreateModel(t.Context(), m))
	return m
}

func createKey(t *testing.T, s llmproxy.Storage, name string, as ...llmproxy.Assignment) *llmproxy.VirtualKey {
	t.Helper()
	k := newKey(name, as...)
	must(t, "CreateKey "+name, s.CreateKey(t.Context(), k))
	return k
}

// sameTime compares instants, ignoring location and monotonic readings.
func sameTime(a, b time.Time) bool { return a.Equal(b) }

// checkStamps checks times a backend set during a write made between
// before and after. Backends may round to the millisecond.
func checkStamps(t *testing.T, what string, createdAt, updatedAt, before, after time.Time) {
	t.Helper()
	lo, hi := before.Add(-time.Millisecond), after.Add(time.Millisecond)
	for _, s := range []struct {
		name string
		v    time.Time
	}{{"CreatedAt", createdAt}, {"UpdatedAt", updatedAt}} {
		if s.v.Before(lo) || s.v.After(hi) {
			t.Errorf("%s: %s = %v, want between %v and %v", what, s.name, s.v, before, after)
		}
	}
}

// equalConnection reports differences between got and want; credentials
// are compared without being printed.
func equalConnection(t *testing.T, what string, got, want *llmproxy.Connection) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil connection", what)
		return
	}
	if got.ID != want.ID || got.Name != want.Name || got.Provider != want.Provider || got.Endpoint != want.Endpoint {
		t.Errorf("%s: got {ID:%q Name:%q Provider:%q Endpoint:%q}, want {ID:%q Name:%q Provider:%q Endpoint:%q}",
			what, got.ID, got.Name, got.Provider, got.Endpoint, want.ID, want.Name, want.Provider, want.Endpoint)
	}
	if got.Credentials != want.Credentials {
		t.Errorf("%s: credentials differ (got fields %v, want %v)", what, got.Credentials.Set(), want.Credentials.Set())
	}
	if !maps.Equal(got.Settings, want.Settings) {
		t.Errorf("%s: Settings = %v, want %v", what, got.Settings, want.Settings)
	}
	if !sameTime(got.CreatedAt, want.CreatedAt) || !sameTime(got.UpdatedAt, want.UpdatedAt) {
		t.Errorf("%s: times %v/%v, want %v/%v", what, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
}

func equalModel(t *testing.T, what string, got, want *llmproxy.Model) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil model", what)
		return
	}
	g, w := *got, *want
	if !sameTime(g.CreatedAt, w.CreatedAt) || !sameTime(g.UpdatedAt, w.UpdatedAt) {
		t.Errorf("%s: times %v/%v, want %v/%v", what, g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	// The prices by value: nil only for nil.
	switch {
	case (g.Price == nil) != (w.Price == nil):
		t.Errorf("%s: price %v, want %v", what, g.Price, w.Price)
	case g.Price != nil && *g.Price != *w.Price:
		t.Errorf("%s: price %+v, want %+v", what, *g.Price, *w.Price)
	}
	g.Price, w.Price = nil, nil
	if g != w {
		t.Errorf("%s: got %+v, want %+v", what, g, w)
	}
}

func equalKey(t *testing.T, what string, got, want *llmproxy.VirtualKey) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got nil key", what)
		return
	}
	g, w := *got, *want
	for _, p := range []struct{ g, w time.Time }{{g.CreatedAt, w.CreatedAt}, {g.UpdatedAt, w.UpdatedAt}, {g.ExpiresAt, w.ExpiresAt}} {
		if !sameTime(p.g, p.w) {
			t.Errorf("%s: times (created, updated, expires) %v/%v/%v, want %v/%v/%v", what,
				g.CreatedAt, g.UpdatedAt, g.ExpiresAt, w.CreatedAt, w.UpdatedAt, w.ExpiresAt)
			break
		}
	}
	g.CreatedAt, g.UpdatedAt, g.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	w.CreatedAt, w.UpdatedAt, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	if len(g.Assignments) == 0 {
		g.Assignments = nil
	}
	if len(w.Assignments) == 0 {
		w.Assignments = nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// equalList compares a listing with the records expected, by ID.
func equalList[T any](t *testing.T, what string, got []T, want map[string]*T, id func(*T) string, equal func(*testing.T, string, *T, *T)) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		w, ok := want[id(&got[i])]
		if !ok {
			t.Errorf("%s: unexpected record %s", what, id(&got[i]))
			continue
		}
		equal(t, fmt.Sprintf("%s[%d]", what, i), &got[i], w)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
