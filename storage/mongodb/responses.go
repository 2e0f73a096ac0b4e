package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/go-llm-proxy/llmproxy"
)

// The Responses API's stored responses are the responses collection
// (schema step 2): one document per response id, replaced whole when the
// id is stored again, with an index on expires_at for the expiry sweep.
// A response is expired once its ExpiresAt is not after the store's clock,
// as a virtual key is; GetResponse and DeleteResponse then answer
// ErrNotFound and leave the document to DeleteExpiredResponses. The sweep
// is a plain indexed DeleteMany, not a TTL index: FerretDB has none, and
// the sweep must count what it deletes. No error message quotes a
// response's content.

var _ llmproxy.ResponseStore = (*Store)(nil)

// maxResponsePayload is the most bytes of Items and Response together that
// one document holds: MongoDB's (and FerretDB's) 16 MiB document limit,
// less room for the other fields.
const maxResponsePayload = 16<<20 - 64<<10

// responseDoc is one stored response. ExpiresAt is absent for a response
// that never expires, so the sweep's $lt never matches it.
type responseDoc struct {
	ID           string     `bson:"_id"`
	KeyID        string     `bson:"key_id"`
	ConnectionID string     `bson:"connection_id"`
	Model        string     `bson:"model"`
	Native       bool       `bson:"native"`
	PreviousID   string     `bson:"previous_id"`
	Items        []byte     `bson:"items"`
	Response     []byte     `bson:"response"`
	CreatedAt    time.Time  `bson:"created_at"`
	ExpiresAt    *time.Time `bson:"expires_at,omitempty"`
}

func newResponseDoc(r *llmproxy.StoredResponse) *responseDoc {
	d := &responseDoc{
		ID: r.ID, KeyID: r.KeyID, ConnectionID: r.ConnectionID, Model: r.Model, Native: r.Native,
		PreviousID: r.PreviousID, Items: nonNil(r.Items), Response: nonNil(r.Response), CreatedAt: r.CreatedAt.UTC(),
	}
	if !r.ExpiresAt.IsZero() {
		t := r.ExpiresAt.UTC()
		d.ExpiresAt = &t
	}
	return d
}

// nonNil returns b, or an empty slice for nil, which would be stored as
// null rather than as empty binary.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (d *responseDoc) response() *llmproxy.StoredResponse {
	r := &llmproxy.StoredResponse{
		ID: d.ID, KeyID: d.KeyID, ConnectionID: d.ConnectionID, Model: d.Model, Native: d.Native,
		PreviousID: d.PreviousID, Items: d.Items, Response: d.Response, CreatedAt: d.CreatedAt.UTC(),
	}
	if d.ExpiresAt != nil {
		r.ExpiresAt = d.ExpiresAt.UTC()
	}
	return r
}

// expired reports whether a document's expiry is set and not after now.
func (d *responseDoc) expired(now time.Time) bool {
	return d.ExpiresAt != nil && !now.Before(*d.ExpiresAt)
}

// notExpired selects the documents that have not expired at now.
func notExpired(now time.Time) bson.E {
	return bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "expires_at", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "expires_at", Value: bson.D{{Key: "$gt", Value: now}}}},
	}}
}

// PutResponse stores r, replacing a response with the same ID in one
// atomic document write (an upserting replace).
func (s *Store) PutResponse(ctx context.Context, r *llmproxy.StoredResponse) error {
	if r == nil || r.ID == "" {
		return fmt.Errorf("%w: stored response without an ID", llmproxy.ErrInvalid)
	}
	if n := len(r.Items) + len(r.Response); n > maxResponsePayload {
		return fmt.Errorf("%w: response %q: its items and response are %d bytes, more than a MongoDB document holds (%d)",
			llmproxy.ErrInvalid, r.ID, n, maxResponsePayload)
	}
	d := newResponseDoc(r)
	var err error
	for range 3 {
		_, err = s.responses.ReplaceOne(ctx, byID(r.ID), d, options.Replace().SetUpsert(true))
		// Two first upserts of one id may race, and the loser's insert
		// collides on _id; its next try replaces the winner's document.
		if !s.isDuplicate(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mongodb: store response %q: %w", r.ID, err)
	}
	return nil
}

// GetResponse returns the response with id unless it has expired.
func (s *Store) GetResponse(ctx context.Context, id string) (*llmproxy.StoredResponse, error) {
	var d responseDoc
	err := s.responses.FindOne(ctx, byID(id)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && d.expired(now())) {
		return nil, fmt.Errorf("%w: response %q", llmproxy.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: read response %q: %w", id, err)
	}
	return d.response(), nil
}

// DeleteResponse deletes the response with id unless it has expired (the
// sweep removes that one).
func (s *Store) DeleteResponse(ctx context.Context, id string) error {
	res, err := s.responses.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, notExpired(now())})
	if err != nil {
		return fmt.Errorf("mongodb: delete response %q: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return fmt.Errorf("%w: response %q", llmproxy.ErrNotFound, id)
	}
	return nil
}

// DeleteExpiredResponses deletes the responses whose ExpiresAt is before
// now, through the index on expires_at (on MongoDB; FerretDB scans the
// collection).
func (s *Store) DeleteExpiredResponses(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.responses.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: now.UTC()}}}})
	if err != nil {
		return 0, fmt.Errorf("mongodb: delete expired responses: %w", err)
	}
	return res.DeletedCount, nil
}
