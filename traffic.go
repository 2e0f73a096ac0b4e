package llmproxy

import (
	"context"
	"time"
)

// The hourly traffic rollups and the recent-requests query are what the
// web console reads: charts of requests, errors, tokens, spend and
// latency over 24 hours to 30 days, and the newest ledger records, all
// without scanning the ledger.

// LatencyBounds are the upper bounds (inclusive) of the buckets of the
// latency histograms kept in the hourly traffic rollups, in a 1-2-5
// series; one more bucket holds what is slower than the last bound.
var LatencyBounds = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second,
	10 * time.Second, 20 * time.Second, 50 * time.Second, 100 * time.Second,
}

// LatencyBuckets is the number of buckets of a latency histogram.
const LatencyBuckets = len(LatencyBounds) + 1

// LatencyBucket is the histogram bucket that latency d falls in.
func LatencyBucket(d time.Duration) int {
	for i, b := range LatencyBounds {
		if d <= b {
			return i
		}
	}
	return len(LatencyBounds)
}

// TrafficFilter selects hourly traffic: of one key (every key, the
// master key's requests included, when KeyID is empty), over the UTC
// hours that overlap [Since, Until) (zero bounds: unbounded).
type TrafficFilter struct {
	KeyID string
	Since time.Time
	Until time.Time
}

// TrafficPoint is the traffic of one UTC hour: a key's, or every key's
// summed.
type TrafficPoint struct {
	Hour             time.Time // UTC, on the hour
	Requests         int64
	Errors           int64 // requests answered with a status of 400 or more
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	CostMicros       int64 // the known costs
	UnknownCost      int64 // requests whose cost is unknown
	// Latency counts the requests by LatencyBucket of their latency.
	Latency [LatencyBuckets]int64
}

// TrafficOf returns the hour and the sums of one ledger record.
func TrafficOf(r *UsageRecord) TrafficPoint {
	p := TrafficPoint{Hour: r.Time.UTC().Truncate(time.Hour)}
	p.AddRecord(r)
	return p
}

// AddRecord adds one ledger record to p's sums (not its hour).
func (p *TrafficPoint) AddRecord(r *UsageRecord) {
	p.Requests++
	if r.Status >= 400 {
		p.Errors++
	}
	p.PromptTokens += r.PromptTokens
	p.CompletionTokens += r.CompletionTokens
	p.TotalTokens += r.TotalTokens
	if r.CostKnown {
		p.CostMicros += r.CostMicros
	} else {
		p.UnknownCost++
	}
	p.Latency[LatencyBucket(r.Latency)]++
}

// Add adds q's sums to p (the hour stays p's).
func (p *TrafficPoint) Add(q TrafficPoint) {
	p.Requests += q.Requests
	p.Errors += q.Errors
	p.PromptTokens += q.PromptTokens
	p.CompletionTokens += q.CompletionTokens
	p.TotalTokens += q.TotalTokens
	p.CostMicros += q.CostMicros
	p.UnknownCost += q.UnknownCost
	for i, n := range q.Latency {
		p.Latency[i] += n
	}
}

// Percentile estimates the q-quantile (0 < q ≤ 1) of p's latencies from
// its histogram, interpolating linearly inside the bucket it falls in
// (the last, open bucket answers its lower bound). Zero when p has no
// requests.
func (p *TrafficPoint) Percentile(q float64) time.Duration {
	var total int64
	for _, n := range p.Latency {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, n := range p.Latency {
		if n == 0 || seen+float64(n) < rank {
			seen += float64(n)
			continue
		}
		if i == len(LatencyBounds) {
			return LatencyBounds[i-1]
		}
		var lo time.Duration
		if i > 0 {
			lo = LatencyBounds[i-1]
		}
		frac := (rank - seen) / float64(n)
		return lo + time.Duration(frac*float64(LatencyBounds[i]-lo))
	}
	return LatencyBounds[len(LatencyBounds)-1]
}

// RecentFilter selects the newest ledger records, newest first.
type RecentFilter struct {
	KeyID  string
	Model  string // the alias the client asked for
	Status int    // exactly this HTTP status; zero: any
	Errors bool   // only statuses of 400 or more
	// Before pages back: only records strictly older than it (zero: all).
	Before time.Time
	// Limit caps the records; zero means 50, and more than 500 is 500.
	Limit int
}

// RecentLimit is f's Limit as a store applies it.
func (f RecentFilter) RecentLimit() int {
	switch {
	case f.Limit <= 0:
		return 50
	case f.Limit > 500:
		return 500
	}
	return f.Limit
}

// TrafficReporter is what the web console reads besides the daily
// rollups (UsageReporter). Every standard backend implements it: the
// hourly rollups are kept as the ledger is written, as the daily ones
// are (same transaction on SQL; $inc after the batch on MongoDB), and
// UsageReporter.RebuildRollups rebuilds them too.
type TrafficReporter interface {
	// Traffic returns the hourly traffic f selects, summed over keys
	// unless f.KeyID is set, ordered by hour; hours without requests
	// are left out.
	Traffic(ctx context.Context, f TrafficFilter) ([]TrafficPoint, error)
	// RecentUsage returns the newest ledger records f selects, newest
	// first (ties by ID, descending), read through the ledger's indexes
	// on time, (key, time), (model, time) and errors by time.
	RecentUsage(ctx context.Context, f RecentFilter) ([]UsageRecord, error)
}

// Bounds is the calendar period of b holding now, in b's zone (see the
// Budget fields): zero start and end for a total budget.
func (b *Budget) Bounds(now time.Time) (start, end time.Time) { return b.period(now) }

// SpentSince sums the tokens and the known cost (micro-dollars) of the
// ledger records f selects from since on (all of them when since is
// zero), reading the daily rollups for whole UTC days when s is a
// UsageReporter and the raw ledger only for the hours before the first
// of them.
func SpentSince(ctx context.Context, s Storage, f UsageFilter, since time.Time) (tokens, micros int64, err error) {
	rep, ok := s.(UsageReporter)
	if !ok {
		f.Since = since
		sums, err := s.SumUsage(ctx, f)
		for _, s := range sums {
			tokens += s.TotalTokens
			micros += s.CostMicros
		}
		return tokens, micros, err
	}
	if day := since.UTC().Truncate(24 * time.Hour); !since.IsZero() && !day.Equal(since) {
		edge := f
		edge.Since, edge.Until = since, day.Add(24*time.Hour)
		sums, err := s.SumUsage(ctx, edge)
		if err != nil {
			return 0, 0, err
		}
		for _, s := range sums {
			tokens += s.TotalTokens
			micros += s.CostMicros
		}
		since = edge.Until
	}
	f.Since = since
	rows, err := rep.UsageReport(ctx, f, nil)
	for _, r := range rows {
		tokens += r.TotalTokens
		micros += r.CostMicros
	}
	return tokens, micros, err
}
