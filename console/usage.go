package console

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// The usage page is `llm-proxy usage` in a browser: the same report
// (UsageReporter.UsageReport over the daily rollups), the same filters
// and the same CSV.

// usagePage is the usage report with its form.
type usagePage struct {
	Dims   []dimCheck // the dimensions, checked when the report groups by them
	Heads  []string   // the headings of the grouped columns
	Range  string     // "24h", "7d", "30d", "all", or "" for since/until
	Ranges []rangeLink
	// Since and Until are the form's values as given; From and To are
	// the UTC days [From, To) the report covers (zero: unbounded).
	Since, Until string
	From, To     time.Time
	// The filters as given in the form.
	Key, Model, Connection string
	Rows                   []usageLine
	Total                  llmproxy.UsageRow
	CSVHref                string
	Note                   string // why there is no report, when there is none
}

// dimCheck is a dimension's checkbox.
type dimCheck struct {
	Value, Label string
	Checked      bool
}

// usageLine is one row of the report: the grouped columns, then the sums.
type usageLine struct {
	Cells []usageCell
	Sums  llmproxy.UsageRow
}

// usageCell is a grouped column's value, linked when it names a key the
// viewer may open.
type usageCell struct {
	Text, Title, Href string
}

// usageRanges are the usage page's ranges, back from now as
// `llm-proxy usage --since` counts them; the first is the default.
var usageRanges = []rangeOption{range30d, range24h, range7d, {Name: "all", Label: "All time"}}

// formDims are the dimensions the form offers (assignment is accepted in
// the query string as the CLI's --by is, but not offered).
var formDims = []llmproxy.UsageGroup{llmproxy.GroupKey, llmproxy.GroupModel, llmproxy.GroupConnection, llmproxy.GroupDay}

// errNoReports is the answer of a store without daily rollups.
var errNoReports = errors.New("this store keeps no daily usage rollups, so it has no usage report")

// usageQuery is the report a usage page or CSV asks for.
type usageQuery struct {
	filter llmproxy.UsageFilter
	by     []llmproxy.UsageGroup
	rng    string
	since  string
	until  string
}

// parseUsageQuery reads the report's parameters: by (repeated or a comma
// list; default key,model), range (default 30d) or since/until, key,
// model and connection.
func parseUsageQuery(ctx context.Context, env pageEnv, scope string, q url.Values) (*usageQuery, error) {
	u := &usageQuery{by: []llmproxy.UsageGroup{llmproxy.GroupKey, llmproxy.GroupModel}}
	if vs, ok := q["by"]; ok {
		by, err := llmproxy.ParseUsageGroups(vs)
		if err != nil {
			return nil, badQuery("by", "%s", strings.TrimPrefix(err.Error(), llmproxy.ErrInvalid.Error()+": by: "))
		}
		if len(by) == 0 {
			return nil, badQuery("by", "name at least one of key, model, connection, day")
		}
		u.by = by
	}
	var err error
	if u.since, err = param(q, "since"); err != nil {
		return nil, err
	}
	if u.until, err = param(q, "until"); err != nil {
		return nil, err
	}
	// since/until, when given, win over range: the form keeps the
	// current range in a hidden field beside its date fields.
	r, err := parseRange(q, usageRanges)
	if err != nil {
		return nil, err
	}
	if u.since != "" || u.until != "" {
		if u.since != "" {
			if u.filter.Since, err = parseSince(u.since, env.Now); err != nil {
				return nil, err
			}
		}
		if u.until != "" {
			if u.filter.Until, err = parseUntil(u.until); err != nil {
				return nil, err
			}
		}
		if !u.filter.Since.IsZero() && !u.filter.Until.IsZero() && !u.filter.Since.Before(u.filter.Until) {
			return nil, badQuery("until", "the period is empty: since must be before until")
		}
	} else {
		u.rng = r.Name
		if r.Span > 0 {
			u.filter.Since = env.Now.Add(-r.Span)
		}
	}
	if u.filter.KeyID, err = keyFilter(ctx, env, scope, q); err != nil {
		return nil, err
	}
	if u.filter.Model, err = param(q, "model"); err != nil {
		return nil, err
	}
	if u.filter.ConnectionID, err = connectionFilter(ctx, env, q); err != nil {
		return nil, err
	}
	return u, nil
}

// report reads u's report and the key names it shows.
func (u *usageQuery) report(ctx context.Context, env pageEnv) ([]llmproxy.UsageRow, map[string]string, error) {
	rep, ok := env.Storage.(llmproxy.UsageReporter)
	if !ok {
		return nil, nil, errNoReports
	}
	rows, err := rep.UsageReport(ctx, u.filter, u.by)
	if err != nil {
		return nil, nil, err
	}
	names, err := keyNames(ctx, env)
	return rows, names, err
}

// loadUsage reads the usage report that q asks for: of every key for
// the admin (keyID ""), else of key keyID only.
func loadUsage(ctx context.Context, env pageEnv, keyID string, q url.Values) (*usagePage, error) {
	u, err := parseUsageQuery(ctx, env, keyID, q)
	if err != nil {
		return nil, err
	}
	p := &usagePage{Range: u.rng, Since: u.since, Until: u.until, Model: u.filter.Model}
	p.From, p.To = llmproxy.ReportDays(u.filter)
	p.Key, _ = param(q, "key")
	p.Connection, _ = param(q, "connection")
	for _, g := range formDims {
		p.Dims = append(p.Dims, dimCheck{Value: string(g), Label: dimLabel(g), Checked: slices.Contains(u.by, g)})
	}
	for _, g := range llmproxy.UsageGroups {
		if slices.Contains(u.by, g) {
			p.Heads = append(p.Heads, dimLabel(g))
		}
	}
	p.Ranges = rangeLinks("/ui/usage", usageRanges, u.rng, q, "by", "key", "model", "connection")
	p.CSVHref = "/ui/usage.csv?" + usageParams(q).Encode()

	rows, keys, err := u.report(ctx, env)
	if errors.Is(err, errNoReports) {
		p.Note = "This store keeps no daily usage rollups, so it has no usage report."
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	var conns map[string]string
	if slices.Contains(u.by, llmproxy.GroupConnection) {
		if conns, err = connectionNames(ctx, env); err != nil {
			return nil, err
		}
	}
	for _, r := range rows {
		line := usageLine{Sums: r}
		for _, g := range llmproxy.UsageGroups {
			if !slices.Contains(u.by, g) {
				continue
			}
			var c usageCell
			switch g {
			case llmproxy.GroupKey:
				k := keyRefOf(r.KeyID, keys, keyID)
				c = usageCell{Text: k.Name, Title: k.ID, Href: k.Href}
			case llmproxy.GroupAssignment:
				c = usageCell{Text: r.AssignmentID}
			case llmproxy.GroupModel:
				c = usageCell{Text: r.Model}
			case llmproxy.GroupConnection:
				c = usageCell{Text: cmp.Or(conns[r.ConnectionID], r.ConnectionID), Title: r.ConnectionID}
			case llmproxy.GroupDay:
				c = usageCell{Text: r.Day.UTC().Format(time.DateOnly)}
			}
			line.Cells = append(line.Cells, c)
		}
		p.Rows = append(p.Rows, line)
		p.Total.Add(r)
	}
	return p, nil
}

// writeUsageCSV writes the report that q asks for as CSV, exactly as
// `llm-proxy usage --csv` writes it (admin.WriteUsageCSV). Nothing is
// written when q is refused.
func writeUsageCSV(ctx context.Context, w io.Writer, env pageEnv, keyID string, q url.Values) error {
	u, err := parseUsageQuery(ctx, env, keyID, q)
	if err != nil {
		return err
	}
	rows, names, err := u.report(ctx, env)
	if err != nil {
		return err
	}
	return admin.WriteUsageCSV(w, rows, u.by, names)
}

// usageParams are the parameters of q that select a report, for the CSV
// link.
func usageParams(q url.Values) url.Values {
	v := url.Values{}
	for _, k := range []string{"by", "range", "since", "until", "key", "model", "connection"} {
		for _, s := range q[k] {
			if strings.TrimSpace(s) != "" {
				v.Add(k, s)
			}
		}
	}
	return v
}

// dimLabel is a dimension's heading.
func dimLabel(g llmproxy.UsageGroup) string {
	switch g {
	case llmproxy.GroupDay:
		return "Day (UTC)"
	}
	return strings.ToUpper(string(g[:1])) + string(g[1:])
}
