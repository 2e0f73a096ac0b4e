package mongodb

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/go-llm-proxy/llmproxy"
)

var _ llmproxy.TrafficReporter = (*Store)(nil)

// hourKey is the group of an hourly rollup: one key in one UTC hour.
type hourKey struct {
	hour  time.Time
	keyID string
}

// trafficSums are the summed fields of an hourly rollup document in
// usage_hourly, in the order of trafficValues; the latency histogram is
// one field per bucket (latency_0 …), not an array, so that an upsert's
// $inc creates it and an aggregation's $sum adds it.
var trafficSums = func() []string {
	f := []string{"requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_micros", "unknown_cost"}
	for i := range llmproxy.LatencyBuckets {
		f = append(f, "latency_"+strconv.Itoa(i))
	}
	return f
}()

// trafficValues returns pointers to p's sums, in the order of trafficSums.
func trafficValues(p *llmproxy.TrafficPoint) []*int64 {
	v := []*int64{&p.Requests, &p.Errors, &p.PromptTokens, &p.CompletionTokens, &p.TotalTokens, &p.CostMicros, &p.UnknownCost}
	for i := range p.Latency {
		v = append(v, &p.Latency[i])
	}
	return v
}

// trafficDoc is p's sums as the fields of a document (an $inc, or an
// hourly rollup when hour and key are added).
func trafficDoc(p *llmproxy.TrafficPoint) bson.D {
	d := make(bson.D, 0, len(trafficSums)+2)
	for i, v := range trafficValues(p) {
		d = append(d, bson.E{Key: trafficSums[i], Value: *v})
	}
	return d
}

// addTrafficDoc adds the sums of an hourly rollup (or of a $group of
// them) to p. Absent fields add nothing.
func addTrafficDoc(p *llmproxy.TrafficPoint, raw bson.Raw) error {
	vals := trafficValues(p)
	for i, name := range trafficSums {
		v, err := raw.LookupErr(name)
		if err != nil {
			continue
		}
		n, ok := v.AsInt64OK()
		if !ok {
			return fmt.Errorf("field %s is %s, not an integer", name, v.Type)
		}
		*vals[i] += n
	}
	return nil
}

// trafficOf sums records by UTC hour and key, in order of first sight.
func trafficOf(records []llmproxy.UsageRecord) ([]hourKey, map[hourKey]*llmproxy.TrafficPoint) {
	var order []hourKey
	sums := map[hourKey]*llmproxy.TrafficPoint{}
	for i := range records {
		r := &records[i]
		g := hourKey{r.Time.UTC().Truncate(time.Hour), r.KeyID}
		p := sums[g]
		if p == nil {
			p = &llmproxy.TrafficPoint{Hour: g.hour}
			sums[g] = p
			order = append(order, g)
		}
		p.AddRecord(r)
	}
	return order, sums
}

// id is the _id of the hourly rollup of g: the hour in a fixed width,
// then the key. Upserts find the rollup by _id alone, the one filter
// FerretDB hands to its storage rather than scanning the collection.
func (g hourKey) id() string {
	return g.hour.UTC().Format("2006010215") + "/" + g.keyID
}

// hourlyDoc is a new hourly rollup document of g with sums p.
func hourlyDoc(g hourKey, p *llmproxy.TrafficPoint) bson.D {
	return append(bson.D{{Key: "_id", Value: g.id()}, {Key: "hour", Value: g.hour}, {Key: "key_id", Value: g.keyID}}, trafficDoc(p)...)
}

// rollUpHourly adds records to their hourly rollups with an $inc upsert
// per (hour, key), as rollUp does for the daily ones.
func (s *Store) rollUpHourly(ctx context.Context, records []llmproxy.UsageRecord) error {
	order, sums := trafficOf(records)
	for _, g := range order {
		filter := byID(g.id())
		update := bson.D{
			{Key: "$inc", Value: trafficDoc(sums[g])},
			{Key: "$setOnInsert", Value: bson.D{{Key: "hour", Value: g.hour}, {Key: "key_id", Value: g.keyID}}},
		}
		var err error
		for range 3 {
			_, err = s.usageHourly.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
			if !s.isDuplicate(err) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("roll up by hour: %w", err)
		}
	}
	return nil
}

// trafficHours returns the UTC hours [from, to) that overlap f's
// [Since, Until); zero bounds stay zero (unbounded). They are rounded
// here, not compared with f's bounds on the server, whose dates keep
// only milliseconds.
func trafficHours(f llmproxy.TrafficFilter) (from, to time.Time) {
	if !f.Since.IsZero() {
		from = f.Since.UTC().Truncate(time.Hour)
	}
	if !f.Until.IsZero() {
		to = f.Until.UTC().Truncate(time.Hour)
		if !to.Equal(f.Until) {
			to = to.Add(time.Hour)
		}
	}
	return from, to
}

// Traffic sums the hourly rollups f selects by hour, reading only
// usage_hourly through its unique (hour, key_id) index. On MongoDB one
// aggregation sums the keys of each hour on the server; FerretDB's
// $group computes only its first accumulator, so there the rollups are
// read with a find and summed here (as UsageReport does).
func (s *Store) Traffic(ctx context.Context, f llmproxy.TrafficFilter) ([]llmproxy.TrafficPoint, error) {
	filter := bson.D{}
	from, to := trafficHours(f)
	hours := bson.D{}
	if !from.IsZero() {
		hours = append(hours, bson.E{Key: "$gte", Value: from})
	}
	if !to.IsZero() {
		hours = append(hours, bson.E{Key: "$lt", Value: to})
	}
	if len(hours) > 0 {
		filter = append(filter, bson.E{Key: "hour", Value: hours})
	}
	if f.KeyID != "" {
		filter = append(filter, bson.E{Key: "key_id", Value: f.KeyID})
	}
	var (
		cur *mongo.Cursor
		err error
	)
	if s.ferretDB {
		cur, err = s.usageHourly.Find(ctx, filter)
	} else {
		group := bson.D{{Key: "_id", Value: "$hour"}}
		for _, name := range trafficSums {
			group = append(group, bson.E{Key: name, Value: bson.D{{Key: "$sum", Value: "$" + name}}})
		}
		cur, err = s.usageHourly.Aggregate(ctx, mongo.Pipeline{
			{{Key: "$match", Value: filter}},
			{{Key: "$group", Value: group}},
			// Named as in a rollup, so that both answers decode alike.
			{{Key: "$addFields", Value: bson.D{{Key: "hour", Value: "$_id"}}}},
		})
	}
	if err != nil {
		return nil, fmt.Errorf("mongodb: traffic: %w", err)
	}
	defer cur.Close(ctx)
	byHour := map[time.Time]*llmproxy.TrafficPoint{}
	for cur.Next(ctx) {
		hour, ok := cur.Current.Lookup("hour").TimeOK()
		if !ok {
			return nil, fmt.Errorf("mongodb: traffic: a rollup without an hour")
		}
		h := hour.UTC()
		p := byHour[h]
		if p == nil {
			p = &llmproxy.TrafficPoint{Hour: h}
			byHour[h] = p
		}
		if err := addTrafficDoc(p, cur.Current); err != nil {
			return nil, fmt.Errorf("mongodb: traffic: %w", err)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongodb: traffic: %w", err)
	}
	out := make([]llmproxy.TrafficPoint, 0, len(byHour))
	for _, p := range byHour {
		if p.Requests > 0 {
			out = append(out, *p)
		}
	}
	slices.SortFunc(out, func(a, b llmproxy.TrafficPoint) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}

// recordOf is the ledger record a usage document holds.
func recordOf(d *usageDoc) llmproxy.UsageRecord {
	r := llmproxy.UsageRecord{ID: d.ID, Time: time.Unix(0, d.TimeNS).UTC(), RequestID: d.RequestID, KeyID: d.KeyID,
		AssignmentID: d.AssignmentID, Model: d.Model, RemoteModel: d.RemoteModel, ConnectionID: d.ConnectionID,
		PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens, TotalTokens: d.TotalTokens,
		CacheReadTokens: d.CacheReadTokens, CacheWriteTokens: d.CacheWriteTokens, Estimated: d.Estimated,
		Status: d.Status, Latency: time.Duration(d.LatencyNS), Streamed: d.Streamed, Endpoint: d.Endpoint}
	if d.CostMicros != nil {
		r.CostMicros, r.CostKnown = *d.CostMicros, true
	}
	return r
}

// RecentUsage returns the newest ledger records f selects, newest first,
// ties by ID descending.
//
// The ledger's indexes order by time only: (time_ns) alone, and
// (fields…, time_ns) for the key, the model, the status, the key and
// model, and the status of a key or a model. So the records are read
// in two steps that both walk an index without sorting the ledger: the
// newest n by time, then, when more records share the oldest time among
// them (t) than the page holds, in place of those the records at
// exactly t with the greatest IDs. Every record newer than t is among
// the first n, so that is the answer. The errors filter
// becomes the list of the error statuses the ledger holds (a distinct
// scan of the status index), so that the server merges one index walk
// per status instead of sorting every error record.
func (s *Store) RecentUsage(ctx context.Context, f llmproxy.RecentFilter) ([]llmproxy.UsageRecord, error) {
	filter := bson.D{}
	if f.KeyID != "" {
		filter = append(filter, bson.E{Key: "key_id", Value: f.KeyID})
	}
	if f.Model != "" {
		filter = append(filter, bson.E{Key: "model", Value: f.Model})
	}
	switch {
	case f.Errors && f.Status != 0 && f.Status < 400:
		return nil, nil // no status is both
	case f.Status != 0:
		filter = append(filter, bson.E{Key: "status", Value: f.Status})
	case f.Errors:
		var codes []int64
		err := s.usage.Distinct(ctx, "status", bson.D{{Key: "status", Value: bson.D{{Key: "$gte", Value: 400}}}}).Decode(&codes)
		if err != nil {
			return nil, fmt.Errorf("mongodb: recent usage: error statuses: %w", err)
		}
		if len(codes) == 0 {
			return nil, nil
		}
		filter = append(filter, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: codes}}})
	}
	n := f.RecentLimit()
	newest := filter
	if !f.Before.IsZero() {
		newest = append(slices.Clip(filter), bson.E{Key: "time_ns", Value: bson.D{{Key: "$lt", Value: f.Before.UnixNano()}}})
	}
	// One more than the page: when it is older than the page's oldest
	// time t, the page holds every record at t (the usual case), and
	// the ties need no second read.
	docs, err := s.findUsage(ctx, newest, bson.D{{Key: "time_ns", Value: -1}}, n+1)
	if err != nil {
		return nil, err
	}
	if len(docs) > n && docs[n].TimeNS != docs[n-1].TimeNS {
		docs = docs[:n]
	}
	if len(docs) > n {
		// The records at the oldest time t of the page are more than
		// the page holds: keep the ones with the greatest IDs.
		t := docs[n-1].TimeNS
		first := slices.IndexFunc(docs, func(d usageDoc) bool { return d.TimeNS == t })
		ties, err := s.findUsage(ctx, append(slices.Clip(filter), bson.E{Key: "time_ns", Value: t}),
			bson.D{{Key: "_id", Value: -1}}, n-first)
		if err != nil {
			return nil, err
		}
		docs = append(docs[:first], ties...)
	}
	out := make([]llmproxy.UsageRecord, len(docs))
	for i := range docs {
		out[i] = recordOf(&docs[i])
	}
	slices.SortFunc(out, func(a, b llmproxy.UsageRecord) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out, nil
}

// findUsage reads at most limit ledger documents in the given order.
func (s *Store) findUsage(ctx context.Context, filter, sort bson.D, limit int) ([]usageDoc, error) {
	cur, err := s.usage.Find(ctx, filter, options.Find().SetSort(sort).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongodb: recent usage: %w", err)
	}
	var docs []usageDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongodb: recent usage: %w", err)
	}
	return docs, nil
}
