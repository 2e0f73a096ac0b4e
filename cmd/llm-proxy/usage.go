package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

type usageJSON struct {
	KeyID            string `json:"key_id"` // empty for the master key
	KeyName          string `json:"key_name,omitempty"`
	Model            string `json:"model"`
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	TotalTokens      int64  `json:"total_tokens"`
	EstimatedTokens  int64  `json:"estimated_tokens"`
	// The prompt tokens read from and written to the upstream's prompt
	// cache (part of prompt_tokens).
	CacheReadTokens  int64 `json:"cache_read_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
	// The known cost in dollars and in micro-dollars (exact), and how
	// many requests had no known cost (no price for their model, or
	// written before the ledger recorded cost), which it leaves out.
	CostUSD     float64 `json:"cost_usd"`
	CostMicros  int64   `json:"cost_micros"`
	UnknownCost int64   `json:"unknown_cost"`
}

func newUsageCmd(e *env) *cobra.Command {
	var (
		key, model, since string
		asJSON            bool
	)
	cmd := &cobra.Command{
		Use:   "usage [--key ID] [--model ALIAS] [--since 24h] [--json]",
		Short: "Report token usage and its cost by key and model",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f := llmproxy.UsageFilter{KeyID: key, Model: model}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			return e.admin(ctx, func(a *admin.Service) error {
				sums, err := a.Usage(ctx, f)
				if err != nil {
					return err
				}
				keyNames := map[string]string{}
				if ks, err := a.ListKeys(ctx, llmproxy.ListOptions{}); err == nil {
					for _, k := range ks {
						keyNames[k.ID] = k.Name
					}
				}
				if asJSON {
					out := make([]usageJSON, 0, len(sums))
					for _, s := range sums {
						out = append(out, usageJSON{
							KeyID: s.KeyID, KeyName: keyNames[s.KeyID], Model: s.Model, Requests: s.Requests,
							PromptTokens: s.PromptTokens, CompletionTokens: s.CompletionTokens, TotalTokens: s.TotalTokens,
							EstimatedTokens: s.EstimatedTokens, CacheReadTokens: s.CacheReadTokens, CacheWriteTokens: s.CacheWriteTokens,
							CostUSD: float64(s.CostMicros) / 1e6, CostMicros: s.CostMicros, UnknownCost: s.UnknownCost,
						})
					}
					return writeJSON(e.stdout, out)
				}
				t := table(e.stdout)
				// The cache columns follow PROMPT, of which they are part;
				// UNKNOWN-COST counts the requests that COST leaves out.
				row(t, "KEY", "MODEL", "REQUESTS", "PROMPT", "CACHE-READ", "CACHE-WRITE", "COMPLETION", "TOTAL", "ESTIMATED",
					"COST", "UNKNOWN-COST")
				var total llmproxy.UsageSummary
				for _, s := range sums {
					k := "(master key)"
					if s.KeyID != "" {
						k = s.KeyID
						if n, ok := keyNames[s.KeyID]; ok {
							k = n + " (" + s.KeyID + ")"
						}
					}
					usageRow(t, k, s.Model, s)
					total.Requests += s.Requests
					total.PromptTokens += s.PromptTokens
					total.CacheReadTokens += s.CacheReadTokens
					total.CacheWriteTokens += s.CacheWriteTokens
					total.CompletionTokens += s.CompletionTokens
					total.TotalTokens += s.TotalTokens
					total.EstimatedTokens += s.EstimatedTokens
					total.CostMicros += s.CostMicros
					total.UnknownCost += s.UnknownCost
				}
				if len(sums) > 1 {
					usageRow(t, "TOTAL", "", total)
				}
				return t.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "only this key (ID or name)")
	f.StringVar(&model, "model", "", "only this model alias")
	f.StringVar(&since, "since", "", "only usage since: a duration back from now (24h, 30d), a date or an RFC 3339 time")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// usageRow writes one row of the usage table.
func usageRow(t io.Writer, key, model string, s llmproxy.UsageSummary) {
	row(t, key, model, itoa(s.Requests), itoa(s.PromptTokens), itoa(s.CacheReadTokens), itoa(s.CacheWriteTokens),
		itoa(s.CompletionTokens), itoa(s.TotalTokens), itoa(s.EstimatedTokens), formatUSD(s.CostMicros), itoa(s.UnknownCost))
}

// formatUSD writes micro-dollars as dollars: "$" and at least 2 decimals
// (cents), up to 6 (every micro-dollar) without trailing zeros beyond the
// cents, so that $12.50 and $0.000375 both read naturally and exactly.
func formatUSD(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	frac := strings.TrimRight(fmt.Sprintf("%06d", micros%1_000_000), "0")
	if len(frac) < 2 {
		frac += strings.Repeat("0", 2-len(frac))
	}
	return sign + "$" + itoa(micros/1_000_000) + "." + frac
}

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
