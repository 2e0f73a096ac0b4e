package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/go-llm-proxy/llmproxy"
)

// usageDoc is one ledger entry. Time is kept twice: as a BSON date for
// people reading the collection, and as Unix nanoseconds (exact, unlike
// the date's milliseconds) for the filters.
type usageDoc struct {
	ID               string    `bson:"_id"`
	Time             time.Time `bson:"time"`
	TimeNS           int64     `bson:"time_ns"`
	RequestID        string    `bson:"request_id,omitempty"`
	KeyID            string    `bson:"key_id"`
	AssignmentID     string    `bson:"assignment_id,omitempty"`
	Model            string    `bson:"model"`
	RemoteModel      string    `bson:"remote_model,omitempty"`
	ConnectionID     string    `bson:"connection_id,omitempty"`
	PromptTokens     int64     `bson:"prompt_tokens"`
	CompletionTokens int64     `bson:"completion_tokens"`
	TotalTokens      int64     `bson:"total_tokens"`
	// EstimatedTokens is TotalTokens when Estimated, else 0: stored so
	// that SumUsage needs only $sum of a field, which FerretDB supports,
	// not $sum of a $cond expression, which it does not.
	EstimatedTokens int64  `bson:"estimated_tokens"`
	Estimated       bool   `bson:"estimated"`
	Status          int    `bson:"status"`
	LatencyNS       int64  `bson:"latency_ns"`
	Streamed        bool   `bson:"streamed"`
	Endpoint        string `bson:"endpoint,omitempty"`
	// CacheReadTokens and CacheWriteTokens came after the first release:
	// documents written before lack them, which decodes as 0 and adds
	// nothing to a $sum, so no schema step rewrites the ledger.
	CacheReadTokens  int64 `bson:"cache_read_tokens"`
	CacheWriteTokens int64 `bson:"cache_write_tokens"`
	// CostMicros is the known cost, absent when unknown (never 0 for
	// unknown); CostKnown is 1 beside it, so that SumUsage counts the
	// known costs with a $sum of a field (see EstimatedTokens). Documents
	// written before cost was recorded lack both and count as unknown.
	CostMicros *int64 `bson:"cost_micros,omitempty"`
	CostKnown  int64  `bson:"cost_known,omitempty"`
}

// AppendUsage inserts records into the ledger in one unordered InsertMany
// (the driver splits very large batches). Records whose ID is already
// stored fail with a duplicate-key error on _id, which is ignored: a
// retried batch is stored once. A record without an ID is ErrInvalid, and
// then nothing of the batch is written.
func (s *Store) AppendUsage(ctx context.Context, records []llmproxy.UsageRecord) error {
	if len(records) == 0 {
		return nil
	}
	for i := range records {
		if records[i].ID == "" {
			return fmt.Errorf("%w: usage record %d of %d has no ID", llmproxy.ErrInvalid, i+1, len(records))
		}
	}
	docs := make([]any, len(records))
	for i := range records {
		r := &records[i]
		var est int64
		if r.Estimated {
			est = r.TotalTokens
		}
		docs[i] = &usageDoc{
			ID:               r.ID,
			Time:             r.Time.UTC(),
			TimeNS:           r.Time.UnixNano(),
			RequestID:        r.RequestID,
			KeyID:            r.KeyID,
			AssignmentID:     r.AssignmentID,
			Model:            r.Model,
			RemoteModel:      r.RemoteModel,
			ConnectionID:     r.ConnectionID,
			PromptTokens:     r.PromptTokens,
			CompletionTokens: r.CompletionTokens,
			TotalTokens:      r.TotalTokens,
			EstimatedTokens:  est,
			Estimated:        r.Estimated,
			Status:           r.Status,
			LatencyNS:        int64(r.Latency),
			Streamed:         r.Streamed,
			Endpoint:         r.Endpoint,
			CacheReadTokens:  r.CacheReadTokens,
			CacheWriteTokens: r.CacheWriteTokens,
		}
		if r.CostKnown {
			d := docs[i].(*usageDoc)
			d.CostMicros, d.CostKnown = &r.CostMicros, 1
		}
	}
	_, err := s.usage.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	// Only the records actually inserted are rolled up: those of a
	// retried batch that were stored the first time fail as duplicates.
	// Each kind of rollup is tried even when the other fails; both
	// are repaired by RebuildRollups.
	inserted := insertedRecords(records, err)
	rerr := errors.Join(s.rollUp(ctx, inserted), s.rollUpHourly(ctx, inserted))
	if rerr != nil && (err == nil || s.onlyDuplicates(err)) {
		return fmt.Errorf("mongodb: append usage: %w", rerr)
	}
	if err == nil || s.onlyDuplicates(err) {
		return nil
	}
	return fmt.Errorf("mongodb: append usage: %w", err)
}

// onlyDuplicates reports whether err is a bulk write error made only of
// duplicate-key errors, i.e. every failed record was already stored.
func (s *Store) onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 && we.Code != 11001 {
			return false
		}
	}
	return true
}

// sumAccumulators are the $group fields of SumUsage.
var sumAccumulators = []bson.E{
	{Key: "requests", Value: bson.D{{Key: "$sum", Value: 1}}},
	{Key: "prompt", Value: bson.D{{Key: "$sum", Value: "$prompt_tokens"}}},
	{Key: "completion", Value: bson.D{{Key: "$sum", Value: "$completion_tokens"}}},
	{Key: "total", Value: bson.D{{Key: "$sum", Value: "$total_tokens"}}},
	{Key: "estimated", Value: bson.D{{Key: "$sum", Value: "$estimated_tokens"}}},
	{Key: "cache_read", Value: bson.D{{Key: "$sum", Value: "$cache_read_tokens"}}},
	{Key: "cache_write", Value: bson.D{{Key: "$sum", Value: "$cache_write_tokens"}}},
	{Key: "cost", Value: bson.D{{Key: "$sum", Value: "$cost_micros"}}},
	{Key: "cost_known", Value: bson.D{{Key: "$sum", Value: "$cost_known"}}},
}

// SumUsage sums the records that f selects, grouped by key and model alias
// and ordered by key then model, with one aggregation
// ($match, $group with $sum, $sort) on MongoDB, one per sum (nine) on
// FerretDB.
func (s *Store) SumUsage(ctx context.Context, f llmproxy.UsageFilter) ([]llmproxy.UsageSummary, error) {
	match := bson.D{}
	for _, c := range []struct{ field, v string }{
		{"key_id", f.KeyID},
		{"assignment_id", f.AssignmentID},
		{"model", f.Model},
		{"connection_id", f.ConnectionID},
	} {
		if c.v != "" {
			match = append(match, bson.E{Key: c.field, Value: c.v})
		}
	}
	var timeRange bson.D
	if !f.Since.IsZero() {
		timeRange = append(timeRange, bson.E{Key: "$gte", Value: f.Since.UnixNano()})
	}
	if !f.Until.IsZero() {
		timeRange = append(timeRange, bson.E{Key: "$lt", Value: f.Until.UnixNano()})
	}
	if len(timeRange) > 0 {
		match = append(match, bson.E{Key: "time_ns", Value: timeRange})
	}
	// All the sums in one $group on MongoDB; one $group per sum on
	// FerretDB, whose $group computes only its first accumulator (v1.24:
	// the accumulators share one iterator over the group, which the first
	// one exhausts; the others sum nothing). The FerretDB way scans the
	// ledger once per sum and, without a snapshot across the aggregations, a
	// record inserted meanwhile may count in some sums and not in others.
	stages := [][]bson.E{sumAccumulators}
	if s.ferretDB {
		stages = make([][]bson.E, len(sumAccumulators))
		for i := range sumAccumulators {
			stages[i] = sumAccumulators[i : i+1]
		}
	}
	type group struct{ key, model string }
	sums := map[group]*llmproxy.UsageSummary{}
	for _, acc := range stages {
		groupStage := append(bson.D{{Key: "_id", Value: bson.D{{Key: "key", Value: "$key_id"}, {Key: "model", Value: "$model"}}}}, acc...)
		pipeline := mongo.Pipeline{
			{{Key: "$match", Value: match}},
			{{Key: "$group", Value: groupStage}},
			{{Key: "$sort", Value: bson.D{{Key: "_id.key", Value: 1}, {Key: "_id.model", Value: 1}}}},
		}
		cur, err := s.usage.Aggregate(ctx, pipeline)
		if err != nil {
			return nil, fmt.Errorf("mongodb: sum usage: %w", err)
		}
		// Fields a stage did not compute decode as zero and add nothing.
		var rows []struct {
			ID struct {
				Key   string `bson:"key"`
				Model string `bson:"model"`
			} `bson:"_id"`
			Requests   int64 `bson:"requests"`
			Prompt     int64 `bson:"prompt"`
			Completion int64 `bson:"completion"`
			Total      int64 `bson:"total"`
			Estimated  int64 `bson:"estimated"`
			CacheRead  int64 `bson:"cache_read"`
			CacheWrite int64 `bson:"cache_write"`
			Cost       int64 `bson:"cost"`
			CostKnown  int64 `bson:"cost_known"`
		}
		if err := cur.All(ctx, &rows); err != nil {
			return nil, fmt.Errorf("mongodb: sum usage: %w", err)
		}
		for _, r := range rows {
			g := group{r.ID.Key, r.ID.Model}
			sum := sums[g]
			if sum == nil {
				sum = &llmproxy.UsageSummary{KeyID: g.key, Model: g.model}
				sums[g] = sum
			}
			sum.Requests += r.Requests
			sum.PromptTokens += r.Prompt
			sum.CompletionTokens += r.Completion
			sum.TotalTokens += r.Total
			sum.EstimatedTokens += r.Estimated
			sum.CacheReadTokens += r.CacheRead
			sum.CacheWriteTokens += r.CacheWrite
			sum.CostMicros += r.Cost
			// Unknown costs are the requests less the known ones; the
			// two are summed apart on FerretDB, so count here and
			// subtract once all the stages are in.
			sum.UnknownCost -= r.CostKnown
		}
	}
	for _, sum := range sums {
		sum.UnknownCost += sum.Requests
	}
	out := make([]llmproxy.UsageSummary, 0, len(sums))
	for _, sum := range sums {
		out = append(out, *sum)
	}
	// The groups are merged in a map, so order them here: by key, then
	// model, in Go's byte order (MongoDB's default binary collation too).
	slices.SortStableFunc(out, func(a, b llmproxy.UsageSummary) int {
		if c := strings.Compare(a.KeyID, b.KeyID); c != 0 {
			return c
		}
		return strings.Compare(a.Model, b.Model)
	})
	return out, nil
}
