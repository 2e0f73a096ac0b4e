package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// usageJSON is one row of `usage --json`. The dimensions the report is
// not grouped by are left out; key_id is "" for the master key.
type usageJSON struct {
	KeyID        *string `json:"key_id,omitempty"`
	KeyName      string  `json:"key_name,omitempty"`
	AssignmentID *string `json:"assignment_id,omitempty"`
	Model        *string `json:"model,omitempty"`
	ConnectionID *string `json:"connection_id,omitempty"`
	Day          string  `json:"day,omitempty"` // UTC, 2026-01-31
	Requests     int64   `json:"requests"`
	PromptTokens int64   `json:"prompt_tokens"`
	// The prompt tokens read from and written to the upstream's prompt
	// cache (part of prompt_tokens).
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
	EstimatedTokens  int64 `json:"estimated_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
	// The known cost in dollars and in micro-dollars (exact), and how
	// many requests had no known cost (no price for their model, or
	// written before the ledger recorded cost), which it leaves out.
	CostUSD     float64 `json:"cost_usd"`
	CostMicros  int64   `json:"cost_micros"`
	UnknownCost int64   `json:"unknown_cost"`
}

// defaultUsageBy is the grouping of `usage` without --by.
var defaultUsageBy = []string{"key", "model"}

func newUsageCmd(e *env) *cobra.Command {
	var (
		key, model, conn, since string
		by                      []string
		asJSON, asCSV           bool
	)
	cmd := &cobra.Command{
		Use:   "usage [--key ID] [--model ALIAS] [--connection ID] [--since 30d] [--by key,model,connection,day] [--json|--csv]",
		Short: "Report token usage and its cost by key, model, connection or day",
		Long: `Report token usage and its cost, grouped by --by (key, assignment, model,
connection, day; repeat it or give a comma list; default key,model). The report
reads the daily rollups of the ledger (UTC days), never its raw rows, so --since
counts from the start of the UTC day it falls in.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if asJSON && asCSV {
				return fmt.Errorf("--json and --csv: choose one")
			}
			groups, err := llmproxy.ParseUsageGroups(by)
			if err != nil {
				return fmt.Errorf("--by: %s", strings.TrimPrefix(err.Error(), llmproxy.ErrInvalid.Error()+": by: "))
			}
			if len(groups) == 0 {
				return fmt.Errorf("--by: name at least one of key, assignment, model, connection, day")
			}
			f := llmproxy.UsageFilter{KeyID: key, Model: model, ConnectionID: conn}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			return e.admin(ctx, func(a *admin.Service) error {
				rows, err := usageReport(ctx, a, f, groups)
				if err != nil {
					return err
				}
				keyNames := map[string]string{}
				if ks, err := a.ListKeys(ctx, llmproxy.ListOptions{}); err == nil {
					for _, k := range ks {
						keyNames[k.ID] = k.Name
					}
				}
				switch {
				case asJSON:
					out := make([]usageJSON, 0, len(rows))
					for _, r := range rows {
						out = append(out, usageJSONOf(r, groups, keyNames))
					}
					return writeJSON(e.stdout, out)
				case asCSV:
					return admin.WriteUsageCSV(e.stdout, rows, groups, keyNames)
				}
				return writeUsageTable(e.stdout, rows, groups, keyNames)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "only this key (ID or name)")
	f.StringVar(&model, "model", "", "only this model alias")
	f.StringVar(&conn, "connection", "", "only this connection (ID)")
	f.StringVar(&since, "since", "", "only usage since: a duration back from now (24h, 30d), a date or an RFC 3339 time (from the start of its UTC day)")
	f.StringSliceVar(&by, "by", defaultUsageBy, "group by key, assignment, model, connection and/or day (repeatable, or a comma list)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&asCSV, "csv", false, "print CSV")
	cmd.AddCommand(newRebuildRollupsCmd(e), newUsageGenerateCmd(e))
	return cmd
}

// reporter returns the store's rollup reports.
func reporter(s llmproxy.Storage) (llmproxy.UsageReporter, error) {
	r, ok := s.(llmproxy.UsageReporter)
	if !ok {
		return nil, fmt.Errorf("this store keeps no usage rollups")
	}
	return r, nil
}

// usageReport reads the report from the rollups; f.KeyID may be a key's
// name (a deleted key's ID still selects its usage).
func usageReport(ctx context.Context, a *admin.Service, f llmproxy.UsageFilter, by []llmproxy.UsageGroup) ([]llmproxy.UsageRow, error) {
	rep, err := reporter(a.Storage)
	if err != nil {
		return nil, err
	}
	if f.KeyID != "" {
		if k, err := a.KeyByIDOrName(ctx, f.KeyID); err == nil {
			f.KeyID = k.ID
		}
	}
	return rep.UsageReport(ctx, f, by)
}

// keyLabel is how the table names a key.
func keyLabel(id string, names map[string]string) string {
	if id == "" {
		return "(master key)"
	}
	if n, ok := names[id]; ok {
		return n + " (" + id + ")"
	}
	return id
}

// dimensions returns r's values of the dimensions in by, in the report's
// order (key, assignment, model, connection, day), and their headings.
func dimensions(r llmproxy.UsageRow, by []llmproxy.UsageGroup, keyNames map[string]string) (heads, vals []string) {
	for _, g := range llmproxy.UsageGroups {
		if !slices.Contains(by, g) {
			continue
		}
		heads = append(heads, strings.ToUpper(string(g)))
		switch g {
		case llmproxy.GroupKey:
			vals = append(vals, keyLabel(r.KeyID, keyNames))
		case llmproxy.GroupAssignment:
			vals = append(vals, r.AssignmentID)
		case llmproxy.GroupModel:
			vals = append(vals, r.Model)
		case llmproxy.GroupConnection:
			vals = append(vals, r.ConnectionID)
		case llmproxy.GroupDay:
			vals = append(vals, r.Day.UTC().Format(time.DateOnly))
		}
	}
	return heads, vals
}

// writeUsageTable prints the report as a table with a TOTAL row.
func writeUsageTable(w io.Writer, rows []llmproxy.UsageRow, by []llmproxy.UsageGroup, keyNames map[string]string) error {
	t := table(w)
	heads, _ := dimensions(llmproxy.UsageRow{}, by, keyNames)
	// The cache columns follow PROMPT, of which they are part;
	// UNKNOWN-COST counts the requests that COST leaves out.
	row(t, append(heads, "REQUESTS", "PROMPT", "CACHE-READ", "CACHE-WRITE", "COMPLETION", "TOTAL", "ESTIMATED",
		"COST", "UNKNOWN-COST")...)
	var total llmproxy.UsageRow
	for _, r := range rows {
		_, vals := dimensions(r, by, keyNames)
		usageRow(t, vals, r)
		total.Add(r)
	}
	if len(rows) > 1 {
		vals := make([]string, len(heads))
		vals[0] = "TOTAL"
		usageRow(t, vals, total)
	}
	return t.Flush()
}

// usageJSONOf is r as `usage --json` prints it.
func usageJSONOf(r llmproxy.UsageRow, by []llmproxy.UsageGroup, keyNames map[string]string) usageJSON {
	j := usageJSON{Requests: r.Requests, PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		TotalTokens: r.TotalTokens, EstimatedTokens: r.EstimatedTokens, CacheReadTokens: r.CacheReadTokens,
		CacheWriteTokens: r.CacheWriteTokens, CostUSD: float64(r.CostMicros) / 1e6, CostMicros: r.CostMicros,
		UnknownCost: r.UnknownCost}
	if slices.Contains(by, llmproxy.GroupKey) {
		j.KeyID, j.KeyName = &r.KeyID, keyNames[r.KeyID]
	}
	if slices.Contains(by, llmproxy.GroupAssignment) {
		j.AssignmentID = &r.AssignmentID
	}
	if slices.Contains(by, llmproxy.GroupModel) {
		j.Model = &r.Model
	}
	if slices.Contains(by, llmproxy.GroupConnection) {
		j.ConnectionID = &r.ConnectionID
	}
	if slices.Contains(by, llmproxy.GroupDay) {
		j.Day = r.Day.UTC().Format(time.DateOnly)
	}
	return j
}

// usageRow writes one row of the usage table: the dimension values, then
// the sums.
func usageRow(t io.Writer, dims []string, s llmproxy.UsageRow) {
	row(t, append(dims, itoa(s.Requests), itoa(s.PromptTokens), itoa(s.CacheReadTokens), itoa(s.CacheWriteTokens),
		itoa(s.CompletionTokens), itoa(s.TotalTokens), itoa(s.EstimatedTokens), formatUSD(s.CostMicros), itoa(s.UnknownCost))...)
}

func newRebuildRollupsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rebuild-rollups",
		Short: "Recompute the daily and hourly usage rollups from the ledger and check they agree with it",
		Long: `Recompute every daily and hourly usage rollup from the ledger, then check
that the report by key and model equals the ledger's own sums, and that the
hourly traffic (the web console's charts) adds up to the same totals. Run it
after a rolling upgrade during which an older gateway wrote the ledger without
rollups, and on MongoDB after upgrading to schema step 3 (daily) or 4 (hourly),
while no gateway writes the ledger.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return e.admin(ctx, func(a *admin.Service) error {
				rep, err := reporter(a.Storage)
				if err != nil {
					return err
				}
				start := time.Now()
				if err := rep.RebuildRollups(ctx); err != nil {
					return err
				}
				took := time.Since(start)
				total, err := checkRollups(ctx, a.Storage, rep)
				if err != nil {
					return err
				}
				return printf(e.stdout, "rollups rebuilt in %s and agree with the ledger: %d requests, %d tokens, %s known, %d of unknown cost\n",
					took.Round(time.Millisecond), total.Requests, total.TotalTokens, formatUSD(total.CostMicros), total.UnknownCost)
			})
		},
	}
}

// checkRollups compares the rollups' report by key and model with the
// ledger's sums (a scan of the ledger) and returns the grand total, or
// an error naming the first group that differs.
func checkRollups(ctx context.Context, s llmproxy.Storage, rep llmproxy.UsageReporter) (llmproxy.UsageRow, error) {
	var total llmproxy.UsageRow
	rows, err := rep.UsageReport(ctx, llmproxy.UsageFilter{}, []llmproxy.UsageGroup{llmproxy.GroupKey, llmproxy.GroupModel})
	if err != nil {
		return total, err
	}
	sums, err := s.SumUsage(ctx, llmproxy.UsageFilter{})
	if err != nil {
		return total, err
	}
	for i := range max(len(rows), len(sums)) {
		var got, want llmproxy.UsageRow
		if i < len(rows) {
			got = rows[i]
		}
		if i < len(sums) {
			u := sums[i]
			want = llmproxy.UsageRow{KeyID: u.KeyID, Model: u.Model, Requests: u.Requests, PromptTokens: u.PromptTokens,
				CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens, EstimatedTokens: u.EstimatedTokens,
				CacheReadTokens: u.CacheReadTokens, CacheWriteTokens: u.CacheWriteTokens, CostMicros: u.CostMicros,
				UnknownCost: u.UnknownCost}
		}
		if got != want {
			return total, fmt.Errorf("the rollups disagree with the ledger: rollups %+v, ledger %+v", got, want)
		}
		total.Add(got)
	}
	if tr, ok := s.(llmproxy.TrafficReporter); ok {
		points, err := tr.Traffic(ctx, llmproxy.TrafficFilter{})
		if err != nil {
			return total, err
		}
		var hourly llmproxy.TrafficPoint
		for _, p := range points {
			hourly.Add(p)
		}
		if hourly.Requests != total.Requests || hourly.TotalTokens != total.TotalTokens ||
			hourly.CostMicros != total.CostMicros || hourly.UnknownCost != total.UnknownCost {
			return total, fmt.Errorf("the hourly rollups disagree with the ledger: %d requests, %d tokens, %d µ$, %d of unknown cost; the ledger has %d, %d, %d µ$, %d",
				hourly.Requests, hourly.TotalTokens, hourly.CostMicros, hourly.UnknownCost, total.Requests, total.TotalTokens, total.CostMicros, total.UnknownCost)
		}
	}
	return total, nil
}

// formatUSD writes micro-dollars as dollars, as every report and the
// web console do (see admin.FormatUSD).
func formatUSD(micros int64) string { return admin.FormatUSD(micros) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// parseSince parses --since: a duration back from now, a date or an RFC
// 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := llmproxy.ParseWindow(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since: %q is not a duration (24h, 30d), a date (2026-01-31) or an RFC 3339 time", s)
}

func newMigrateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations and report the schema version",
		Long: `Apply the database migrations and report the schema version. Every command
migrates on start; this one does only that, e.g. before rolling out replicas.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			return printf(e.stdout, "%s database schema is at version %d\n", e.dbType, v)
		},
	}
}

// newUsageGenerateCmd is the hidden `usage generate`: it appends
// synthetic ledger rows (through AppendUsage, so the rollups are kept as
// a gateway keeps them) to measure reports on a large ledger.
func newUsageGenerateCmd(e *env) *cobra.Command {
	var (
		rows                      int64
		days, keys, models, conns int
		batch                     int
	)
	cmd := &cobra.Command{
		Use:    "generate --rows N [--days 30] [--keys 20] [--models 8] [--connections 3] [--batch 4096]",
		Short:  "Append N synthetic ledger rows spread over the last days (for measurements)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rows <= 0 || days <= 0 || keys <= 0 || models <= 0 || conns <= 0 || batch <= 0 {
				return fmt.Errorf("--rows, --days, --keys, --models, --connections and --batch must be positive")
			}
			ctx := cmd.Context()
			s, err := e.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			start, end := time.Now(), time.Now().UTC()
			span := time.Duration(days) * 24 * time.Hour
			run := strconv.FormatInt(end.UnixNano(), 36)
			buf := make([]llmproxy.UsageRecord, 0, batch)
			for i := int64(0); i < rows; i++ {
				buf = append(buf, syntheticRecord(run, i, rows, end.Add(-span), span, keys, models, conns))
				if len(buf) == batch || i == rows-1 {
					if err := s.AppendUsage(ctx, buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			took := time.Since(start)
			return printf(e.stdout, "appended %d ledger rows in %s (%.0f rows/s)\n", rows, took.Round(time.Millisecond),
				float64(rows)/took.Seconds())
		},
	}
	f := cmd.Flags()
	f.Int64Var(&rows, "rows", 0, "how many rows")
	f.IntVar(&days, "days", 30, "spread over this many days back from now")
	f.IntVar(&keys, "keys", 20, "distinct keys")
	f.IntVar(&models, "models", 8, "distinct model aliases")
	f.IntVar(&conns, "connections", 3, "distinct connections")
	f.IntVar(&batch, "batch", 4096, "records per AppendUsage")
	return cmd
}

// syntheticRecord is the i-th of n generated records, evenly spread over
// [from, from+span); one in ten has an unknown cost. Keys, models and
// connections vary independently; one in 50 was refused with 429, one in
// 200 failed upstream (502) and one in 500 was a bad request (400); the
// latencies spread from 20 ms to 6 s, so the console's error filters and
// latency percentiles have something to read.
func syntheticRecord(run string, i, n int64, from time.Time, span time.Duration, keys, models, conns int) llmproxy.UsageRecord {
	r := llmproxy.UsageRecord{
		ID:               "gen_" + run + "_" + strconv.FormatInt(i, 36),
		Time:             from.Add(time.Duration(float64(span) * float64(i) / float64(n))),
		KeyID:            fmt.Sprintf("key_gen_%d", i%int64(keys)),
		AssignmentID:     fmt.Sprintf("asg_gen_%d", i%int64(keys)),
		Model:            fmt.Sprintf("model-%d", i/int64(keys)%int64(models)),
		ConnectionID:     fmt.Sprintf("conn_gen_%d", i/int64(keys*models)%int64(conns)),
		PromptTokens:     100 + i%900,
		CompletionTokens: 10 + i%300,
		CacheReadTokens:  i % 50,
		Status:           200,
		Endpoint:         llmproxy.EndpointChat,
	}
	switch {
	case i%500 == 7:
		r.Status = 400
	case i%200 == 3:
		r.Status = 502
	case i%50 == 1:
		r.Status = 429
	}
	r.Latency = 20*time.Millisecond + time.Duration(i*7919%6000)*time.Millisecond*time.Duration(1+i%3)/3
	r.TotalTokens = r.PromptTokens + r.CompletionTokens
	if i%10 != 0 {
		r.CostMicros, r.CostKnown = r.TotalTokens*3, true
	}
	return r
}
