package admin

import (
	"math"

	"context"
	"errors"
	"fmt"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"strings"

	"github.com/go-llm-proxy/llmproxy"
)

// MaxModelWeight is the largest weight a model may have. The Gateway
// sums the weights of an alias's models to pick one; the cap keeps that
// sum far from overflowing.
const MaxModelWeight = 1_000_000

// AddModel validates m and stores it. m.ConnectionID may name the
// connection by ID or by name; the stored record holds its ID. An alias
// may exist once per connection. The weight is 0 (meaning 1) to
// MaxModelWeight.
func (a *Service) AddModel(ctx context.Context, m *llmproxy.Model) error {
	if err := checkModelFields(m); err != nil {
		return err
	}
	if strings.TrimSpace(m.ConnectionID) == "" {
		return adminErrorf(llmproxy.ErrInvalid, "model %q needs a connection ID", m.Name)
	}
	c, err := a.ConnectionByIDOrName(ctx, m.ConnectionID)
	if err != nil {
		return err
	}
	m.ConnectionID = c.ID
	if err := a.checkModel(ctx, m, c); err != nil {
		return err
	}
	m.ID = ""
	if err := a.Storage.CreateModel(ctx, m); err != nil {
		switch {
		case errors.Is(err, llmproxy.ErrAlreadyExists):
			return modelExists(m, c)
		case errors.Is(err, llmproxy.ErrNotFound):
			return adminErrorf(llmproxy.ErrNotFound, "connection %q not found", c.ID)
		}
		return fmt.Errorf("storing model %q: %w", m.Name, err)
	}
	return nil
}

// checkModelFields trims m's alias and remote name and checks them and
// the weight.
func checkModelFields(m *llmproxy.Model) error {
	m.Name = strings.TrimSpace(m.Name)
	m.Remote = strings.TrimSpace(m.Remote)
	switch {
	case m.Name == "":
		return adminErrorf(llmproxy.ErrInvalid, "a model needs a name (the alias clients send)")
	case m.Remote == "":
		return adminErrorf(llmproxy.ErrInvalid, "model %q needs a remote model name", m.Name)
	case m.Weight < 0:
		return adminErrorf(llmproxy.ErrInvalid, "model %q: weight must not be negative", m.Name)
	case m.Weight > MaxModelWeight:
		return adminErrorf(llmproxy.ErrInvalid, "model %q: weight must be at most %d", m.Name, MaxModelWeight)
	}
	return checkPrice(m)
}

// checkPrice checks a model's price override: dollars per million
// tokens, each finite and not negative.
func checkPrice(m *llmproxy.Model) error {
	p := m.Price
	if p == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"input price", p.Input}, {"output price", p.Output}, {"cached input price", p.CachedInput},
		{"cache write price", p.CacheWrite}, {"1-hour cache write price", p.CacheWrite1h}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return adminErrorf(llmproxy.ErrInvalid, "model %q: the %s must be a non-negative number of dollars per million tokens, got %v", m.Name, f.name, f.v)
		}
	}
	return nil
}

// checkModel checks m, on connection c, as a record and against the
// stored models: its (alias, connection) pair must be free, m itself
// aside.
func (a *Service) checkModel(ctx context.Context, m *llmproxy.Model, c *llmproxy.Connection) error {
	if err := m.Validate(); err != nil {
		return err
	}
	models, err := a.Storage.Models(ctx, llmproxy.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range models {
		if o.Name == m.Name && o.ConnectionID == c.ID && o.ID != m.ID {
			return modelExists(m, c)
		}
	}
	return nil
}

func modelExists(m *llmproxy.Model, c *llmproxy.Connection) error {
	return adminErrorf(llmproxy.ErrAlreadyExists, "model %q already exists on connection %q", m.Name, c.Name)
}

// ModelUpdate is a change to a model. Nil fields stay as they are.
type ModelUpdate struct {
	// Name is the alias clients send; unique per connection.
	Name *string
	// Remote is the provider's model name.
	Remote *string
	// Weight is the model's share among the models of its alias: 0
	// (meaning 1) to MaxModelWeight.
	Weight *int
	// ConnectionID, when set, must name the model's own connection (by ID
	// or name): a model does not move to another connection, since the
	// keys assigned to it, or to either connection, would silently gain
	// or lose it. Add the model on the other connection and delete this
	// one instead.
	ConnectionID *string
	// Price, when set, replaces the model's price override (dollars per
	// million tokens); ClearPrice removes it, so that the price table
	// applies again.
	Price      *pricing.Price
	ClearPrice bool
}

// IsZero reports whether u changes nothing.
func (u ModelUpdate) IsZero() bool {
	return u.Name == nil && u.Remote == nil && u.Weight == nil && u.ConnectionID == nil && u.Price == nil && !u.ClearPrice
}

// UpdateModel changes the model with the given ID, in one write, and
// returns it as stored. The result is checked as AddModel checks a new
// model.
func (a *Service) UpdateModel(ctx context.Context, id string, u ModelUpdate) (*llmproxy.Model, error) {
	cur, err := a.Model(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.IsZero() {
		return nil, adminErrorf(llmproxy.ErrInvalid, "nothing to change: give a name, a remote model name, a weight or a price")
	}
	c, err := a.Storage.Connection(ctx, cur.ConnectionID)
	if err != nil {
		if errors.Is(err, llmproxy.ErrNotFound) {
			return nil, adminErrorf(llmproxy.ErrNotFound, "connection %q of model %q not found", cur.ConnectionID, cur.ID)
		}
		return nil, err
	}
	if u.ConnectionID != nil {
		if to := strings.TrimSpace(*u.ConnectionID); to != c.ID && to != c.Name {
			return nil, adminErrorf(llmproxy.ErrInvalid, "model %q (%s) cannot move from connection %q to %q: add the model on that connection and delete this one", cur.Name, cur.ID, c.Name, to)
		}
	}
	m := *cur
	if u.Name != nil {
		m.Name = *u.Name
	}
	if u.Remote != nil {
		m.Remote = *u.Remote
	}
	if u.Weight != nil {
		m.Weight = *u.Weight
	}
	switch {
	case u.Price != nil && u.ClearPrice:
		return nil, adminErrorf(llmproxy.ErrInvalid, "give a price or clear it, not both")
	case u.Price != nil:
		p := *u.Price
		m.Price = &p
	case u.ClearPrice:
		m.Price = nil
	}
	if err := checkModelFields(&m); err != nil {
		return nil, err
	}
	if err := a.checkModel(ctx, &m, c); err != nil {
		return nil, err
	}
	if err := a.Storage.UpdateModel(ctx, &m); err != nil {
		switch {
		case errors.Is(err, llmproxy.ErrAlreadyExists):
			return nil, modelExists(&m, c)
		case errors.Is(err, llmproxy.ErrNotFound):
			return nil, adminErrorf(llmproxy.ErrNotFound, "model %q no longer exists", cur.ID)
		}
		return nil, fmt.Errorf("updating model %q: %w", cur.ID, err)
	}
	return &m, nil
}

// ListModels lists models in ID order.
func (a *Service) ListModels(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Model, error) {
	return a.Storage.Models(ctx, opts)
}

// Model returns the model with the given ID.
func (a *Service) Model(ctx context.Context, id string) (*llmproxy.Model, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, adminErrorf(llmproxy.ErrInvalid, "no model ID given")
	}
	m, err := a.Storage.Model(ctx, id)
	if errors.Is(err, llmproxy.ErrNotFound) {
		return nil, adminErrorf(llmproxy.ErrNotFound, "model %q not found", id)
	}
	return m, err
}

// DeleteModel deletes the model with the given ID. A model that a key is
// assigned is not deleted (llmproxy.ErrInUse).
func (a *Service) DeleteModel(ctx context.Context, id string) (*llmproxy.Model, error) {
	m, err := a.Model(ctx, id)
	if err != nil {
		return nil, err
	}
	if keys := a.keysUsing(ctx, func(as *llmproxy.Assignment) bool { return as.ModelID == m.ID }); len(keys) > 0 {
		return nil, adminErrorf(llmproxy.ErrInUse, "model %q (%s) is assigned to keys: %s; unassign it first", m.Name, m.ID, strings.Join(keys, ", "))
	}
	if err := a.Storage.DeleteModel(ctx, m.ID); err != nil {
		return nil, a.deleteError("model", m.ID, err)
	}
	return m, nil
}
