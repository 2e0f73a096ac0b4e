package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/pricing"
)

func testConnectionCreate(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	before := time.Now()
	c := newConnection("generated-id")
	must(t, "CreateConnection", s.CreateConnection(ctx, c))
	after := time.Now()
	if c.ID == "" {
		t.Error("CreateConnection left ID empty")
	}
	checkStamps(t, "CreateConnection", c.CreatedAt, c.UpdatedAt, before, after)
	if !sameTime(c.CreatedAt, c.UpdatedAt) {
		t.Errorf("CreatedAt %v != UpdatedAt %v on a new record", c.CreatedAt, c.UpdatedAt)
	}

	given := newConnection("given-id")
	given.ID = "conn_given"
	must(t, "CreateConnection with ID", s.CreateConnection(ctx, given))
	if given.ID != "conn_given" {
		t.Errorf("CreateConnection replaced the given ID with %q", given.ID)
	}
	got, err := s.Connection(ctx, "conn_given")
	must(t, "Connection", err)
	equalConnection(t, "Connection(given ID)", got, given)
}

func testConnectionRoundTrip(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	full := createConnection(t, s, "full")
	bare := &llmproxy.Connection{Name: "bare", Provider: llmproxy.KindCompatible}
	must(t, "CreateConnection bare", s.CreateConnection(ctx, bare))
	// One credential alone, to catch backends that only store some.
	for _, c := range []*llmproxy.Connection{
		{Name: "api-key-only", Provider: llmproxy.KindOpenAI, Credentials: llmproxy.Credentials{APIKey: "sk-only"}},
		{Name: "session-only", Provider: llmproxy.KindBedrock, Credentials: llmproxy.Credentials{SessionToken: "tok"}},
		{Name: "unicode", Provider: "compatible", Endpoint: "http://127.0.0.1:1/v1?x=ü", Settings: map[string]string{"ключ": "値 \"quoted\"\n"}},
	} {
		must(t, "CreateConnection "+c.Name, s.CreateConnection(ctx, c))
		got, err := s.Connection(ctx, c.ID)
		must(t, "Connection", err)
		equalConnection(t, c.Name, got, c)
	}
	for _, want := range []*llmproxy.Connection{full, bare} {
		got, err := s.Connection(ctx, want.ID)
		must(t, "Connection", err)
		equalConnection(t, "Connection("+want.Name+")", got, want)
	}
	if full.Credentials.SecretAccessKey == "" || len(full.Settings) != 3 {
		t.Fatal("fixture lost fields")
	}
	list, err := s.Connections(ctx, llmproxy.ListOptions{})
	must(t, "Connections", err)
	if len(list) != 5 {
		t.Fatalf("Connections lists %d, want 5", len(list))
	}
	for i := range list {
		switch list[i].ID {
		case full.ID:
			equalConnection(t, "Connections[full]", &list[i], full)
		case bare.ID:
			equalConnection(t, "Connections[bare]", &list[i], bare)
		}
	}
}

func testConnectionUpdate(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "before")
	created := c.CreatedAt
	time.Sleep(3 * time.Millisecond)
	upd := &llmproxy.Connection{
		ID:       c.ID,
		Name:     "after",
		Provider: llmproxy.KindAzure,
		Endpoint: "https://x.openai.azure.com",
		Credentials: llmproxy.Credentials{
			APIKey: "new-key", AccessKeyID: "new-id", SecretAccessKey: "new-secret", SessionToken: "new-token",
		},
		Settings: map[string]string{"api_version": "2025-01-01"},
	}
	before := time.Now()
	must(t, "UpdateConnection", s.UpdateConnection(ctx, upd))
	after := time.Now()
	checkStamps(t, "UpdateConnection", created, upd.UpdatedAt, created, after)
	if !upd.UpdatedAt.After(created) || upd.UpdatedAt.Before(before.Add(-time.Millisecond)) {
		t.Errorf("UpdatedAt = %v, want after the update began (%v) and after CreatedAt %v", upd.UpdatedAt, before, created)
	}
	if !sameTime(upd.CreatedAt, created) {
		t.Errorf("UpdateConnection set CreatedAt %v, want the stored %v", upd.CreatedAt, created)
	}
	got, err := s.Connection(ctx, c.ID)
	must(t, "Connection", err)
	equalConnection(t, "after update", got, upd)

	// Clearing credentials and settings clears them.
	cleared := &llmproxy.Connection{ID: c.ID, Name: "after", Provider: llmproxy.KindOpenAI}
	must(t, "UpdateConnection cleared", s.UpdateConnection(ctx, cleared))
	got, err = s.Connection(ctx, c.ID)
	must(t, "Connection", err)
	equalConnection(t, "after clearing", got, cleared)
}

func testModelRoundTrip(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	before := time.Now()
	m := createModel(t, s, "gemini-flash", c.ID)
	after := time.Now()
	if m.ID == "" {
		t.Fatal("CreateModel left ID empty")
	}
	checkStamps(t, "CreateModel", m.CreatedAt, m.UpdatedAt, before, after)
	zero := &llmproxy.Model{Name: "zero-weight", Remote: "r", ConnectionID: c.ID}
	must(t, "CreateModel zero weight", s.CreateModel(ctx, zero))
	// A price override whose every field differs (fractions a float32
	// or a decimal column of few places would not keep), and a free
	// model: a zero price is a price, not none.
	given := &llmproxy.Model{ID: "model_given", Name: "given", Remote: "anthropic.claude-3-5-sonnet-20240620-v1:0", ConnectionID: c.ID, Weight: 1000,
		Price: &pricing.Price{Input: 3, Output: 15.000001, CachedInput: 0.3, CacheWrite: 3.75, CacheWrite1h: 6.1234567891}}
	must(t, "CreateModel given ID", s.CreateModel(ctx, given))
	if given.ID != "model_given" {
		t.Errorf("CreateModel replaced the given ID with %q", given.ID)
	}
	free := &llmproxy.Model{Name: "free", Remote: "r", ConnectionID: c.ID, Price: &pricing.Price{}}
	must(t, "CreateModel free", s.CreateModel(ctx, free))
	want := map[string]*llmproxy.Model{m.ID: m, zero.ID: zero, given.ID: given, free.ID: free}
	for _, w := range want {
		got, err := s.Model(ctx, w.ID)
		must(t, "Model", err)
		equalModel(t, "Model("+w.Name+")", got, w)
	}
	list, err := s.Models(ctx, llmproxy.ListOptions{})
	must(t, "Models", err)
	equalList(t, "Models", list, want, modelID, equalModel)
}

func testModelUpdate(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c1 := createConnection(t, s, "one")
	c2 := createConnection(t, s, "two")
	m := createModel(t, s, "alias", c1.ID)
	created := m.CreatedAt
	time.Sleep(3 * time.Millisecond)
	upd := &llmproxy.Model{ID: m.ID, Name: "alias-2", Remote: "remote-2", ConnectionID: c2.ID, Weight: 9}
	must(t, "UpdateModel", s.UpdateModel(ctx, upd))
	if !sameTime(upd.CreatedAt, created) || !upd.UpdatedAt.After(created) {
		t.Errorf("UpdateModel times %v/%v, want CreatedAt %v kept and UpdatedAt after it", upd.CreatedAt, upd.UpdatedAt, created)
	}
	got, err := s.Model(ctx, m.ID)
	must(t, "Model", err)
	equalModel(t, "after update", got, upd)

	// An update sets the price override, replaces it, and clears it.
	for _, p := range []*pricing.Price{
		{Input: 0.075, Output: 0.3, CachedInput: 0.01875},
		{Input: 5, Output: 25, CachedInput: 0.5, CacheWrite: 6.25, CacheWrite1h: 10},
		nil,
	} {
		upd.Price = p
		must(t, "UpdateModel price", s.UpdateModel(ctx, upd))
		got, err := s.Model(ctx, m.ID)
		must(t, "Model", err)
		equalModel(t, fmt.Sprintf("after updating the price to %v", p), got, upd)
		list, err := s.Models(ctx, llmproxy.ListOptions{})
		must(t, "Models", err)
		if len(list) != 1 {
			t.Fatalf("Models lists %d models, want 1", len(list))
		}
		equalModel(t, fmt.Sprintf("Models after updating the price to %v", p), &list[0], upd)
	}
}

func testKeyRoundTrip(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	m := createModel(t, s, "model", c.ID)
	given := modelOnly(m.ID)
	given.ID = "asg_given"
	before := time.Now()
	k := createKey(t, s, "full", connectionWide(c.ID), given)
	after := time.Now()
	if k.ID == "" {
		t.Fatal("CreateKey left ID empty")
	}
	checkStamps(t, "CreateKey", k.CreatedAt, k.UpdatedAt, before, after)
	if len(k.Assignments) != 2 || k.Assignments[0].ID == "" || k.Assignments[1].ID != "asg_given" {
		t.Fatalf("CreateKey assignments %+v: want an ID on the first and asg_given kept on the second", k.Assignments)
	}
	if k.Assignments[0].ID == k.Assignments[1].ID {
		t.Error("two assignments got one ID")
	}

	bare := &llmproxy.VirtualKey{Name: "bare", Hash: llmproxy.HashKey("bare")}
	must(t, "CreateKey bare", s.CreateKey(ctx, bare))
	farFuture := newKey("far-future", modelOnly(m.ID))
	farFuture.ExpiresAt = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	farFuture.Assignments[0].TokenWindow = 0 // lifetime quota
	farFuture.Assignments[0].TPS = 1e6
	must(t, "CreateKey far future", s.CreateKey(ctx, farFuture))

	want := map[string]*llmproxy.VirtualKey{k.ID: k, bare.ID: bare, farFuture.ID: farFuture}
	for _, w := range want {
		got, err := s.Key(ctx, w.ID)
		must(t, "Key", err)
		equalKey(t, "Key("+w.Name+")", got, w)
	}
	list, err := s.Keys(ctx, llmproxy.ListOptions{})
	must(t, "Keys", err)
	equalList(t, "Keys", list, want, keyID, equalKey)
}

func testKeyUpdateReplacesAssignments(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c1 := createConnection(t, s, "one")
	c2 := createConnection(t, s, "two")
	m1 := createModel(t, s, "m1", c1.ID)
	m2 := createModel(t, s, "m2", c2.ID)
	bare := createConnection(t, s, "no-models")
	k := createKey(t, s, "key", connectionWide(bare.ID), modelOnly(m1.ID))
	created := k.CreatedAt
	time.Sleep(3 * time.Millisecond)

	kept := k.Assignments[1]
	kept.TPS, kept.Burst, kept.TokenLimit, kept.TokenWindow = 99, 100, 101, time.Hour
	upd := &llmproxy.VirtualKey{
		ID: k.ID, Name: "renamed", Hash: llmproxy.HashKey("rotated"), Prefix: "rot",
		Assignments: []llmproxy.Assignment{modelOnly(m2.ID), kept, connectionWide(c2.ID)},
	}
	must(t, "UpdateKey", s.UpdateKey(ctx, upd))
	if len(upd.Assignments) != 3 || upd.Assignments[0].ID == "" || upd.Assignments[1].ID != kept.ID || upd.Assignments[2].ID == "" {
		t.Fatalf("UpdateKey assignments %+v: want new IDs on new ones and the kept ID kept", upd.Assignments)
	}
	if !sameTime(upd.CreatedAt, created) || !upd.UpdatedAt.After(created) {
		t.Errorf("UpdateKey times %v/%v, want CreatedAt %v kept and UpdatedAt after it", upd.CreatedAt, upd.UpdatedAt, created)
	}
	got, err := s.Key(ctx, k.ID)
	must(t, "Key", err)
	equalKey(t, "after update", got, upd)

	// The replaced connection-wide assignment is gone with the update.
	must(t, "DeleteConnection no longer assigned", s.DeleteConnection(ctx, bare.ID))
	wantErr(t, "DeleteModel still assigned", s.DeleteModel(ctx, m1.ID), llmproxy.ErrInUse)

	none := &llmproxy.VirtualKey{ID: k.ID, Name: "renamed", Hash: upd.Hash}
	must(t, "UpdateKey to no assignments", s.UpdateKey(ctx, none))
	got, err = s.Key(ctx, k.ID)
	must(t, "Key", err)
	if len(got.Assignments) != 0 {
		t.Errorf("after UpdateKey with none, assignments %+v", got.Assignments)
	}
	for _, m := range []*llmproxy.Model{m1, m2} {
		must(t, "DeleteModel no longer assigned", s.DeleteModel(ctx, m.ID))
	}
	for _, c := range []*llmproxy.Connection{c1, c2} {
		must(t, "DeleteConnection no longer referred to", s.DeleteConnection(ctx, c.ID))
	}
}

// testRecordsAreCopies checks that a caller changing a record after a write
// or a read does not change what is stored.
func testRecordsAreCopies(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	m := createModel(t, s, "m", c.ID)
	k := createKey(t, s, "k", modelOnly(m.ID))
	c.Settings["region"] = "changed"
	k.Assignments[0].TPS = 12345
	gc, err := s.Connection(ctx, c.ID)
	must(t, "Connection", err)
	gk, err := s.Key(ctx, k.ID)
	must(t, "Key", err)
	if gc.Settings["region"] != "eu-west-1" || gk.Assignments[0].TPS == 12345 {
		t.Fatal("changing a record after CreateX changed the stored record")
	}
	gc.Settings["region"] = "changed again"
	gk.Assignments[0].TPS = 54321
	gc, _ = s.Connection(ctx, c.ID)
	gk, _ = s.Key(ctx, k.ID)
	if gc.Settings["region"] != "eu-west-1" || gk.Assignments[0].TPS == 54321 {
		t.Fatal("changing a record returned by a read changed the stored record")
	}
}

func testAlreadyExists(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c1 := createConnection(t, s, "one")
	c2 := createConnection(t, s, "two")
	m1 := createModel(t, s, "alias", c1.ID)
	m2 := createModel(t, s, "other", c1.ID)
	k1 := createKey(t, s, "k1", connectionWide(c1.ID))
	k2 := createKey(t, s, "k2")
	_ = c2

	tests := []struct {
		name  string
		write func() error
	}{
		{"connection name", func() error { return s.CreateConnection(ctx, newConnection("one")) }},
		{"connection ID", func() error {
			c := newConnection("fresh")
			c.ID = c1.ID
			return s.CreateConnection(ctx, c)
		}},
		{"connection renamed onto another", func() error {
			c := newConnection("one")
			c.ID = c2.ID
			return s.UpdateConnection(ctx, c)
		}},
		{"model alias on the same connection", func() error { return s.CreateModel(ctx, newModel("alias", c1.ID)) }},
		{"model ID", func() error {
			m := newModel("fresh", c2.ID)
			m.ID = m1.ID
			return s.CreateModel(ctx, m)
		}},
		{"model renamed onto another", func() error {
			m := *m2
			m.Name = "alias"
			return s.UpdateModel(ctx, &m)
		}},
		{"key name", func() error {
			k := newKey("k1")
			k.Hash = llmproxy.HashKey("a different secret")
			return s.CreateKey(ctx, k)
		}},
		{"key hash", func() error {
			k := newKey("different name")
			k.Hash = k1.Hash
			return s.CreateKey(ctx, k)
		}},
		{"key ID", func() error {
			k := newKey("fresh")
			k.ID = k1.ID
			return s.CreateKey(ctx, k)
		}},
		{"key renamed onto another", func() error {
			k := *k2
			k.Name = "k1"
			return s.UpdateKey(ctx, &k)
		}},
		{"key rehashed onto another", func() error {
			k := *k2
			k.Hash = k1.Hash
			return s.UpdateKey(ctx, &k)
		}},
		{"assignment ID of another key", func() error {
			a := connectionWide(c2.ID)
			a.ID = k1.Assignments[0].ID
			return s.CreateKey(ctx, newKey("fresh", a))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.write(), llmproxy.ErrAlreadyExists)
		})
	}
	// Nothing was changed by the refused writes.
	got, err := s.Key(ctx, k2.ID)
	must(t, "Key", err)
	equalKey(t, "k2 after refused updates", got, k2)
	gm, err := s.Model(ctx, m2.ID)
	must(t, "Model", err)
	equalModel(t, "m2 after refused update", gm, m2)
}

func testSameAliasOnTwoConnections(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c1 := createConnection(t, s, "one")
	c2 := createConnection(t, s, "two")
	a := createModel(t, s, "gpt-4o", c1.ID)
	b := createModel(t, s, "gpt-4o", c2.ID)
	if a.ID == b.ID {
		t.Fatal("two models got one ID")
	}
	list, err := s.Models(ctx, llmproxy.ListOptions{})
	must(t, "Models", err)
	if len(list) != 2 {
		t.Fatalf("Models lists %d, want 2", len(list))
	}
	// Moving one onto the other's connection collides.
	moved := *b
	moved.ConnectionID = c1.ID
	wantErr(t, "UpdateModel onto the same connection", s.UpdateModel(ctx, &moved), llmproxy.ErrAlreadyExists)
}

func testNotFound(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	m := createModel(t, s, "model", c.ID)
	k := createKey(t, s, "key", modelOnly(m.ID))
	const missing = "does_not_exist"

	tests := []struct {
		name string
		op   func() error
	}{
		{"Connection", func() error { _, err := s.Connection(ctx, missing); return err }},
		{"Model", func() error { _, err := s.Model(ctx, missing); return err }},
		{"Key", func() error { _, err := s.Key(ctx, missing); return err }},
		{"Connection empty ID", func() error { _, err := s.Connection(ctx, ""); return err }},
		{"UpdateConnection", func() error {
			x := newConnection("x")
			x.ID = missing
			return s.UpdateConnection(ctx, x)
		}},
		{"UpdateModel", func() error {
			x := newModel("x", c.ID)
			x.ID = missing
			return s.UpdateModel(ctx, x)
		}},
		{"UpdateKey", func() error {
			x := newKey("x")
			x.ID = missing
			return s.UpdateKey(ctx, x)
		}},
		{"DeleteConnection", func() error { return s.DeleteConnection(ctx, missing) }},
		{"DeleteModel", func() error { return s.DeleteModel(ctx, missing) }},
		{"DeleteKey", func() error { return s.DeleteKey(ctx, missing) }},
		{"CreateModel on a missing connection", func() error { return s.CreateModel(ctx, newModel("x", missing)) }},
		{"UpdateModel onto a missing connection", func() error {
			x := *m
			x.ConnectionID = missing
			return s.UpdateModel(ctx, &x)
		}},
		{"CreateKey assigned a missing connection", func() error {
			return s.CreateKey(ctx, newKey("x", connectionWide(missing)))
		}},
		{"CreateKey assigned a missing model", func() error {
			return s.CreateKey(ctx, newKey("x", connectionWide(c.ID), modelOnly(missing)))
		}},
		{"UpdateKey assigned a missing connection", func() error {
			x := *k
			x.Assignments = []llmproxy.Assignment{modelOnly(m.ID), connectionWide(missing)}
			return s.UpdateKey(ctx, &x)
		}},
		{"UpdateKey assigned a missing model", func() error {
			x := *k
			x.Assignments = []llmproxy.Assignment{modelOnly(missing)}
			return s.UpdateKey(ctx, &x)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.op(), llmproxy.ErrNotFound)
		})
	}
	got, err := s.Key(ctx, k.ID)
	must(t, "Key", err)
	equalKey(t, "key after refused updates", got, k)
	gm, err := s.Model(ctx, m.ID)
	must(t, "Model", err)
	equalModel(t, "model after refused update", gm, m)
}

// testFailedWriteLeavesNothing checks that a key whose last assignment is
// refused is not stored at all (a key and its assignments are one write).
func testFailedWriteLeavesNothing(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	m := createModel(t, s, "model", c.ID)
	v0, err := s.ConfigVersion(ctx)
	must(t, "ConfigVersion", err)
	wantErr(t, "CreateKey with a missing model last",
		s.CreateKey(ctx, newKey("half", connectionWide(c.ID), modelOnly(m.ID), modelOnly("missing"))), llmproxy.ErrNotFound)
	keys, err := s.Keys(ctx, llmproxy.ListOptions{})
	must(t, "Keys", err)
	if len(keys) != 0 {
		t.Fatalf("a refused CreateKey left %d keys: %+v", len(keys), keys)
	}
	// Its assignments left nothing behind either: both can be deleted.
	must(t, "DeleteModel", s.DeleteModel(ctx, m.ID))
	must(t, "DeleteConnection", s.DeleteConnection(ctx, c.ID))
	// The name is free.
	c = createConnection(t, s, "conn")
	createKey(t, s, "half", connectionWide(c.ID))
	if v1, _ := s.ConfigVersion(ctx); v1 == v0 {
		t.Error("ConfigVersion unchanged after later writes")
	}
}

func testInUse(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	withModel := createConnection(t, s, "with-model")
	assigned := createConnection(t, s, "assigned")
	m := createModel(t, s, "model", withModel.ID)
	k1 := createKey(t, s, "k1", connectionWide(assigned.ID))
	k2 := createKey(t, s, "k2", modelOnly(m.ID))

	tests := []struct {
		name string
		op   func() error
	}{
		{"connection with a model", func() error { return s.DeleteConnection(ctx, withModel.ID) }},
		{"connection assigned to a key", func() error { return s.DeleteConnection(ctx, assigned.ID) }},
		{"model assigned to a key", func() error { return s.DeleteModel(ctx, m.ID) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.op(), llmproxy.ErrInUse)
		})
	}
	for _, id := range []string{withModel.ID, assigned.ID} {
		if _, err := s.Connection(ctx, id); err != nil {
			t.Errorf("connection %s gone after a refused delete: %v", id, err)
		}
	}
	if _, err := s.Model(ctx, m.ID); err != nil {
		t.Errorf("model gone after a refused delete: %v", err)
	}

	// Once the references are gone, the deletes succeed.
	must(t, "DeleteKey k1", s.DeleteKey(ctx, k1.ID))
	must(t, "DeleteConnection assigned", s.DeleteConnection(ctx, assigned.ID))
	wantErr(t, "DeleteConnection with a model, key still assigned the model", s.DeleteConnection(ctx, withModel.ID), llmproxy.ErrInUse)
	k2.Assignments = nil
	must(t, "UpdateKey k2 to none", s.UpdateKey(ctx, k2))
	must(t, "DeleteModel", s.DeleteModel(ctx, m.ID))
	must(t, "DeleteConnection with-model", s.DeleteConnection(ctx, withModel.ID))
}

func testInvalid(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	m := createModel(t, s, "model", c.ID)
	k := createKey(t, s, "key")
	v0, err := s.ConfigVersion(ctx)
	must(t, "ConfigVersion", err)

	conn := func(f func(*llmproxy.Connection)) *llmproxy.Connection {
		x := newConnection("new")
		f(x)
		return x
	}
	model := func(f func(*llmproxy.Model)) *llmproxy.Model {
		x := newModel("new", c.ID)
		f(x)
		return x
	}
	key := func(f func(*llmproxy.VirtualKey)) *llmproxy.VirtualKey {
		x := newKey("new", connectionWide(c.ID))
		f(x)
		return x
	}
	badConns := map[string]*llmproxy.Connection{
		"connection without name":     conn(func(x *llmproxy.Connection) { x.Name = " " }),
		"connection without provider": conn(func(x *llmproxy.Connection) { x.Provider = "" }),
	}
	badModels := map[string]*llmproxy.Model{
		"model without name":       model(func(x *llmproxy.Model) { x.Name = "" }),
		"model without remote":     model(func(x *llmproxy.Model) { x.Remote = "" }),
		"model without connection": model(func(x *llmproxy.Model) { x.ConnectionID = "" }),
		"model with negative weight": model(func(x *llmproxy.Model) {
			x.Weight = -1
		}),
	}
	badKeys := map[string]*llmproxy.VirtualKey{
		"key without name":    key(func(x *llmproxy.VirtualKey) { x.Name = "" }),
		"key without hash":    key(func(x *llmproxy.VirtualKey) { x.Hash = "" }),
		"key with short hash": key(func(x *llmproxy.VirtualKey) { x.Hash = "abc" }),
		"assignment to both": key(func(x *llmproxy.VirtualKey) {
			x.Assignments = []llmproxy.Assignment{{ConnectionID: c.ID, ModelID: m.ID}}
		}),
		"assignment to neither": key(func(x *llmproxy.VirtualKey) { x.Assignments = []llmproxy.Assignment{{TPS: 1}} }),
		"assignment with negative TPS": key(func(x *llmproxy.VirtualKey) {
			x.Assignments[0].TPS = -1
		}),
		"assignment with negative token window": key(func(x *llmproxy.VirtualKey) {
			x.Assignments[0].TokenWindow = -time.Second
		}),
		"same target twice": key(func(x *llmproxy.VirtualKey) {
			x.Assignments = append(x.Assignments, connectionWide(c.ID))
		}),
	}
	for _, name := range sortedKeys(badConns) {
		t.Run(name, func(t *testing.T) {
			x := badConns[name]
			wantErr(t, "CreateConnection", s.CreateConnection(ctx, x), llmproxy.ErrInvalid)
			x.ID = c.ID
			wantErr(t, "UpdateConnection", s.UpdateConnection(ctx, x), llmproxy.ErrInvalid)
		})
	}
	for _, name := range sortedKeys(badModels) {
		t.Run(name, func(t *testing.T) {
			x := badModels[name]
			wantErr(t, "CreateModel", s.CreateModel(ctx, x), llmproxy.ErrInvalid)
			x.ID = m.ID
			wantErr(t, "UpdateModel", s.UpdateModel(ctx, x), llmproxy.ErrInvalid)
		})
	}
	for _, name := range sortedKeys(badKeys) {
		t.Run(name, func(t *testing.T) {
			x := badKeys[name]
			wantErr(t, "CreateKey", s.CreateKey(ctx, x), llmproxy.ErrInvalid)
			x.ID = k.ID
			wantErr(t, "UpdateKey", s.UpdateKey(ctx, x), llmproxy.ErrInvalid)
		})
	}
	cs, _ := s.Connections(ctx, llmproxy.ListOptions{})
	ms, _ := s.Models(ctx, llmproxy.ListOptions{})
	ks, _ := s.Keys(ctx, llmproxy.ListOptions{})
	if len(cs) != 1 || len(ms) != 1 || len(ks) != 1 {
		t.Errorf("invalid writes stored records: %d connections, %d models, %d keys; want 1 each", len(cs), len(ms), len(ks))
	}
	gk, err := s.Key(ctx, k.ID)
	must(t, "Key", err)
	equalKey(t, "key after invalid updates", gk, k)
	if v1, _ := s.ConfigVersion(ctx); v1 != v0 {
		t.Errorf("ConfigVersion changed from %q to %q on invalid writes alone", v0, v1)
	}
}

func testDelete(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	c := createConnection(t, s, "conn")
	keep := createConnection(t, s, "keep")
	m := createModel(t, s, "model", c.ID)
	k := createKey(t, s, "key", modelOnly(m.ID))
	usage := []llmproxy.UsageRecord{{ID: "u1", Time: time.UnixMilli(1_700_000_000_000), KeyID: k.ID, Model: "model", TotalTokens: 5}}
	must(t, "AppendUsage", s.AppendUsage(ctx, usage))

	must(t, "DeleteKey", s.DeleteKey(ctx, k.ID))
	must(t, "DeleteModel", s.DeleteModel(ctx, m.ID))
	must(t, "DeleteConnection", s.DeleteConnection(ctx, c.ID))

	for name, op := range map[string]func() error{
		"Key":             func() error { _, err := s.Key(ctx, k.ID); return err },
		"Model":           func() error { _, err := s.Model(ctx, m.ID); return err },
		"Connection":      func() error { _, err := s.Connection(ctx, c.ID); return err },
		"DeleteKey again": func() error { return s.DeleteKey(ctx, k.ID) },
		"DeleteModel again": func() error {
			return s.DeleteModel(ctx, m.ID)
		},
		"DeleteConnection again": func() error { return s.DeleteConnection(ctx, c.ID) },
	} {
		wantErr(t, name+" after delete", op(), llmproxy.ErrNotFound)
	}
	cs, _ := s.Connections(ctx, llmproxy.ListOptions{})
	ms, _ := s.Models(ctx, llmproxy.ListOptions{})
	ks, _ := s.Keys(ctx, llmproxy.ListOptions{})
	if len(cs) != 1 || cs[0].ID != keep.ID || len(ms) != 0 || len(ks) != 0 {
		t.Errorf("after deletes: %v connections, %d models, %d keys; want only %s", ids(cs, connID), len(ms), len(ks), keep.ID)
	}
	sums, err := s.SumUsage(ctx, llmproxy.UsageFilter{KeyID: k.ID})
	must(t, "SumUsage", err)
	if len(sums) != 1 || sums[0].TotalTokens != 5 {
		t.Errorf("usage of a deleted key: %+v, want it kept", sums)
	}
	// The names are free again.
	c2 := createConnection(t, s, "conn")
	m2 := createModel(t, s, "model", c2.ID)
	createKey(t, s, "key", modelOnly(m2.ID))
}

// testListPaging lists large sets in pages, including after a record that
// was deleted meanwhile.
func testListPaging(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	const n = 250
	conns := map[string]*llmproxy.Connection{}
	models := map[string]*llmproxy.Model{}
	keys := map[string]*llmproxy.VirtualKey{}
	var firstConns []string
	for i := range n {
		c := newConnection(fmt.Sprintf("conn-%03d", i))
		c.Settings = map[string]string{"i": fmt.Sprint(i)}
		must(t, "CreateConnection", s.CreateConnection(ctx, c))
		conns[c.ID] = c
		if i < 3 {
			firstConns = append(firstConns, c.ID)
		}
	}
	var someModels []string
	for i := range n {
		m := newModel(fmt.Sprintf("model-%03d", i), firstConns[i%3])
		m.Weight = i
		must(t, "CreateModel", s.CreateModel(ctx, m))
		models[m.ID] = m
		if i < 5 {
			someModels = append(someModels, m.ID)
		}
	}
	for i := range n {
		var as []llmproxy.Assignment
		for j := range i % 4 { // 0 to 3 assignments, so pages split keys of varied sizes
			if j%2 == 0 {
				a := modelOnly(someModels[(i+j)%5])
				a.TokenLimit = int64(i)
				as = append(as, a)
			} else {
				as = append(as, connectionWide(firstConns[(i+j)%3]))
			}
		}
		k := newKey(fmt.Sprintf("key-%03d", i), as...)
		must(t, "CreateKey", s.CreateKey(ctx, k))
		keys[k.ID] = k
	}

	for _, limit := range []int{1, 7, 100, n, n + 1} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			equalList(t, "Connections", listAll(t, s.Connections, connID, limit), conns, connID, equalConnection)
			equalList(t, "Models", listAll(t, s.Models, modelID, limit), models, modelID, equalModel)
			equalList(t, "Keys", listAll(t, s.Keys, keyID, limit), keys, keyID, equalKey)
		})
	}

	all, err := s.Keys(ctx, llmproxy.ListOptions{})
	must(t, "Keys", err)
	if len(all) != n {
		t.Fatalf("Keys without a limit lists %d, want %d", len(all), n)
	}
	// After a deleted record, the listing continues with the next one.
	gone := all[100].ID
	must(t, "DeleteKey", s.DeleteKey(ctx, gone))
	rest, err := s.Keys(ctx, llmproxy.ListOptions{After: gone, Limit: 3})
	must(t, "Keys after a deleted ID", err)
	if got, want := ids(rest, keyID), ids(all[101:104], keyID); !slices.Equal(got, want) {
		t.Errorf("Keys after deleted %s = %v, want %v", gone, got, want)
	}
	last, err := s.Keys(ctx, llmproxy.ListOptions{After: all[n-1].ID})
	must(t, "Keys after the last", err)
	if len(last) != 0 {
		t.Errorf("Keys after the last ID lists %d", len(last))
	}
}

// testConfigVersion checks that every kind of configuration write changes
// the version, and that reads alone do not.
func testConfigVersion(t *testing.T, s llmproxy.Storage) {
	ctx := t.Context()
	version := func() string {
		t.Helper()
		v, err := s.ConfigVersion(ctx)
		must(t, "ConfigVersion", err)
		return v
	}
	v := version()
	if again := version(); again != v {
		t.Fatalf("ConfigVersion changed without writes: %q then %q", v, again)
	}
	var (
		c = newConnection("conn")
		m = newModel("model", "")
		k = newKey("key")
	)
	steps := []struct {
		name  string
		write func() error
	}{
		{"CreateConnection", func() error { return s.CreateConnection(ctx, c) }},
		{"UpdateConnection", func() error { c.Endpoint = "http://changed"; return s.UpdateConnection(ctx, c) }},
		{"CreateModel", func() error { m.ConnectionID = c.ID; return s.CreateModel(ctx, m) }},
		{"UpdateModel", func() error { m.Weight++; return s.UpdateModel(ctx, m) }},
		{"CreateKey", func() error { k.Assignments = []llmproxy.Assignment{modelOnly(m.ID)}; return s.CreateKey(ctx, k) }},
		{"UpdateKey limits only", func() error { k.Assignments[0].TPS = 42; return s.UpdateKey(ctx, k) }},
		{"UpdateKey", func() error { k.Assignments = nil; return s.UpdateKey(ctx, k) }},
		{"DeleteKey", func() error { return s.DeleteKey(ctx, k.ID) }},
		{"DeleteModel", func() error { return s.DeleteModel(ctx, m.ID) }},
		{"DeleteConnection", func() error { return s.DeleteConnection(ctx, c.ID) }},
	}
	seen := map[string]string{v: "start"}
	for _, step := range steps {
		must(t, step.name, step.write())
		nv := version()
		if nv == v {
			t.Errorf("ConfigVersion %q unchanged after %s", nv, step.name)
		} else if prev, dup := seen[nv]; dup {
			t.Errorf("ConfigVersion after %s is %q, as after %s", step.name, nv, prev)
		}
		seen[nv] = step.name
		v = nv
		if again := version(); again != v {
			t.Errorf("ConfigVersion changed without writes after %s: %q then %q", step.name, v, again)
		}
	}
}
