// Package memory is an in-memory llmproxy.Storage: the reference backend
// for the conformance suite, and a store for tests and examples. Nothing
// survives the process, and credentials are kept as they are.
package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// Store is an in-memory llmproxy.Storage, safe for concurrent use. The
// zero value is not usable; call New.
type Store struct {
	mu          sync.RWMutex
	version     int64
	connections map[string]llmproxy.Connection
	models      map[string]llmproxy.Model
	keys        map[string]llmproxy.VirtualKey
	usage       []llmproxy.UsageRecord
	usageIDs    map[string]bool
	rollups     map[llmproxy.UsageRow]*llmproxy.UsageRow // by group (sums zero)
	hourly      map[hourKey]*llmproxy.TrafficPoint       // traffic.go

	// responses are the Responses API's stored responses (responses.go),
	// under their own lock: their payloads are copied while it is held,
	// which configuration reads should not wait for.
	responsesMu sync.RWMutex
	responses   map[string]llmproxy.StoredResponse

	outbox outbox // budget alert deliveries (outbox.go)
}

var (
	_ llmproxy.Storage       = (*Store)(nil)
	_ llmproxy.ResponseStore = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{
		connections: map[string]llmproxy.Connection{},
		models:      map[string]llmproxy.Model{},
		keys:        map[string]llmproxy.VirtualKey{},
		usageIDs:    map[string]bool{},
		rollups:     map[llmproxy.UsageRow]*llmproxy.UsageRow{},
		hourly:      map[hourKey]*llmproxy.TrafficPoint{},
		responses:   map[string]llmproxy.StoredResponse{},
	}
}

func now() time.Time { return time.Now().UTC() }

// Records are copied on the way in and out, so callers never share a map
// or slice with the store.
func copyConnection(c llmproxy.Connection) llmproxy.Connection {
	if len(c.Settings) == 0 {
		c.Settings = nil
	} else {
		c.Settings = maps.Clone(c.Settings)
	}
	return c
}

func copyKey(k llmproxy.VirtualKey) llmproxy.VirtualKey {
	k.Budget = copyBudget(k.Budget)
	if len(k.Assignments) == 0 {
		k.Assignments = nil
	} else {
		k.Assignments = slices.Clone(k.Assignments)
		for i := range k.Assignments {
			k.Assignments[i].Budget = copyBudget(k.Assignments[i].Budget)
		}
	}
	return k
}

// copyBudget copies b, so that neither the caller nor the store can
// change the other's budget through the pointer.
func copyBudget(b *llmproxy.Budget) *llmproxy.Budget {
	if b == nil {
		return nil
	}
	c := *b
	if b.Alerts != nil {
		c.Alerts = append([]float64{}, b.Alerts...)
	}
	return &c
}

// list returns the records of m after opts.After in ID order.
func list[T any](m map[string]T, opts llmproxy.ListOptions, clone func(T) T) []T {
	ids := make([]string, 0, len(m))
	for id := range m {
		if id > opts.After {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if opts.Limit > 0 && len(ids) > opts.Limit {
		ids = ids[:opts.Limit]
	}
	var out []T
	for _, id := range ids {
		out = append(out, clone(m[id]))
	}
	return out
}

// ---- connections ----

func (s *Store) connectionNameTaken(name, except string) bool {
	for id, c := range s.connections {
		if c.Name == name && id != except {
			return true
		}
	}
	return false
}

// CreateConnection stores a new connection.
func (s *Store) CreateConnection(ctx context.Context, c *llmproxy.Connection) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.ID
	if id == "" {
		id = llmproxy.NewID("conn")
	}
	if _, dup := s.connections[id]; dup {
		return fmt.Errorf("%w: connection ID %q", llmproxy.ErrAlreadyExists, id)
	}
	if s.connectionNameTaken(c.Name, "") {
		return fmt.Errorf("%w: connection name %q", llmproxy.ErrAlreadyExists, c.Name)
	}
	t := now()
	c.ID, c.CreatedAt, c.UpdatedAt = id, t, t
	s.connections[id] = copyConnection(*c)
	s.version++
	return nil
}

// Connection returns the connection with the given ID.
func (s *Store) Connection(ctx context.Context, id string) (*llmproxy.Connection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.connections[id]
	if !ok {
		return nil, fmt.Errorf("%w: connection %q", llmproxy.ErrNotFound, id)
	}
	c = copyConnection(c)
	return &c, nil
}

// Connections lists connections in ID order.
func (s *Store) Connections(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Connection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return list(s.connections, opts, copyConnection), nil
}

// UpdateConnection replaces the stored connection with c.ID.
func (s *Store) UpdateConnection(ctx context.Context, c *llmproxy.Connection) error {
	if err := c.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.connections[c.ID]
	if !ok {
		return fmt.Errorf("%w: connection %q", llmproxy.ErrNotFound, c.ID)
	}
	if s.connectionNameTaken(c.Name, c.ID) {
		return fmt.Errorf("%w: connection name %q", llmproxy.ErrAlreadyExists, c.Name)
	}
	c.CreatedAt, c.UpdatedAt = old.CreatedAt, now()
	s.connections[c.ID] = copyConnection(*c)
	s.version++
	return nil
}

// keysUsing counts the keys with an assignment that matches.
func (s *Store) keysUsing(match func(a *llmproxy.Assignment) bool) int {
	n := 0
	for _, k := range s.keys {
		for i := range k.Assignments {
			if match(&k.Assignments[i]) {
				n++
				break
			}
		}
	}
	return n
}

// DeleteConnection deletes a connection no model or assignment refers to.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.connections[id]; !ok {
		return fmt.Errorf("%w: connection %q", llmproxy.ErrNotFound, id)
	}
	models := 0
	for _, m := range s.models {
		if m.ConnectionID == id {
			models++
		}
	}
	keys := s.keysUsing(func(a *llmproxy.Assignment) bool { return a.ConnectionID == id })
	if models > 0 || keys > 0 {
		return fmt.Errorf("%w: connection %q has %d models and is assigned to %d keys", llmproxy.ErrInUse, id, models, keys)
	}
	delete(s.connections, id)
	s.version++
	return nil
}

// ---- models ----

// copyModel copies m with its own Price, so that neither the caller nor
// the store can change the other's through the pointer.
func copyModel(m llmproxy.Model) llmproxy.Model {
	if m.Price != nil {
		p := *m.Price
		m.Price = &p
	}
	return m
}

func (s *Store) checkModel(m *llmproxy.Model) error {
	if _, ok := s.connections[m.ConnectionID]; !ok {
		return fmt.Errorf("%w: connection %q of model %q", llmproxy.ErrNotFound, m.ConnectionID, m.Name)
	}
	for id, o := range s.models {
		if id != m.ID && o.Name == m.Name && o.ConnectionID == m.ConnectionID {
			return fmt.Errorf("%w: model %q on connection %q", llmproxy.ErrAlreadyExists, m.Name, m.ConnectionID)
		}
	}
	return nil
}

// CreateModel stores a new model on an existing connection.
func (s *Store) CreateModel(ctx context.Context, m *llmproxy.Model) error {
	if err := m.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	probe := *m
	if probe.ID == "" {
		probe.ID = llmproxy.NewID("model")
	}
	if _, dup := s.models[probe.ID]; dup {
		return fmt.Errorf("%w: model ID %q", llmproxy.ErrAlreadyExists, probe.ID)
	}
	if err := s.checkModel(&probe); err != nil {
		return err
	}
	t := now()
	m.ID, m.CreatedAt, m.UpdatedAt = probe.ID, t, t
	s.models[m.ID] = copyModel(*m)
	s.version++
	return nil
}

// Model returns the model with the given ID.
func (s *Store) Model(ctx context.Context, id string) (*llmproxy.Model, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.models[id]
	if !ok {
		return nil, fmt.Errorf("%w: model %q", llmproxy.ErrNotFound, id)
	}
	m = copyModel(m)
	return &m, nil
}

// Models lists models in ID order.
func (s *Store) Models(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Model, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return list(s.models, opts, copyModel), nil
}

// UpdateModel replaces the stored model with m.ID.
func (s *Store) UpdateModel(ctx context.Context, m *llmproxy.Model) error {
	if err := m.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.models[m.ID]
	if !ok {
		return fmt.Errorf("%w: model %q", llmproxy.ErrNotFound, m.ID)
	}
	if err := s.checkModel(m); err != nil {
		return err
	}
	m.CreatedAt, m.UpdatedAt = old.CreatedAt, now()
	s.models[m.ID] = copyModel(*m)
	s.version++
	return nil
}

// DeleteModel deletes a model no assignment refers to.
func (s *Store) DeleteModel(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.models[id]; !ok {
		return fmt.Errorf("%w: model %q", llmproxy.ErrNotFound, id)
	}
	if keys := s.keysUsing(func(a *llmproxy.Assignment) bool { return a.ModelID == id }); keys > 0 {
		return fmt.Errorf("%w: model %q is assigned to %d keys", llmproxy.ErrInUse, id, keys)
	}
	delete(s.models, id)
	s.version++
	return nil
}

// ---- keys ----

// checkKey checks k's unique fields and assignment targets, and returns
// its assignments with IDs.
func (s *Store) checkKey(k *llmproxy.VirtualKey) ([]llmproxy.Assignment, error) {
	assignmentIDs := map[string]bool{}
	for id, o := range s.keys {
		if id == k.ID {
			continue
		}
		switch {
		case o.Name == k.Name:
			return nil, fmt.Errorf("%w: key name %q", llmproxy.ErrAlreadyExists, k.Name)
		case o.Hash == k.Hash:
			return nil, fmt.Errorf("%w: a key with this secret", llmproxy.ErrAlreadyExists)
		}
		for _, a := range o.Assignments {
			assignmentIDs[a.ID] = true
		}
	}
	as := slices.Clone(k.Assignments)
	for i := range as {
		a := &as[i]
		if a.ID == "" {
			a.ID = llmproxy.NewID("asg")
		}
		if assignmentIDs[a.ID] {
			return nil, fmt.Errorf("%w: key %q: assignment ID %q", llmproxy.ErrAlreadyExists, k.Name, a.ID)
		}
		assignmentIDs[a.ID] = true
		var ok bool
		if a.ModelID != "" {
			_, ok = s.models[a.ModelID]
		} else {
			_, ok = s.connections[a.ConnectionID]
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s assigned to key %q", llmproxy.ErrNotFound, a.Target(), k.Name)
		}
	}
	if len(as) == 0 {
		as = nil
	}
	return as, nil
}

// CreateKey stores a new key with its assignments.
func (s *Store) CreateKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	probe := *k
	if probe.ID == "" {
		probe.ID = llmproxy.NewID("key")
	}
	if _, dup := s.keys[probe.ID]; dup {
		return fmt.Errorf("%w: key ID %q", llmproxy.ErrAlreadyExists, probe.ID)
	}
	as, err := s.checkKey(&probe)
	if err != nil {
		return err
	}
	t := now()
	k.ID, k.CreatedAt, k.UpdatedAt, k.Assignments = probe.ID, t, t, as
	s.keys[k.ID] = copyKey(*k)
	s.version++
	return nil
}

// Key returns the key with the given ID.
func (s *Store) Key(ctx context.Context, id string) (*llmproxy.VirtualKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: key %q", llmproxy.ErrNotFound, id)
	}
	k = copyKey(k)
	return &k, nil
}

// Keys lists keys in ID order.
func (s *Store) Keys(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.VirtualKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return list(s.keys, opts, copyKey), nil
}

// UpdateKey replaces the stored key with k.ID, assignments included.
func (s *Store) UpdateKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.keys[k.ID]
	if !ok {
		return fmt.Errorf("%w: key %q", llmproxy.ErrNotFound, k.ID)
	}
	as, err := s.checkKey(k)
	if err != nil {
		return err
	}
	k.CreatedAt, k.UpdatedAt, k.Assignments = old.CreatedAt, now(), as
	s.keys[k.ID] = copyKey(*k)
	s.version++
	return nil
}

// DeleteKey deletes a key; its usage records stay.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[id]; !ok {
		return fmt.Errorf("%w: key %q", llmproxy.ErrNotFound, id)
	}
	delete(s.keys, id)
	s.version++
	return nil
}

// ConfigVersion returns a counter of configuration writes.
func (s *Store) ConfigVersion(ctx context.Context) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return strconv.FormatInt(s.version, 10), nil
}

// ---- usage ----

// AppendUsage appends records, skipping IDs already stored.
func (s *Store) AppendUsage(ctx context.Context, records []llmproxy.UsageRecord) error {
	for _, r := range records {
		if r.ID == "" {
			return fmt.Errorf("%w: usage record without an ID", llmproxy.ErrInvalid)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		if s.usageIDs[r.ID] {
			continue
		}
		s.usageIDs[r.ID] = true
		if !r.CostKnown {
			r.CostMicros = 0 // unknown, as the SQL ledger's NULL
		}
		s.usage = append(s.usage, r)
		s.rollUp(&r)
		s.rollUpHour(&r)
	}
	return nil
}

// SumUsage sums the selected records by key and model alias.
func (s *Store) SumUsage(ctx context.Context, f llmproxy.UsageFilter) ([]llmproxy.UsageSummary, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type group struct{ key, model string }
	sums := map[group]*llmproxy.UsageSummary{}
	for _, r := range s.usage {
		switch {
		case f.KeyID != "" && r.KeyID != f.KeyID,
			f.AssignmentID != "" && r.AssignmentID != f.AssignmentID,
			f.Model != "" && r.Model != f.Model,
			f.ConnectionID != "" && r.ConnectionID != f.ConnectionID,
			!f.Since.IsZero() && r.Time.Before(f.Since),
			!f.Until.IsZero() && !r.Time.Before(f.Until):
			continue
		}
		g := group{r.KeyID, r.Model}
		u := sums[g]
		if u == nil {
			u = &llmproxy.UsageSummary{KeyID: r.KeyID, Model: r.Model}
			sums[g] = u
		}
		u.Requests++
		u.PromptTokens += r.PromptTokens
		u.CompletionTokens += r.CompletionTokens
		u.TotalTokens += r.TotalTokens
		u.CacheReadTokens += r.CacheReadTokens
		u.CacheWriteTokens += r.CacheWriteTokens
		if r.Estimated {
			u.EstimatedTokens += r.TotalTokens
		}
		if r.CostKnown {
			u.CostMicros += r.CostMicros
		} else {
			u.UnknownCost++
		}
	}
	out := make([]llmproxy.UsageSummary, 0, len(sums))
	for _, u := range sums {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].KeyID != out[j].KeyID {
			return out[i].KeyID < out[j].KeyID
		}
		return out[i].Model < out[j].Model
	})
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Close does nothing.
func (s *Store) Close() error { return nil }
