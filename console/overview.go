package console

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// overviewPage is the overview: totals, charts and top tables over the
// last 24 hours, 7 days or 30 days, and the budgets close to their end.
type overviewPage struct {
	Range  string // "24h", "7d" or "30d"
	Ranges []rangeLink
	// Since and Until bound what the totals and charts cover: whole UTC
	// hours (24 h, 7 d) or days (30 d), the current one included.
	Since, Until time.Time
	Daily        bool // the charts' step is a day, not an hour
	// Traffic is false when the store keeps no hourly traffic: the
	// totals then come from the daily rollups (over TopSince…Until),
	// without error rate, latency or charts, and Note says so.
	Traffic bool
	Note    string
	Totals  overviewTotals
	Charts  []*chart
	// TopSince is the first UTC day the top tables sum: they read the
	// daily rollups, whole UTC days, so they may start before Since.
	TopSince  time.Time
	TopKeys   []topRow
	TopModels []topRow
	Budgets   []budgetRow
}

// overviewTotals are the overview's headline figures.
type overviewTotals struct {
	Requests    int64
	Errors      int64
	Tokens      int64
	CostMicros  int64
	UnknownCost int64         // requests whose cost is unknown (left out of CostMicros)
	ErrorRate   float64       // Errors / Requests
	P50, P95    time.Duration // estimated from the latency histograms
}

// topRow is a row of the top keys or top models: what it spent.
type topRow struct {
	Key         keyRef // top keys
	Model       string // top models
	Requests    int64
	Tokens      int64
	CostMicros  int64
	UnknownCost int64
}

// topN is how many rows the top tables show.
const topN = 5

// loadOverview reads the overview over the range in q (24h, 7d, 30d):
// of every key for the admin (keyID ""), else of key keyID only.
func loadOverview(ctx context.Context, env pageEnv, keyID string, q url.Values) (*overviewPage, error) {
	r, err := parseRange(q, overviewRanges)
	if err != nil {
		return nil, err
	}
	p := &overviewPage{Range: r.Name, Ranges: rangeLinks("/ui/", overviewRanges, r.Name, q), Daily: r.Step > time.Hour}
	// The current hour (or day) is the last of the range.
	end := env.Now.UTC().Truncate(r.Step).Add(r.Step)
	if p.Daily {
		end = utcDay(env.Now).Add(r.Step)
	}
	p.Since, p.Until = end.Add(-r.Span), end
	p.TopSince = utcDay(p.Since)

	names, err := keyNames(ctx, env)
	if err != nil {
		return nil, err
	}
	rep, hasReport := env.Storage.(llmproxy.UsageReporter)
	tr, hasTraffic := env.Storage.(llmproxy.TrafficReporter)
	// The top tables' report (one by key and model gives both: a second
	// read of a month's rollups cost as much as the first) runs beside
	// the traffic query: on PostgreSQL each takes tens of milliseconds
	// over 30 days of a 10-million-row ledger.
	type report struct {
		rows []llmproxy.UsageRow
		err  error
	}
	top := make(chan report, 1)
	if hasReport {
		go func() {
			f := llmproxy.UsageFilter{KeyID: keyID, Since: p.Since, Until: p.Until}
			rows, err := rep.UsageReport(ctx, f, []llmproxy.UsageGroup{llmproxy.GroupKey, llmproxy.GroupModel})
			top <- report{rows, err}
		}()
	}
	switch {
	case hasTraffic:
		points, err := tr.Traffic(ctx, llmproxy.TrafficFilter{KeyID: keyID, Since: p.Since, Until: p.Until})
		if err != nil {
			return nil, err
		}
		p.Traffic = true
		p.fillTraffic(points, r, int(r.Span/r.Step))
	case hasReport:
		p.Note = "This store keeps no hourly traffic, so the overview has no charts, error rate or latency; " +
			"the totals are summed from the daily usage rollups, over whole UTC days."
		rows, err := rep.UsageReport(ctx, llmproxy.UsageFilter{KeyID: keyID, Since: p.Since, Until: p.Until}, nil)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			p.Totals.Requests += row.Requests
			p.Totals.Tokens += row.TotalTokens
			p.Totals.CostMicros += row.CostMicros
			p.Totals.UnknownCost += row.UnknownCost
		}
	default:
		p.Note = "This store keeps no usage reports (daily rollups or hourly traffic), so the overview has no figures."
	}
	if hasReport {
		res := <-top
		if res.err != nil {
			return nil, res.err
		}
		rows := res.rows
		p.TopKeys = topRows(llmproxy.GroupUsageRows(rows, []llmproxy.UsageGroup{llmproxy.GroupKey}), llmproxy.GroupKey, names, keyID)
		p.TopModels = topRows(llmproxy.GroupUsageRows(rows, []llmproxy.UsageGroup{llmproxy.GroupModel}), llmproxy.GroupModel, names, keyID)
	}
	if p.Budgets, err = budgetsNear(ctx, env, keyID); err != nil {
		return nil, err
	}
	return p, nil
}

// fillTraffic sums the hourly points into p's totals and charts, with a
// bucket for every hour (or day) of the range, empty ones included.
func (p *overviewPage) fillTraffic(points []llmproxy.TrafficPoint, r rangeOption, n int) {
	buckets := make([]llmproxy.TrafficPoint, n)
	var sum llmproxy.TrafficPoint
	for _, pt := range points {
		i := int(pt.Hour.Sub(p.Since) / r.Step)
		if pt.Hour.Before(p.Since) || i >= n {
			continue // a store answering hours outside the range
		}
		buckets[i].Add(pt)
		sum.Add(pt)
	}
	p.Totals = overviewTotals{Requests: sum.Requests, Errors: sum.Errors, Tokens: sum.TotalTokens,
		CostMicros: sum.CostMicros, UnknownCost: sum.UnknownCost,
		// Rounded to the microsecond: the histogram's interpolation
		// is no more precise, and 1.8s reads better than 1.799999999s.
		P50: sum.Percentile(0.50).Round(time.Microsecond), P95: sum.Percentile(0.95).Round(time.Microsecond)}
	if sum.Requests > 0 {
		p.Totals.ErrorRate = float64(sum.Errors) / float64(sum.Requests)
	}

	labels, ticks := make([]string, n), make([]string, n)
	requests, errs := make([]int64, n), make([]int64, n)
	spend, tokens := make([]int64, n), make([]int64, n)
	for i, b := range buckets {
		t := p.Since.Add(time.Duration(i) * r.Step)
		switch {
		case p.Daily:
			labels[i] = t.Format(time.DateOnly)
			if (n-1-i)%5 == 0 { // today and every fifth day before it
				ticks[i] = t.Format("Jan 2")
			}
		case n > 48:
			labels[i] = t.Format("2006-01-02 15:00 UTC")
			if t.Hour() == 0 {
				ticks[i] = t.Format("Jan 2")
			}
		default:
			labels[i] = t.Format("2006-01-02 15:00 UTC")
			if t.Hour()%3 == 0 {
				ticks[i] = t.Format("15:00")
			}
		}
		requests[i], errs[i] = b.Requests, b.Errors
		spend[i], tokens[i] = b.CostMicros, b.TotalTokens
	}
	per, xName := "hour", "Hour (UTC)"
	if p.Daily {
		per, xName = "day", "Day (UTC)"
	}
	suffix := " per " + per + ", last " + r.Label
	spec := func(title string, format, axis func(int64) string, series ...chartSeries) *chart {
		return newChart(chartSpec{Title: title + suffix, XName: xName, Labels: labels, Ticks: ticks, Series: series,
			Format: format, Axis: axis, Lines: n > 48})
	}
	p.Charts = []*chart{
		spec("Requests and errors", formatNum, compactNum,
			chartSeries{Name: "Requests", Values: requests}, chartSeries{Name: "Errors", Values: errs}),
		spec("Spend", admin.FormatUSD, compactUSD, chartSeries{Name: "Spend", Values: spend}),
		spec("Tokens", formatNum, compactNum, chartSeries{Name: "Tokens", Values: tokens}),
	}
}

// topRows is the top keys (or models) by spend of rows, a report by
// that one dimension.
func topRows(rows []llmproxy.UsageRow, by llmproxy.UsageGroup, names map[string]string, scope string) []topRow {
	slices.SortStableFunc(rows, func(a, b llmproxy.UsageRow) int {
		return cmp.Or(cmp.Compare(b.CostMicros, a.CostMicros), cmp.Compare(b.Requests, a.Requests))
	})
	out := make([]topRow, 0, min(len(rows), topN))
	for _, r := range rows[:min(len(rows), topN)] {
		t := topRow{Model: r.Model, Requests: r.Requests, Tokens: r.TotalTokens, CostMicros: r.CostMicros, UnknownCost: r.UnknownCost}
		if by == llmproxy.GroupKey {
			t.Key = keyRefOf(r.KeyID, names, scope)
		}
		out = append(out, t)
	}
	return out
}

// budgetRow is a budget close to its end: at 80% or more of its limit,
// or in a period that ends within 24 hours.
type budgetRow struct {
	Key         keyRef
	Scope       string // "key" (over all its assignments) or the assignment's target, e.g. "model gpt-4o"
	Period      string // llmproxy.BudgetDaily …
	TZ          string // the zone of the period's midnight
	LimitMicros int64
	SpentMicros int64
	Fraction    float64   // SpentMicros / LimitMicros (1 for a zero limit)
	Start, End  time.Time // the period; zero for a total budget
}

// budgetNear is how close to its limit a budget is shown, and how close
// to the end of its period.
const (
	budgetNearFraction = 0.8
	budgetNearEnd      = 24 * time.Hour
)

// budgetsNear returns the budgets of every key (of key scope only, when
// set) and of their assignments that are close to their end, fullest
// first. What each spent this period is read as the gateway restores it
// (llmproxy.SpentSince: the daily rollups, and the raw ledger only for
// the hours before the first whole UTC day).
func budgetsNear(ctx context.Context, env pageEnv, scope string) ([]budgetRow, error) {
	var keys []llmproxy.VirtualKey
	if scope != "" {
		k, err := env.Storage.Key(ctx, scope)
		if err != nil {
			return nil, err
		}
		keys = []llmproxy.VirtualKey{*k}
	} else {
		var err error
		if keys, err = env.Admin.ListKeys(ctx, llmproxy.ListOptions{}); err != nil {
			return nil, err
		}
	}
	names := map[string]string{}
	for _, k := range keys {
		names[k.ID] = k.Name
	}
	var targets *targetNames // read only when an assignment has a budget
	var out []budgetRow
	check := func(k *llmproxy.VirtualKey, a *llmproxy.Assignment, b *llmproxy.Budget) error {
		start, end := b.Bounds(env.Now)
		f := llmproxy.UsageFilter{KeyID: k.ID}
		row := budgetRow{Key: keyRefOf(k.ID, names, scope), Scope: "key", Period: b.Period, TZ: b.TZ,
			LimitMicros: int64(b.USD*1e6 + 0.5), Start: start, End: end}
		if a != nil {
			f.AssignmentID = a.ID
			if targets == nil {
				t, err := loadTargetNames(ctx, env)
				if err != nil {
					return err
				}
				targets = t
			}
			row.Scope = targets.describe(a)
		}
		_, spent, err := llmproxy.SpentSince(ctx, env.Storage, f, start)
		if err != nil {
			return err
		}
		row.SpentMicros, row.Fraction = spent, 1
		if row.LimitMicros > 0 {
			row.Fraction = float64(spent) / float64(row.LimitMicros)
		}
		if row.Fraction >= budgetNearFraction || !end.IsZero() && end.Sub(env.Now) <= budgetNearEnd {
			out = append(out, row)
		}
		return nil
	}
	for i := range keys {
		k := &keys[i]
		if k.Budget != nil {
			if err := check(k, nil, k.Budget); err != nil {
				return nil, err
			}
		}
		for j := range k.Assignments {
			if a := &k.Assignments[j]; a.Budget != nil {
				if err := check(k, a, a.Budget); err != nil {
					return nil, err
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b budgetRow) int {
		return cmp.Or(cmp.Compare(b.Fraction, a.Fraction), a.End.Compare(b.End))
	})
	return out, nil
}

// targetNames names the models and connections assignments refer to.
type targetNames struct {
	models map[string]string // model ID → alias
	conns  map[string]string // connection ID → name
}

func loadTargetNames(ctx context.Context, env pageEnv) (*targetNames, error) {
	conns, err := connectionNames(ctx, env)
	if err != nil {
		return nil, err
	}
	ms, err := env.Admin.ListModels(ctx, llmproxy.ListOptions{})
	if err != nil {
		return nil, err
	}
	t := &targetNames{models: make(map[string]string, len(ms)), conns: conns}
	for _, m := range ms {
		t.models[m.ID] = m.Name
	}
	return t, nil
}

// describe names what assignment a is for: "model gpt-4o" or
// "connection openai".
func (t *targetNames) describe(a *llmproxy.Assignment) string {
	if a.ModelID != "" {
		return "model " + cmp.Or(t.models[a.ModelID], a.ModelID)
	}
	return "connection " + cmp.Or(t.conns[a.ConnectionID], a.ConnectionID)
}
