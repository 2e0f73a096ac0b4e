package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/pricing"
	"github.com/go-llm-proxy/llmproxy/secret"
)

// Referential integrity without transactions.
//
// A model must name an existing connection, an assignment an existing
// connection or model, and a connection or model may not be deleted while
// something refers to it. Each rule is checked by a query just before the
// single-document write. Without a multi-document transaction this leaves a
// race: a model created on a connection that another client deletes between
// the check and the write ends up pointing at nothing (likewise an
// assignment and its model). It is accepted because
//   - configuration writes are rare, made by an admin through the CLI or
//     the admin API, so two opposite writes on the same records within
//     milliseconds are unlikely;
//   - a dangling reference is harmless: the Gateway resolves references in
//     its snapshot and skips a model or an assignment whose target is gone,
//     and the admin can still delete the orphan;
//   - closing it would need a lock document or transactions, which FerretDB
//     and a standalone MongoDB do not have.

// connectionDoc is the stored form of a Connection.
type connectionDoc struct {
	ID          string            `bson:"_id"`
	Name        string            `bson:"name"`
	Provider    string            `bson:"provider"`
	Endpoint    string            `bson:"endpoint"`
	Credentials []byte            `bson:"credentials,omitempty"` // sealed
	Settings    map[string]string `bson:"settings,omitempty"`
	CreatedAt   time.Time         `bson:"created_at"`
	UpdatedAt   time.Time         `bson:"updated_at"`
}

func (s *Store) connectionDoc(c *llmproxy.Connection) (*connectionDoc, error) {
	sealed, err := secret.SealCredentials(s.sealer, c.Credentials)
	if err != nil {
		return nil, fmt.Errorf("mongodb: connection %q: %w", c.Name, err)
	}
	return &connectionDoc{
		ID:          c.ID,
		Name:        c.Name,
		Provider:    c.Provider,
		Endpoint:    c.Endpoint,
		Credentials: sealed,
		Settings:    c.Settings,
		CreatedAt:   c.CreatedAt,
		UpdatedAt:   c.UpdatedAt,
	}, nil
}

func (s *Store) connection(d *connectionDoc) (llmproxy.Connection, error) {
	creds, err := secret.OpenCredentials(s.sealer, d.Credentials)
	if err != nil {
		return llmproxy.Connection{}, fmt.Errorf("mongodb: connection %q credentials: %w", d.Name, err)
	}
	settings := d.Settings
	if len(settings) == 0 {
		settings = nil
	}
	return llmproxy.Connection{
		ID:          d.ID,
		Name:        d.Name,
		Provider:    d.Provider,
		Endpoint:    d.Endpoint,
		Credentials: creds,
		Settings:    settings,
		CreatedAt:   d.CreatedAt,
		UpdatedAt:   d.UpdatedAt,
	}, nil
}

// CreateConnection stores a new connection. Names are unique (a unique
// index).
func (s *Store) CreateConnection(ctx context.Context, c *llmproxy.Connection) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.ID == "" {
		c.ID = llmproxy.NewID("conn")
	}
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	doc, err := s.connectionDoc(c)
	if err != nil {
		return err
	}
	_, err = s.connections.InsertOne(ctx, doc)
	if s.isDuplicate(err) {
		return fmt.Errorf("%w: a connection named %q (or with ID %s) exists", llmproxy.ErrAlreadyExists, c.Name, c.ID)
	}
	if err != nil {
		return fmt.Errorf("mongodb: create connection: %w", err)
	}
	return s.afterWrite(ctx, nil)
}

// Connection returns the connection with the given ID.
func (s *Store) Connection(ctx context.Context, id string) (*llmproxy.Connection, error) {
	d, err := findByID[connectionDoc](ctx, s.connections, "connection", id)
	if err != nil {
		return nil, err
	}
	c, err := s.connection(d)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Connections lists connections in ID order.
func (s *Store) Connections(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Connection, error) {
	docs, err := findPage[connectionDoc](ctx, s.connections, opts)
	if err != nil {
		return nil, err
	}
	out := make([]llmproxy.Connection, 0, len(docs))
	for i := range docs {
		c, err := s.connection(&docs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// UpdateConnection replaces the stored connection with c.ID; its creation
// time stays.
func (s *Store) UpdateConnection(ctx context.Context, c *llmproxy.Connection) error {
	if err := c.Validate(); err != nil {
		return err
	}
	doc, err := s.connectionDoc(c)
	if err != nil {
		return err
	}
	updatedAt := now()
	set := bson.D{
		{Key: "name", Value: doc.Name},
		{Key: "provider", Value: doc.Provider},
		{Key: "endpoint", Value: doc.Endpoint},
		{Key: "updated_at", Value: updatedAt},
	}
	var unset bson.D
	if doc.Credentials != nil {
		set = append(set, bson.E{Key: "credentials", Value: doc.Credentials})
	} else {
		unset = append(unset, bson.E{Key: "credentials", Value: ""})
	}
	if len(doc.Settings) > 0 {
		set = append(set, bson.E{Key: "settings", Value: doc.Settings})
	} else {
		unset = append(unset, bson.E{Key: "settings", Value: ""})
	}
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	createdAt, err := s.update(ctx, s.connections, c.ID, update)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("%w: connection %s", llmproxy.ErrNotFound, c.ID)
	case s.isDuplicate(err):
		return fmt.Errorf("%w: a connection named %q exists", llmproxy.ErrAlreadyExists, c.Name)
	case err != nil:
		return fmt.Errorf("mongodb: update connection: %w", err)
	}
	c.CreatedAt, c.UpdatedAt = createdAt, updatedAt
	return s.afterWrite(ctx, nil)
}

// DeleteConnection deletes a connection that no model or assignment refers
// to (ErrInUse otherwise). See the race note at the top of this file.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	used, err := exists(ctx, s.models, bson.D{{Key: "connection_id", Value: id}})
	if err != nil {
		return err
	}
	if used {
		return fmt.Errorf("%w: connection %s has models", llmproxy.ErrInUse, id)
	}
	used, err = exists(ctx, s.keys, bson.D{{Key: "assignments.connection_id", Value: id}})
	if err != nil {
		return err
	}
	if used {
		return fmt.Errorf("%w: connection %s is assigned to keys", llmproxy.ErrInUse, id)
	}
	res, err := s.connections.DeleteOne(ctx, byID(id))
	if err != nil {
		return fmt.Errorf("mongodb: delete connection: %w", err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%w: connection %s", llmproxy.ErrNotFound, id)
	}
	return s.afterWrite(ctx, nil)
}

// modelDoc is the stored form of a Model.
type modelDoc struct {
	ID           string `bson:"_id"`
	Name         string `bson:"name"`
	Remote       string `bson:"remote"`
	ConnectionID string `bson:"connection_id"`
	Weight       int    `bson:"weight"`
	// Price came after the first release: absent (in documents written
	// before too) means no override, so no schema step rewrites models.
	Price     *priceDoc `bson:"price,omitempty"`
	CreatedAt time.Time `bson:"created_at"`
	UpdatedAt time.Time `bson:"updated_at"`
}

// priceDoc is the stored form of a Model's price override, in US
// dollars per million tokens.
type priceDoc struct {
	Input        float64 `bson:"input"`
	Output       float64 `bson:"output"`
	CachedInput  float64 `bson:"cached_input"`
	CacheWrite   float64 `bson:"cache_write"`
	CacheWrite1h float64 `bson:"cache_write_1h"`
}

func newPriceDoc(p *pricing.Price) *priceDoc {
	if p == nil {
		return nil
	}
	return &priceDoc{Input: p.Input, Output: p.Output, CachedInput: p.CachedInput, CacheWrite: p.CacheWrite, CacheWrite1h: p.CacheWrite1h}
}

func (d *priceDoc) price() *pricing.Price {
	if d == nil {
		return nil
	}
	return &pricing.Price{Input: d.Input, Output: d.Output, CachedInput: d.CachedInput, CacheWrite: d.CacheWrite, CacheWrite1h: d.CacheWrite1h}
}

func (d *modelDoc) model() llmproxy.Model {
	return llmproxy.Model{
		ID:           d.ID,
		Name:         d.Name,
		Remote:       d.Remote,
		ConnectionID: d.ConnectionID,
		Weight:       d.Weight,
		Price:        d.Price.price(),
		CreatedAt:    d.CreatedAt,
		UpdatedAt:    d.UpdatedAt,
	}
}

// checkConnection returns ErrNotFound when connection id does not exist.
func (s *Store) checkConnection(ctx context.Context, id string) error {
	ok, err := exists(ctx, s.connections, byID(id))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: connection %s", llmproxy.ErrNotFound, id)
	}
	return nil
}

// CreateModel stores a new model on an existing connection. The pair
// (Name, ConnectionID) is unique (a unique index).
func (s *Store) CreateModel(ctx context.Context, m *llmproxy.Model) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := s.checkConnection(ctx, m.ConnectionID); err != nil {
		return err
	}
	if m.ID == "" {
		m.ID = llmproxy.NewID("model")
	}
	m.CreatedAt = now()
	m.UpdatedAt = m.CreatedAt
	_, err := s.models.InsertOne(ctx, &modelDoc{
		ID:           m.ID,
		Name:         m.Name,
		Remote:       m.Remote,
		ConnectionID: m.ConnectionID,
		Weight:       m.Weight,
		Price:        newPriceDoc(m.Price),
		CreatedAt:    m.CreatedAt,
		UpdatedAt:    m.UpdatedAt,
	})
	if s.isDuplicate(err) {
		return fmt.Errorf("%w: model %q exists on connection %s (or ID %s is taken)", llmproxy.ErrAlreadyExists, m.Name, m.ConnectionID, m.ID)
	}
	if err != nil {
		return fmt.Errorf("mongodb: create model: %w", err)
	}
	return s.afterWrite(ctx, nil)
}

// Model returns the model with the given ID.
func (s *Store) Model(ctx context.Context, id string) (*llmproxy.Model, error) {
	d, err := findByID[modelDoc](ctx, s.models, "model", id)
	if err != nil {
		return nil, err
	}
	m := d.model()
	return &m, nil
}

// Models lists models in ID order.
func (s *Store) Models(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.Model, error) {
	docs, err := findPage[modelDoc](ctx, s.models, opts)
	if err != nil {
		return nil, err
	}
	out := make([]llmproxy.Model, len(docs))
	for i := range docs {
		out[i] = docs[i].model()
	}
	return out, nil
}

// UpdateModel replaces the stored model with m.ID; its creation time
// stays. Its connection must exist.
func (s *Store) UpdateModel(ctx context.Context, m *llmproxy.Model) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := s.checkConnection(ctx, m.ConnectionID); err != nil {
		return err
	}
	updatedAt := now()
	set := bson.D{
		{Key: "name", Value: m.Name},
		{Key: "remote", Value: m.Remote},
		{Key: "connection_id", Value: m.ConnectionID},
		{Key: "weight", Value: m.Weight},
		{Key: "updated_at", Value: updatedAt},
	}
	upd := bson.D{{Key: "$set", Value: set}}
	if m.Price != nil {
		upd[0].Value = append(set, bson.E{Key: "price", Value: newPriceDoc(m.Price)})
	} else {
		upd = append(upd, bson.E{Key: "$unset", Value: bson.D{{Key: "price", Value: ""}}})
	}
	createdAt, err := s.update(ctx, s.models, m.ID, upd)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("%w: model %s", llmproxy.ErrNotFound, m.ID)
	case s.isDuplicate(err):
		return fmt.Errorf("%w: model %q exists on connection %s", llmproxy.ErrAlreadyExists, m.Name, m.ConnectionID)
	case err != nil:
		return fmt.Errorf("mongodb: update model: %w", err)
	}
	m.CreatedAt, m.UpdatedAt = createdAt, updatedAt
	return s.afterWrite(ctx, nil)
}

// DeleteModel deletes a model that no assignment refers to (ErrInUse
// otherwise). See the race note at the top of this file.
func (s *Store) DeleteModel(ctx context.Context, id string) error {
	used, err := exists(ctx, s.keys, bson.D{{Key: "assignments.model_id", Value: id}})
	if err != nil {
		return err
	}
	if used {
		return fmt.Errorf("%w: model %s is assigned to keys", llmproxy.ErrInUse, id)
	}
	res, err := s.models.DeleteOne(ctx, byID(id))
	if err != nil {
		return fmt.Errorf("mongodb: delete model: %w", err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%w: model %s", llmproxy.ErrNotFound, id)
	}
	return s.afterWrite(ctx, nil)
}

// keyDoc is the stored form of a VirtualKey: the key and its assignments
// in one document, so that both change in one atomic write.
type keyDoc struct {
	ID        string     `bson:"_id"`
	Name      string     `bson:"name"`
	Hash      string     `bson:"hash"`
	Prefix    string     `bson:"prefix"`
	ExpiresAt *time.Time `bson:"expires_at,omitempty"`
	// Budget came after the first release: absent (in documents written
	// before too) means no budget, so no schema step rewrites keys.
	Budget      *budgetDoc      `bson:"budget,omitempty"`
	Assignments []assignmentDoc `bson:"assignments"`
	CreatedAt   time.Time       `bson:"created_at"`
	UpdatedAt   time.Time       `bson:"updated_at"`
}

type assignmentDoc struct {
	ID           string  `bson:"id"`
	ConnectionID string  `bson:"connection_id,omitempty"`
	ModelID      string  `bson:"model_id,omitempty"`
	TPS          float64 `bson:"tps"`
	Burst        int     `bson:"burst"`
	TokenLimit   int64   `bson:"token_limit"`
	TokenWindow  int64   `bson:"token_window_ns"`
	// Budget, as keyDoc's, is absent for no budget.
	Budget *budgetDoc `bson:"budget,omitempty"`
}

// budgetDoc is the stored form of a Budget.
type budgetDoc struct {
	USD    float64 `bson:"usd"`
	Period string  `bson:"period"`
	TZ     string  `bson:"tz"`
	// Alerts null (or absent, in older documents) means the default thresholds.
	Alerts []float64 `bson:"alerts"`
}

func newBudgetDoc(b *llmproxy.Budget) *budgetDoc {
	if b == nil {
		return nil
	}
	return &budgetDoc{USD: b.USD, Period: b.Period, TZ: b.TZ, Alerts: b.Alerts}
}

func (d *budgetDoc) budget() *llmproxy.Budget {
	if d == nil {
		return nil
	}
	return &llmproxy.Budget{USD: d.USD, Period: d.Period, TZ: d.TZ, Alerts: d.Alerts}
}

func newKeyDoc(k *llmproxy.VirtualKey) *keyDoc {
	d := &keyDoc{
		ID:          k.ID,
		Name:        k.Name,
		Hash:        k.Hash,
		Prefix:      k.Prefix,
		Budget:      newBudgetDoc(k.Budget),
		Assignments: make([]assignmentDoc, len(k.Assignments)),
		CreatedAt:   k.CreatedAt,
		UpdatedAt:   k.UpdatedAt,
	}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		d.ExpiresAt = &t
	}
	for i, a := range k.Assignments {
		d.Assignments[i] = assignmentDoc{
			ID:           a.ID,
			ConnectionID: a.ConnectionID,
			ModelID:      a.ModelID,
			TPS:          a.TPS,
			Burst:        a.Burst,
			TokenLimit:   a.TokenLimit,
			TokenWindow:  int64(a.TokenWindow),
			Budget:       newBudgetDoc(a.Budget),
		}
	}
	return d
}

func (d *keyDoc) key() llmproxy.VirtualKey {
	k := llmproxy.VirtualKey{
		ID:        d.ID,
		Name:      d.Name,
		Hash:      d.Hash,
		Prefix:    d.Prefix,
		Budget:    d.Budget.budget(),
		CreatedAt: d.CreatedAt,
		UpdatedAt: d.UpdatedAt,
	}
	if d.ExpiresAt != nil {
		k.ExpiresAt = *d.ExpiresAt
	}
	if len(d.Assignments) > 0 {
		k.Assignments = make([]llmproxy.Assignment, len(d.Assignments))
	}
	for i, a := range d.Assignments {
		k.Assignments[i] = llmproxy.Assignment{
			ID:           a.ID,
			ConnectionID: a.ConnectionID,
			ModelID:      a.ModelID,
			TPS:          a.TPS,
			Burst:        a.Burst,
			TokenLimit:   a.TokenLimit,
			TokenWindow:  time.Duration(a.TokenWindow),
			Budget:       a.Budget.budget(),
		}
	}
	return k
}

// prepareKey validates k, checks that its assignments' targets exist and
// gives new assignments an ID.
func (s *Store) prepareKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := k.Validate(); err != nil {
		return err
	}
	for i := range k.Assignments {
		a := &k.Assignments[i]
		var err error
		if a.ModelID != "" {
			var ok bool
			ok, err = exists(ctx, s.models, byID(a.ModelID))
			if err == nil && !ok {
				err = fmt.Errorf("%w: model %s", llmproxy.ErrNotFound, a.ModelID)
			}
		} else {
			err = s.checkConnection(ctx, a.ConnectionID)
		}
		if err != nil {
			return err
		}
		if a.ID == "" {
			a.ID = llmproxy.NewID("asg")
		}
	}
	// Assignment IDs are unique across keys. MongoDB could enforce it with
	// a unique index on assignments.id, but only a partial one (keys
	// without assignments would collide on the missing value), and
	// FerretDB has no partial indexes; so it is a query before the write,
	// with the race described at the top of this file. IDs the store
	// makes are random, so only IDs a caller chose can collide.
	if len(k.Assignments) > 0 {
		asgIDs := make([]string, len(k.Assignments))
		for i := range k.Assignments {
			asgIDs[i] = k.Assignments[i].ID
		}
		filter := bson.D{{Key: "assignments.id", Value: bson.D{{Key: "$in", Value: asgIDs}}}}
		if k.ID != "" {
			filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: k.ID}}})
		}
		taken, err := exists(ctx, s.keys, filter)
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%w: an assignment ID of key %q belongs to another key", llmproxy.ErrAlreadyExists, k.Name)
		}
	}
	return nil
}

// CreateKey stores a new virtual key with its assignments in one document.
// Names and hashes are unique (unique indexes).
func (s *Store) CreateKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := s.prepareKey(ctx, k); err != nil {
		return err
	}
	if k.ID == "" {
		k.ID = llmproxy.NewID("key")
	}
	k.CreatedAt = now()
	k.UpdatedAt = k.CreatedAt
	_, err := s.keys.InsertOne(ctx, newKeyDoc(k))
	if s.isDuplicate(err) {
		return fmt.Errorf("%w: a key named %q or with the same secret (or ID %s) exists", llmproxy.ErrAlreadyExists, k.Name, k.ID)
	}
	if err != nil {
		return fmt.Errorf("mongodb: create key: %w", err)
	}
	return s.afterWrite(ctx, nil)
}

// Key returns the key with the given ID.
func (s *Store) Key(ctx context.Context, id string) (*llmproxy.VirtualKey, error) {
	d, err := findByID[keyDoc](ctx, s.keys, "key", id)
	if err != nil {
		return nil, err
	}
	k := d.key()
	return &k, nil
}

// Keys lists keys in ID order.
func (s *Store) Keys(ctx context.Context, opts llmproxy.ListOptions) ([]llmproxy.VirtualKey, error) {
	docs, err := findPage[keyDoc](ctx, s.keys, opts)
	if err != nil {
		return nil, err
	}
	out := make([]llmproxy.VirtualKey, len(docs))
	for i := range docs {
		out[i] = docs[i].key()
	}
	return out, nil
}

// UpdateKey replaces the stored key with k.ID, assignments included, in
// one single-document update; its creation time stays.
func (s *Store) UpdateKey(ctx context.Context, k *llmproxy.VirtualKey) error {
	if err := s.prepareKey(ctx, k); err != nil {
		return err
	}
	updatedAt := now()
	d := newKeyDoc(k)
	set := bson.D{
		{Key: "name", Value: d.Name},
		{Key: "hash", Value: d.Hash},
		{Key: "prefix", Value: d.Prefix},
		{Key: "assignments", Value: d.Assignments},
		{Key: "updated_at", Value: updatedAt},
	}
	var unset bson.D
	if d.ExpiresAt != nil {
		set = append(set, bson.E{Key: "expires_at", Value: *d.ExpiresAt})
	} else {
		unset = append(unset, bson.E{Key: "expires_at", Value: ""})
	}
	if d.Budget != nil {
		set = append(set, bson.E{Key: "budget", Value: d.Budget})
	} else {
		unset = append(unset, bson.E{Key: "budget", Value: ""})
	}
	update := bson.D{}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	update = append(update, bson.E{Key: "$set", Value: set})
	createdAt, err := s.update(ctx, s.keys, k.ID, update)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("%w: key %s", llmproxy.ErrNotFound, k.ID)
	case s.isDuplicate(err):
		return fmt.Errorf("%w: a key named %q or with the same secret exists", llmproxy.ErrAlreadyExists, k.Name)
	case err != nil:
		return fmt.Errorf("mongodb: update key: %w", err)
	}
	k.CreatedAt, k.UpdatedAt = createdAt, updatedAt
	return s.afterWrite(ctx, nil)
}

// DeleteKey deletes a key. Its usage records stay.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	res, err := s.keys.DeleteOne(ctx, byID(id))
	if err != nil {
		return fmt.Errorf("mongodb: delete key: %w", err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%w: key %s", llmproxy.ErrNotFound, id)
	}
	return s.afterWrite(ctx, nil)
}
