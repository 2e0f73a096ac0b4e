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

// rollupDoc is one daily rollup: the sums of the ledger records of one
// key, assignment, model alias and connection on one UTC day.
type rollupDoc struct {
	Day              time.Time `bson:"day"`
	KeyID            string    `bson:"key_id"`
	AssignmentID     string    `bson:"assignment_id"`
	Model            string    `bson:"model"`
	ConnectionID     string    `bson:"connection_id"`
	Requests         int64     `bson:"requests"`
	PromptTokens     int64     `bson:"prompt_tokens"`
	CompletionTokens int64     `bson:"completion_tokens"`
	TotalTokens      int64     `bson:"total_tokens"`
	EstimatedTokens  int64     `bson:"estimated_tokens"`
	CacheReadTokens  int64     `bson:"cache_read_tokens"`
	CacheWriteTokens int64     `bson:"cache_write_tokens"`
	CostMicros       int64     `bson:"cost_micros"`
	UnknownCost      int64     `bson:"unknown_cost"`
}

func (d *rollupDoc) row() llmproxy.UsageRow {
	return llmproxy.UsageRow{Day: d.Day.UTC(), KeyID: d.KeyID, AssignmentID: d.AssignmentID, Model: d.Model,
		ConnectionID: d.ConnectionID, Requests: d.Requests, PromptTokens: d.PromptTokens,
		CompletionTokens: d.CompletionTokens, TotalTokens: d.TotalTokens, EstimatedTokens: d.EstimatedTokens,
		CacheReadTokens: d.CacheReadTokens, CacheWriteTokens: d.CacheWriteTokens, CostMicros: d.CostMicros,
		UnknownCost: d.UnknownCost}
}

func rollupDocOf(u llmproxy.UsageRow) *rollupDoc {
	return &rollupDoc{Day: u.Day, KeyID: u.KeyID, AssignmentID: u.AssignmentID, Model: u.Model,
		ConnectionID: u.ConnectionID, Requests: u.Requests, PromptTokens: u.PromptTokens,
		CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens, EstimatedTokens: u.EstimatedTokens,
		CacheReadTokens: u.CacheReadTokens, CacheWriteTokens: u.CacheWriteTokens, CostMicros: u.CostMicros,
		UnknownCost: u.UnknownCost}
}

// rollupKeyFields are the fields of the unique index on a rollup's group.
func rollupKeyFields() bson.D {
	return bson.D{{Key: "day", Value: 1}, {Key: "key_id", Value: 1}, {Key: "assignment_id", Value: 1},
		{Key: "model", Value: 1}, {Key: "connection_id", Value: 1}}
}

// insertedRecords returns the records of an unordered InsertMany that
// are stored, given its error: all when err is nil, all but the ones a
// bulk write error names when it is one, none otherwise (what was stored
// is then unknown; RebuildRollups repairs the rollups).
func insertedRecords(records []llmproxy.UsageRecord, err error) []llmproxy.UsageRecord {
	if err == nil {
		return records
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		return nil
	}
	failed := make(map[int]bool, len(bwe.WriteErrors))
	for _, we := range bwe.WriteErrors {
		failed[we.Index] = true
	}
	var out []llmproxy.UsageRecord
	for i, r := range records {
		if !failed[i] {
			out = append(out, r)
		}
	}
	return out
}

// rollUp adds records to their daily rollups, with an $inc upsert per
// group. Two writers creating one group's document at once make one of
// them fail on the unique index; it retries, and then updates.
func (s *Store) rollUp(ctx context.Context, records []llmproxy.UsageRecord) error {
	for _, g := range llmproxy.Rollups(records) {
		filter := bson.D{{Key: "day", Value: g.Day}, {Key: "key_id", Value: g.KeyID}, {Key: "assignment_id", Value: g.AssignmentID},
			{Key: "model", Value: g.Model}, {Key: "connection_id", Value: g.ConnectionID}}
		update := bson.D{{Key: "$inc", Value: bson.D{
			{Key: "requests", Value: g.Requests},
			{Key: "prompt_tokens", Value: g.PromptTokens},
			{Key: "completion_tokens", Value: g.CompletionTokens},
			{Key: "total_tokens", Value: g.TotalTokens},
			{Key: "estimated_tokens", Value: g.EstimatedTokens},
			{Key: "cache_read_tokens", Value: g.CacheReadTokens},
			{Key: "cache_write_tokens", Value: g.CacheWriteTokens},
			{Key: "cost_micros", Value: g.CostMicros},
			{Key: "unknown_cost", Value: g.UnknownCost},
		}}}
		var err error
		for range 3 {
			_, err = s.usageDaily.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
			if !s.isDuplicate(err) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("roll up: %w", err)
		}
	}
	return nil
}

// UsageReport sums the daily rollups that f selects by the dimensions in
// by: one find over usage_daily (never the ledger), summed here, which
// keeps to what FerretDB's aggregation supports.
func (s *Store) UsageReport(ctx context.Context, f llmproxy.UsageFilter, by []llmproxy.UsageGroup) ([]llmproxy.UsageRow, error) {
	if err := llmproxy.CheckUsageGroups(by); err != nil {
		return nil, err
	}
	filter := bson.D{}
	for _, c := range []struct{ field, v string }{
		{"key_id", f.KeyID}, {"assignment_id", f.AssignmentID}, {"model", f.Model}, {"connection_id", f.ConnectionID},
	} {
		if c.v != "" {
			filter = append(filter, bson.E{Key: c.field, Value: c.v})
		}
	}
	from, to := llmproxy.ReportDays(f)
	day := bson.D{}
	if !from.IsZero() {
		day = append(day, bson.E{Key: "$gte", Value: from})
	}
	if !to.IsZero() {
		day = append(day, bson.E{Key: "$lt", Value: to})
	}
	if len(day) > 0 {
		filter = append(filter, bson.E{Key: "day", Value: day})
	}
	cur, err := s.usageDaily.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("mongodb: usage report: %w", err)
	}
	defer cur.Close(ctx)
	var rows []llmproxy.UsageRow
	for cur.Next(ctx) {
		var d rollupDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("mongodb: usage report: %w", err)
		}
		rows = append(rows, d.row())
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongodb: usage report: %w", err)
	}
	return llmproxy.GroupUsageRows(rows, by), nil
}

// rebuildBatch is how many ledger documents RebuildRollups reads per
// round trip, and how many rollups it inserts per InsertMany.
const rebuildBatch = 10_000

// RebuildRollups recomputes usage_daily and usage_hourly from the ledger:
// it reads the ledger once in batches (only the fields a rollup sums),
// sums both kinds here, then replaces each collection's documents.
// MongoDB gives no transaction over several collections on a standalone
// server or FerretDB, so batches appended while it runs may be counted
// twice or not at all: run it when no gateway writes the ledger (e.g.
// right after an upgrade, before the gateways start).
func (s *Store) RebuildRollups(ctx context.Context) error {
	proj := bson.D{{Key: "_id", Value: 0}, {Key: "time_ns", Value: 1}, {Key: "key_id", Value: 1}, {Key: "assignment_id", Value: 1},
		{Key: "model", Value: 1}, {Key: "connection_id", Value: 1}, {Key: "prompt_tokens", Value: 1},
		{Key: "completion_tokens", Value: 1}, {Key: "total_tokens", Value: 1}, {Key: "estimated", Value: 1},
		{Key: "cache_read_tokens", Value: 1}, {Key: "cache_write_tokens", Value: 1}, {Key: "cost_micros", Value: 1},
		{Key: "status", Value: 1}, {Key: "latency_ns", Value: 1}}
	cur, err := s.usage.Find(ctx, bson.D{}, options.Find().SetProjection(proj).SetBatchSize(rebuildBatch))
	if err != nil {
		return fmt.Errorf("mongodb: rebuild rollups: %w", err)
	}
	defer cur.Close(ctx)
	daily := map[llmproxy.UsageRow]*llmproxy.UsageRow{}
	hourly := map[hourKey]*llmproxy.TrafficPoint{}
	for cur.Next(ctx) {
		var d usageDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("mongodb: rebuild rollups: %w", err)
		}
		r := recordOf(&d)
		g := llmproxy.RollupOf(&r)
		u := daily[g]
		if u == nil {
			u = &g
			daily[g] = u
		}
		u.AddRecord(&r)
		h := hourKey{r.Time.Truncate(time.Hour), r.KeyID}
		p := hourly[h]
		if p == nil {
			p = &llmproxy.TrafficPoint{Hour: h.hour}
			hourly[h] = p
		}
		p.AddRecord(&r)
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("mongodb: rebuild rollups: %w", err)
	}
	dailyDocs := make([]any, 0, len(daily))
	for _, u := range daily {
		dailyDocs = append(dailyDocs, rollupDocOf(*u))
	}
	hourlyDocs := make([]any, 0, len(hourly))
	for h, p := range hourly {
		hourlyDocs = append(hourlyDocs, hourlyDoc(h, p))
	}
	if err := replaceAll(ctx, s.usageDaily, dailyDocs); err != nil {
		return fmt.Errorf("mongodb: rebuild rollups: %w", err)
	}
	if err := replaceAll(ctx, s.usageHourly, hourlyDocs); err != nil {
		return fmt.Errorf("mongodb: rebuild rollups by hour: %w", err)
	}
	return nil
}

// replaceAll replaces every document of coll with docs, inserted
// rebuildBatch at a time.
func replaceAll(ctx context.Context, coll *mongo.Collection, docs []any) error {
	if _, err := coll.DeleteMany(ctx, bson.D{}); err != nil {
		return err
	}
	for len(docs) > 0 {
		n := min(len(docs), rebuildBatch)
		if _, err := coll.InsertMany(ctx, docs[:n]); err != nil {
			return err
		}
		docs = docs[n:]
	}
	return nil
}
