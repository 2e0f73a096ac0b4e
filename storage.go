package llmproxy

import (
	"context"
	"time"
)

// Storage is the configuration store and usage ledger behind a Gateway.
// The Gateway only reads configuration through it in the background (into
// an in-memory snapshot) and appends usage in batches; the admin writes are
// used by the CLI and the admin API.
//
// Implementations must be safe for concurrent use, by several goroutines and
// by several processes sharing one database. Errors are wrapped sentinels:
// ErrNotFound for a missing record (or a missing record it refers to),
// ErrAlreadyExists for a duplicate unique name, ErrInUse for a delete that
// would leave dangling references, ErrInvalid for a record whose Validate
// fails. Create methods set ID (when empty), CreatedAt and UpdatedAt on the
// record passed in; Update methods set UpdatedAt.
//
// No operation relies on a multi-record transaction for correctness: a
// virtual key and its assignments form one record, and usage is an
// append-only ledger.
type Storage interface {
	// CreateConnection stores a new connection. Names are unique.
	CreateConnection(ctx context.Context, c *Connection) error
	// Connection returns the connection with the given ID.
	Connection(ctx context.Context, id string) (*Connection, error)
	// Connections lists connections in ID order.
	Connections(ctx context.Context, opts ListOptions) ([]Connection, error)
	// UpdateConnection replaces the stored connection with c.ID.
	UpdateConnection(ctx context.Context, c *Connection) error
	// DeleteConnection deletes a connection that no model or assignment
	// refers to (ErrInUse otherwise).
	DeleteConnection(ctx context.Context, id string) error

	// CreateModel stores a new model. Its connection must exist. The pair
	// (Name, ConnectionID) is unique: one alias may exist on several
	// connections, once on each.
	CreateModel(ctx context.Context, m *Model) error
	// Model returns the model with the given ID.
	Model(ctx context.Context, id string) (*Model, error)
	// Models lists models in ID order.
	Models(ctx context.Context, opts ListOptions) ([]Model, error)
	// UpdateModel replaces the stored model with m.ID.
	UpdateModel(ctx context.Context, m *Model) error
	// DeleteModel deletes a model that no assignment refers to.
	DeleteModel(ctx context.Context, id string) error

	// CreateKey stores a new virtual key with its assignments, whose
	// connections and models must exist. Names and hashes are unique.
	// Assignments without an ID get one.
	CreateKey(ctx context.Context, k *VirtualKey) error
	// Key returns the key with the given ID.
	Key(ctx context.Context, id string) (*VirtualKey, error)
	// Keys lists keys in ID order.
	Keys(ctx context.Context, opts ListOptions) ([]VirtualKey, error)
	// UpdateKey replaces the stored key with k.ID, assignments included,
	// in one atomic write.
	UpdateKey(ctx context.Context, k *VirtualKey) error
	// DeleteKey deletes a key. Its usage records stay.
	DeleteKey(ctx context.Context, id string) error

	// ConfigVersion returns an opaque stamp that changes whenever any
	// connection, model or key changes, by this process or another. It is
	// polled often, so it must be cheap.
	ConfigVersion(ctx context.Context) (string, error)

	// AppendUsage appends records to the ledger. Records whose ID is
	// already stored are skipped, so a retried batch is stored once.
	AppendUsage(ctx context.Context, records []UsageRecord) error
	// SumUsage sums the records that f selects, grouped by key and model
	// alias, ordered by key then model.
	SumUsage(ctx context.Context, f UsageFilter) ([]UsageSummary, error)
	// (see ResponseStore for the Responses API's conversation state)

	// Close releases the store's resources.
	Close() error
}

// ListOptions pages through a listing. The zero value lists everything.
type ListOptions struct {
	// After, when set, starts the listing after the record with this ID.
	After string
	// Limit caps the number of records; zero means no limit.
	Limit int
}

// ResponseStore keeps the Responses API's stored responses (every standard
// backend implements it). A Storage without it serves the Responses API
// without conversation state: store is ignored, and previous_response_id
// and GET/DELETE /v1/responses/{id} answer 404 on translated connections.
type ResponseStore interface {
	// PutResponse stores r, replacing a response with the same ID.
	PutResponse(ctx context.Context, r *StoredResponse) error
	// GetResponse returns the response with id; ErrNotFound when there is
	// none or it has expired (ExpiresAt is not after now), deleted or not
	// yet. A zero ExpiresAt never expires.
	GetResponse(ctx context.Context, id string) (*StoredResponse, error)
	// DeleteResponse deletes the response with id; ErrNotFound when there
	// is none or it has expired (the sweep deletes it). An empty id is
	// ErrInvalid; MongoDB refuses a response over 16 MiB with ErrInvalid.
	DeleteResponse(ctx context.Context, id string) error
	// DeleteExpiredResponses deletes the responses whose ExpiresAt is
	// before now and returns how many it deleted.
	DeleteExpiredResponses(ctx context.Context, now time.Time) (int64, error)
}

// UsageReporter reports usage from daily rollups of the ledger instead of
// its raw rows, so that a report over months costs the number of
// (key, assignment, model, connection, day) groups, not of requests.
// Every standard backend implements it; the rollups are kept as the
// ledger is written (with the ledger's batch in one transaction on SQL;
// on MongoDB by an $inc after the batch, counting only the records the
// batch actually inserted, so a retried batch is counted once).
type UsageReporter interface {
	// UsageReport sums the rollups that f selects, grouped by the
	// dimensions in by (each a UsageGroup; none sums everything into one
	// row), ordered as SortUsageRows. Rollups are whole UTC days, so
	// f.Since and f.Until select the days they fall in: a day is
	// included when it overlaps [Since, Until). An unknown dimension is
	// ErrInvalid.
	UsageReport(ctx context.Context, f UsageFilter, by []UsageGroup) ([]UsageRow, error)
	// RebuildRollups recomputes every rollup from the ledger, e.g. after
	// an upgrade during which an older replica wrote the ledger without
	// them. Afterwards the rollups agree exactly with the ledger.
	RebuildRollups(ctx context.Context) error
}
