package mongodb

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Budget alert deliveries live in the alert_outbox collection, one
// document per delivery with the idempotency ID as _id: the _id index is
// unique, so a second insert of one crossing (by another replica) fails
// with a duplicate key and is reported as already enqueued. Times are unix
// nanoseconds; delivered_ns is 0 until a receiver accepted the delivery.
//
// The collection and its due index are created on first use rather than by
// a schema step, so that this addition does not renumber the steps other
// additions append; creating an existing index is a no-op.

var _ llmproxy.AlertOutbox = (*Store)(nil)

const outboxCollection = "alert_outbox"

// outboxIndexed remembers the Stores whose due index exists.
var outboxIndexed sync.Map // *Store → struct{}

type outboxDoc struct {
	ID          string `bson:"_id"`
	EventID     string `bson:"event_id"`
	URL         string `bson:"url"`
	Payload     []byte `bson:"payload"`
	CreatedNS   int64  `bson:"created_ns"`
	NextNS      int64  `bson:"next_ns"`
	Attempts    int    `bson:"attempts"`
	LastError   string `bson:"last_error"`
	DeliveredNS int64  `bson:"delivered_ns"`
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// outbox returns the collection, creating its due index once per Store.
func (s *Store) outbox(ctx context.Context) (*mongo.Collection, error) {
	c := s.db.Collection(outboxCollection)
	if _, ok := outboxIndexed.Load(s); ok {
		return c, nil
	}
	_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "delivered_ns", Value: 1}, {Key: "next_ns", Value: 1}, {Key: "_id", Value: 1}},
		Options: options.Index().SetName("due"),
	})
	if err != nil {
		return nil, fmt.Errorf("mongodb: alert outbox index: %w", err)
	}
	outboxIndexed.Store(s, struct{}{})
	return c, nil
}

// EnqueueAlert inserts d unless a delivery with its ID exists.
func (s *Store) EnqueueAlert(ctx context.Context, d *llmproxy.AlertDelivery) (bool, error) {
	if d == nil || d.ID == "" {
		return false, fmt.Errorf("%w: alert delivery without an ID", llmproxy.ErrInvalid)
	}
	c, err := s.outbox(ctx)
	if err != nil {
		return false, err
	}
	_, err = c.InsertOne(ctx, outboxDoc{ID: d.ID, EventID: d.EventID, URL: d.URL, Payload: d.Payload,
		CreatedNS: nanos(d.CreatedAt), NextNS: nanos(d.NextAt), Attempts: d.Attempts, LastError: d.LastError})
	if s.isDuplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongodb: enqueue alert %q: %w", d.ID, err)
	}
	return true, nil
}

// DueAlerts returns the undelivered deliveries due at now.
func (s *Store) DueAlerts(ctx context.Context, now time.Time, limit int) ([]llmproxy.AlertDelivery, error) {
	c, err := s.outbox(ctx)
	if err != nil {
		return nil, err
	}
	opts := options.Find().SetSort(bson.D{{Key: "next_ns", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := c.Find(ctx, bson.D{{Key: "delivered_ns", Value: int64(0)}, {Key: "next_ns", Value: bson.D{{Key: "$lte", Value: now.UnixNano()}}}}, opts)
	if err != nil {
		return nil, fmt.Errorf("mongodb: read due alerts: %w", err)
	}
	var docs []outboxDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongodb: read due alerts: %w", err)
	}
	out := make([]llmproxy.AlertDelivery, len(docs))
	for i, d := range docs {
		out[i] = llmproxy.AlertDelivery{ID: d.ID, EventID: d.EventID, URL: d.URL, Payload: d.Payload,
			CreatedAt: fromNanos(d.CreatedNS), NextAt: fromNanos(d.NextNS), Attempts: d.Attempts, LastError: d.LastError}
	}
	return out, nil
}

// MarkAlertDelivered records the delivery with id as done.
func (s *Store) MarkAlertDelivered(ctx context.Context, id string, at time.Time) error {
	return s.updateAlert(ctx, id, bson.D{{Key: "$set", Value: bson.D{{Key: "delivered_ns", Value: nanos(at)}}}})
}

// MarkAlertAttempt records a failed attempt of the delivery with id.
func (s *Store) MarkAlertAttempt(ctx context.Context, id string, next time.Time, lastError string) error {
	return s.updateAlert(ctx, id, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}},
		{Key: "$set", Value: bson.D{{Key: "next_ns", Value: nanos(next)}, {Key: "last_error", Value: lastError}}},
	})
}

func (s *Store) updateAlert(ctx context.Context, id string, update bson.D) error {
	c, err := s.outbox(ctx)
	if err != nil {
		return err
	}
	res, err := c.UpdateOne(ctx, byID(id), update)
	if err != nil {
		return fmt.Errorf("mongodb: update alert %q: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("%w: alert delivery %q", llmproxy.ErrNotFound, id)
	}
	return nil
}
