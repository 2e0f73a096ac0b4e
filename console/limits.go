package console

import (
	"context"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-llm-proxy/llmproxy"
	"github.com/go-llm-proxy/llmproxy/admin"
)

// The limits and budget of a key: the form fields that set them, as the
// CLI's vkey flags do, and how the pages describe them.

// budgetPeriods are the choices of the budget period select.
var budgetPeriods = []string{llmproxy.BudgetDaily, llmproxy.BudgetWeekly, llmproxy.BudgetMonthly, llmproxy.BudgetTotal}

// limitsForm holds the limit fields of the new-key and edit-limits
// forms as typed, to fill the form again.
type limitsForm struct {
	RPM, TokenLimit, TokenWindow, Budget, BudgetPeriod, BudgetTZ string
}

func readLimitsForm(f url.Values) limitsForm {
	l := limitsForm{
		RPM: strings.TrimSpace(f.Get("rpm")), TokenLimit: strings.TrimSpace(f.Get("token_limit")),
		TokenWindow: strings.TrimSpace(f.Get("token_window")), Budget: strings.TrimSpace(f.Get("budget")),
		BudgetPeriod: strings.TrimSpace(f.Get("budget_period")), BudgetTZ: strings.TrimSpace(f.Get("budget_tz")),
	}
	if l.BudgetPeriod == "" {
		l.BudgetPeriod = llmproxy.BudgetMonthly
	}
	if l.BudgetTZ == "" {
		l.BudgetTZ = "UTC"
	}
	return l
}

// limits are a form's limits parsed: an assignment's limits (the CLI's
// --tps, --token-limit and --token-window, the rate given per minute)
// and the key's budget (nil: none).
type limits struct {
	assignment llmproxy.Assignment
	budget     *llmproxy.Budget
}

// parse checks the fields that are numbers and durations, naming the
// field; admin.Service checks the rest as it does the CLI's flags.
func (l limitsForm) parse() (limits, error) {
	var out limits
	if l.RPM != "" {
		rpm, err := strconv.ParseFloat(l.RPM, 64)
		if err != nil || math.IsNaN(rpm) || math.IsInf(rpm, 0) || rpm < 0 {
			return out, fieldError("Requests per minute", "want a number of requests, 0 or more (empty: no limit)")
		}
		out.assignment.TPS = rpm / 60
	}
	if l.TokenLimit != "" {
		n, err := strconv.ParseInt(l.TokenLimit, 10, 64)
		if err != nil || n < 0 {
			return out, fieldError("Tokens per window", "want a whole number of tokens, 0 or more (empty: no limit)")
		}
		out.assignment.TokenLimit = n
	}
	w, err := llmproxy.ParseWindow(l.TokenWindow)
	if err != nil {
		return out, fieldError("Token window", userMessage(err))
	}
	out.assignment.TokenWindow = w
	if l.Budget != "" {
		usd, err := strconv.ParseFloat(strings.TrimPrefix(l.Budget, "$"), 64)
		if err != nil || math.IsNaN(usd) || math.IsInf(usd, 0) || usd <= 0 {
			return out, fieldError("Budget (USD)", "want a positive number of US dollars, e.g. 50 (empty: no budget)")
		}
		out.budget = &llmproxy.Budget{USD: usd, Period: l.BudgetPeriod, TZ: l.BudgetTZ}
		if err := admin.CheckBudget(out.budget); err != nil {
			return out, err
		}
	}
	return out, nil
}

// formOf is the limits form filled with a key's current limits: those of
// its first assignment (the form sets every assignment's) and its
// budget.
func formOf(k *llmproxy.VirtualKey) limitsForm {
	l := limitsForm{BudgetPeriod: llmproxy.BudgetMonthly, BudgetTZ: "UTC"}
	if len(k.Assignments) > 0 {
		a := k.Assignments[0]
		if a.TPS > 0 {
			l.RPM = formatNumber(a.TPS * 60)
		}
		if a.TokenLimit > 0 {
			l.TokenLimit = strconv.FormatInt(a.TokenLimit, 10)
		}
		l.TokenWindow = formatWindow(a.TokenWindow)
	}
	if b := k.Budget; b != nil {
		l.Budget, l.BudgetPeriod = formatNumber(b.USD), b.Period
		if b.TZ != "" {
			l.BudgetTZ = b.TZ
		}
	}
	return l
}

// describeLimits writes an assignment's limits, e.g. "60 rpm · 10000
// tokens / 1h".
func describeLimits(a *llmproxy.Assignment) string {
	var parts []string
	if a.TPS > 0 {
		s := formatNumber(a.TPS*60) + " rpm"
		if a.Burst > 0 {
			s += " (burst " + strconv.Itoa(a.Burst) + ")"
		}
		parts = append(parts, s)
	}
	if a.TokenLimit > 0 {
		s := strconv.FormatInt(a.TokenLimit, 10) + " tokens"
		if a.TokenWindow > 0 {
			s += " / " + formatWindow(a.TokenWindow)
		} else {
			s += " in all"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no limits"
	}
	return strings.Join(parts, " · ")
}

// describeBudget writes a budget, e.g. "$50 monthly (Asia/Bangkok)".
func describeBudget(b *llmproxy.Budget) string {
	if b == nil {
		return "none"
	}
	s := dollars(b.USD) + " " + b.Period
	if b.Period != llmproxy.BudgetTotal {
		tz := b.TZ
		if tz == "" {
			tz = "UTC"
		}
		s += " (" + tz + ")"
	}
	return s
}

// budgetView is a budget with what was spent in its current period.
type budgetView struct {
	Describe           string
	Limit, Spent, Left int64     // micro-dollars
	Start, Reset       time.Time // zero for a total budget
	Total              bool
	PercentUsed        int
}

func (c *Console) budgetView(ctx context.Context, b *llmproxy.Budget, f llmproxy.UsageFilter, now time.Time) (*budgetView, error) {
	if b == nil {
		return nil, nil
	}
	start, end := b.Bounds(now)
	_, spent, err := llmproxy.SpentSince(ctx, c.storage, f, start)
	if err != nil {
		return nil, err
	}
	limit := int64(math.Round(b.USD * 1e6))
	v := &budgetView{Describe: describeBudget(b), Limit: limit, Spent: spent, Left: max(limit-spent, 0),
		Start: start, Reset: end, Total: b.Period == llmproxy.BudgetTotal}
	if limit > 0 {
		v.PercentUsed = int(min(spent*100/limit, 999))
	}
	return v, nil
}
