package admin

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// WriteUsageCSV writes a usage report (rows grouped by the dimensions in
// by) as CSV, with the field names of `llm-proxy usage --json` as
// headings and exact micro-dollars beside dollars. keyNames maps key IDs
// to names (a deleted key's name is empty). The CLI's `usage --csv` and
// the web console's download both write it, so they are equal byte for
// byte.
func WriteUsageCSV(w io.Writer, rows []llmproxy.UsageRow, by []llmproxy.UsageGroup, keyNames map[string]string) error {
	c := csv.NewWriter(w)
	var head []string
	for _, g := range llmproxy.UsageGroups {
		if !slices.Contains(by, g) {
			continue
		}
		switch g {
		case llmproxy.GroupKey:
			head = append(head, "key_id", "key_name")
		case llmproxy.GroupAssignment:
			head = append(head, "assignment_id")
		case llmproxy.GroupModel:
			head = append(head, "model")
		case llmproxy.GroupConnection:
			head = append(head, "connection_id")
		case llmproxy.GroupDay:
			head = append(head, "day")
		}
	}
	head = append(head, "requests", "prompt_tokens", "cache_read_tokens", "cache_write_tokens", "completion_tokens",
		"total_tokens", "estimated_tokens", "cost_usd", "cost_micros", "unknown_cost")
	c.Write(head)
	for _, r := range rows {
		var rec []string
		for _, g := range llmproxy.UsageGroups {
			if !slices.Contains(by, g) {
				continue
			}
			switch g {
			case llmproxy.GroupKey:
				rec = append(rec, r.KeyID, keyNames[r.KeyID])
			case llmproxy.GroupAssignment:
				rec = append(rec, r.AssignmentID)
			case llmproxy.GroupModel:
				rec = append(rec, r.Model)
			case llmproxy.GroupConnection:
				rec = append(rec, r.ConnectionID)
			case llmproxy.GroupDay:
				rec = append(rec, r.Day.UTC().Format(time.DateOnly))
			}
		}
		rec = append(rec, itoa(r.Requests), itoa(r.PromptTokens), itoa(r.CacheReadTokens), itoa(r.CacheWriteTokens),
			itoa(r.CompletionTokens), itoa(r.TotalTokens), itoa(r.EstimatedTokens),
			strings.TrimPrefix(FormatUSD(r.CostMicros), "$"), itoa(r.CostMicros), itoa(r.UnknownCost))
		c.Write(rec)
	}
	c.Flush()
	return c.Error()
}

// FormatUSD writes micro-dollars as dollars: "$" and at least 2 decimals
// (cents), up to 6 (every micro-dollar) without trailing zeros beyond the
// cents, so that $12.50 and $0.000375 both read naturally and exactly.
func FormatUSD(micros int64) string {
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
