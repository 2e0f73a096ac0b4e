package mongodb_test

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/storage/storagetest"
)

// trafficFixture is 240 records over about two days: three keys (the
// master key's included), four statuses, latencies over every bucket,
// and runs of records at one instant. RecentUsage, and Traffic's
// agreement with the ledger, are storagetest's (TestConformance); this
// file checks what is MongoDB's own: one hourly rollup document per
// (hour, key), rebuilt for a ledger an older build wrote.
func trafficFixture() []llmproxy.UsageRecord {
	start := time.Date(2025, 3, 9, 22, 10, 0, 0, time.UTC)
	keys := []string{"key_t1", "key_t2", ""}
	statuses := []int{200, 200, 429, 500, 200, 404}
	var out []llmproxy.UsageRecord
	for i := range 240 {
		r := llmproxy.UsageRecord{
			ID:               fmt.Sprintf("tr_%03d", (i*37)%240), // IDs out of time order
			Time:             start.Add(time.Duration(i/4)*47*time.Minute + time.Duration(i%4/3)*time.Nanosecond),
			KeyID:            keys[i%3],
			Model:            []string{"gpt-4o", "claude"}[i/3%2],
			PromptTokens:     int64(10 + i),
			CompletionTokens: int64(i % 17),
			Status:           statuses[i%len(statuses)],
			Latency:          time.Duration(i*i*i) * 1000 * time.Nanosecond,
			Endpoint:         "chat",
		}
		r.TotalTokens = r.PromptTokens + r.CompletionTokens
		if i%7 != 0 {
			r.CostMicros, r.CostKnown = int64(3*i), true
		}
		out = append(out, r)
	}
	return out
}

func checkTraffic(t *testing.T, what string, s llmproxy.TrafficReporter, records []llmproxy.UsageRecord) {
	t.Helper()
	t0 := records[0].Time
	for _, f := range []llmproxy.TrafficFilter{
		{},
		{KeyID: "key_t2"},
		{Since: t0.Add(3*time.Hour + time.Nanosecond), Until: t0.Add(20*time.Hour + time.Nanosecond)},
		{KeyID: "key_t1", Until: t0.Add(10 * time.Hour)},
		{Since: t0.AddDate(1, 0, 0)},
	} {
		got, err := s.Traffic(t.Context(), f)
		if err != nil {
			t.Fatalf("%s: Traffic(%+v): %v", what, f, err)
		}
		if want := storagetest.TrafficReference(records, f); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: Traffic(%+v) =\n%v\nwant\n%v", what, f, got, want)
		}
	}
}

func TestTraffic(t *testing.T) {
	ctx := t.Context()
	uri := newDatabase(t)
	s := open(t, uri)
	records := trafficFixture()
	for i := 0; i < len(records); i += 50 {
		must(t, s.AppendUsage(ctx, records[i:min(i+50, len(records))]))
	}
	must(t, s.AppendUsage(ctx, records[40:120])) // a retried batch counts once
	checkTraffic(t, "kept on write", s, records)
	must(t, s.RebuildRollups(ctx))
	checkTraffic(t, "rebuilt", s, records)

	// A ledger that an older build wrote has no hourly rollups: the
	// rebuild makes them.
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	must(t, err)
	defer client.Disconnect(ctx)
	u, _ := url.Parse(uri)
	hourly := client.Database(strings.TrimPrefix(u.Path, "/")).Collection("usage_hourly")
	_, err = hourly.DeleteMany(ctx, bson.D{})
	must(t, err)
	must(t, s.RebuildRollups(ctx))
	checkTraffic(t, "rebuilt after an upgrade", s, records)
	n, err := hourly.CountDocuments(ctx, bson.D{{Key: "key_id", Value: "key_t1"}})
	must(t, err)
	if want := len(storagetest.TrafficReference(records, llmproxy.TrafficFilter{KeyID: "key_t1"})); n != int64(want) {
		t.Errorf("%d hourly rollups of key_t1, want one per hour: %d", n, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTrafficAtScale times the web console's queries on a large ledger
// (storagetest.MeasureTraffic); it runs only when LLMPROXY_TRAFFIC_ROWS
// sets the ledger's size, on the database LLMPROXY_TRAFFIC_MONGODB names
// (a URI with the database; kept, and reused by the next run) or on a new
// one. It means MongoDB: FerretDB scans a collection for every query but
// an _id lookup, so there the queries take seconds (RecentUsage about
// 100 ms per 1,000 ledger records) and the daily rollups' upserts make
// appending a large ledger through AppendUsage impractical.
func TestTrafficAtScale(t *testing.T) {
	rows, err := strconv.ParseInt(os.Getenv("LLMPROXY_TRAFFIC_ROWS"), 10, 64)
	if err != nil || rows <= 0 {
		t.Skip("set LLMPROXY_TRAFFIC_ROWS to measure the console's queries on a ledger that large")
	}
	uri := os.Getenv("LLMPROXY_TRAFFIC_MONGODB")
	if uri == "" {
		uri = newDatabase(t)
	}
	storagetest.MeasureTraffic(t, open(t, uri), rows, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}
