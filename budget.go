package llmproxy

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-llm-proxy/llmproxy/pricing"
)

// TypeInsufficientQuota is the error type (and code) of a request refused
// because a budget is spent, as OpenAI answers when an account's quota is.
const TypeInsufficientQuota = "insufficient_quota"

// The headers every answer under a budget carries, for the tighter of the
// key's and the assignment's budgets: what is left in dollars after this
// request's reservation, and when the period ends (RFC 3339, in the
// budget's zone; absent for a total budget).
const (
	HeaderBudgetRemaining = "X-Llm-Proxy-Budget-Remaining-Usd"
	HeaderBudgetReset     = "X-Llm-Proxy-Budget-Reset"
)

// clock, when set, replaces time.Now for budgets: their periods, the
// reservations against them and their restoration from the ledger. Only
// tests set it, to stand at a period's boundary.
var clock atomic.Pointer[func() time.Time]

// clockNow is the time budgets are reckoned at.
func clockNow() time.Time {
	if f := clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// zones caches time.LoadLocation by name: loading reads the zone database.
var zones sync.Map // string → *time.Location

// location is b's time zone; UTC when it is empty or unknown (the admin
// checks the name when the budget is stored).
func (b *Budget) location() *time.Location {
	if b.TZ == "" {
		return time.UTC
	}
	if l, ok := zones.Load(b.TZ); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(b.TZ)
	if err != nil {
		l = time.UTC
	}
	zones.Store(b.TZ, l)
	return l
}

// period is the calendar period of b holding now, in b's zone: from
// midnight to midnight (daily), Monday to Monday (weekly), the 1st to the
// 1st (monthly). A total budget has a zero start and no end. Days are
// counted with time.Date in the zone, so a period around a daylight
// saving change is 23 or 25 hours long.
func (b *Budget) period(now time.Time) (start, end time.Time) {
	loc := b.location()
	y, m, d := now.In(loc).Date()
	switch b.Period {
	case BudgetDaily:
		return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case BudgetWeekly:
		back := (int(now.In(loc).Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc), time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case BudgetMonthly:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Time{}, time.Time{}
}

// limitMicros is b's limit in micro-dollars.
func (b *Budget) limitMicros() int64 { return int64(b.USD*1e6 + 0.5) }

// counterKey names the Limiter counter of b's period starting at start
// for owner ("b:" and an assignment ID, or "bk:" and a key ID): a new
// period is a new counter, so a budget starts again exactly at its
// boundary with nothing to reset.
func counterKey(owner string, start time.Time) string {
	if start.IsZero() {
		return owner + ":total"
	}
	return owner + ":" + strconv.FormatInt(start.Unix(), 10)
}

// describe names b for messages, e.g. "daily budget of $0.01 (Asia/Bangkok)".
func (b *Budget) describe() string {
	s := fmt.Sprintf("%s budget of $%s", b.Period, formatUSD(b.limitMicros()))
	if b.TZ != "" && b.Period != BudgetTotal {
		s += " (" + b.TZ + ")"
	}
	return s
}

// formatUSD writes micro-dollars as dollars with no trailing zeros past
// the cents: 10000 → "0.01", 4200 → "0.0042".
func formatUSD(micros int64) string {
	s := strconv.FormatFloat(float64(micros)/1e6, 'f', 6, 64)
	for len(s) > 0 && s[len(s)-1] == '0' && s[len(s)-3] != '.' {
		s = s[:len(s)-1]
	}
	return s
}

// budgetHold is micro-dollars reserved against one budget's counter.
type budgetHold struct {
	key string
	n   int64
	of  budgetOf // the budget, for alerts
}

// spending is what a request holds against its budgets, settled to its
// real cost when it ends.
type spending struct {
	price pricing.Price
	holds []budgetHold
	who   alertWho
}

// budgetOf is one budget that applies to a request.
type budgetOf struct {
	b     *Budget
	owner string // "the key's" or "the assignment's", for messages
	key   string
	// assignment is set for an assignment's budget (a key's otherwise).
	assignment bool
	start      time.Time
	end        time.Time
}

// takeBudgets reserves the request's estimated cost against the budgets
// of gr's assignment and of the caller's key (which counts all of the
// key's assignments), and sets the budget headers. A spent budget
// answers 429 insufficient_quota; a model without a price under a budget
// answers 403, since its spend could not be counted.
func (g *Gateway) takeBudgets(ctx context.Context, w http.ResponseWriter, x *exchange, gr grant) error {
	now := clockNow()
	var bs [2]budgetOf
	n := 0
	add := func(b *Budget, owner, id string) {
		if b == nil {
			return
		}
		start, end := b.period(now)
		bs[n] = budgetOf{b: b, owner: owner, key: counterKey(id, start), start: start, end: end, assignment: id[:2] == "b:"}
		n++
	}
	if a := gr.assignment; a != nil {
		add(a.Budget, "the assignment's", "b:"+a.ID)
	}
	if x.caller.key != nil {
		k := &x.caller.key.key
		add(k.Budget, "the key's", "bk:"+k.ID)
	}
	if n == 0 {
		return nil
	}
	if !gr.priced {
		return &Error{Status: http.StatusForbidden, Type: TypePermission, Code: "model_not_priced",
			Message: fmt.Sprintf("model %q has no price, so %s %s cannot be enforced; ask an administrator to set the model's price", gr.model.Name, bs[0].owner, bs[0].b.describe())}
	}
	prompt, completion := estimateSplit(x, g.cfg.DefaultMaxTokens)
	est := gr.price.Cost(prompt, completion, 0, 0)
	sp := &spending{price: gr.price}
	if x.caller.key != nil {
		sp.who.keyID, sp.who.keyName = x.caller.key.key.ID, x.caller.key.key.Name
	}
	if gr.assignment != nil {
		sp.who.assignmentID = gr.assignment.ID
	}
	var tight Decision
	var tightOf *budgetOf
	for i := range n {
		bo := &bs[i]
		var d Decision
		err := g.limit(func(l Limiter) (err error) {
			d, err = l.ReserveTokens(ctx, bo.key, est, bo.b.limitMicros(), 0, now)
			return err
		})
		if err != nil {
			g.releaseBudgets(sp)
			return err
		}
		if tightOf == nil || d.Remaining < tight.Remaining || !d.Allowed {
			tight, tightOf = d, bo
		}
		if !d.Allowed {
			break
		}
		sp.holds = append(sp.holds, budgetHold{key: bo.key, n: est, of: *bo})
		g.expireCounter(bo.key, bo.end, now)
	}
	h := w.Header()
	h.Set(HeaderBudgetRemaining, formatUSD(tight.Remaining))
	if !tightOf.end.IsZero() {
		h.Set(HeaderBudgetReset, tightOf.end.Format(time.RFC3339))
	}
	if !tight.Allowed {
		g.releaseBudgets(sp)
		return budgetSpent(tightOf, tight, est, now)
	}
	x.spend = sp
	return nil
}

// budgetSpent is the 429 answered when bo's budget cannot hold a request
// estimated at est micro-dollars.
func budgetSpent(bo *budgetOf, d Decision, est int64, now time.Time) *Error {
	e := &Error{Status: http.StatusTooManyRequests, Type: TypeInsufficientQuota, Code: TypeInsufficientQuota}
	spent := d.Limit - d.Remaining
	e.Message = fmt.Sprintf("Budget exceeded: %s %s has $%s spent of $%s; this request may cost about $%s.",
		bo.owner, bo.b.describe(), formatUSD(spent), formatUSD(d.Limit), formatUSD(est))
	if !bo.end.IsZero() {
		e.RetryAfter = bo.end.Sub(now)
		e.Message += " It starts again at " + bo.end.Format(time.RFC3339) + "."
	}
	return e
}

// settleBudgets corrects x's budget reservations to the request's real
// cost (nothing, when it failed).
func (g *Gateway) settleBudgets(x *exchange, u Usage) {
	sp := x.spend
	if sp == nil {
		return
	}
	x.spend = nil
	cost := sp.price.Cost(u.PromptTokens, u.CompletionTokens, u.CacheReadTokens, u.CacheWriteTokens)
	for _, h := range sp.holds {
		g.adjust(h.key, cost-h.n, 0, time.Time{})
		g.checkAlerts(h, sp.who, cost)
	}
}

// releaseBudgets returns sp's reservations in full.
func (g *Gateway) releaseBudgets(sp *spending) {
	for _, h := range sp.holds {
		g.adjust(h.key, -h.n, 0, time.Time{})
	}
	sp.holds = nil
}

// adjust corrects a Limiter counter by delta on the shared limiter,
// falling back to the local one.
func (g *Gateway) adjust(key string, delta int64, window time.Duration, at time.Time) {
	if delta == 0 {
		return
	}
	if g.limiter == Limiter(g.local) {
		g.local.AdjustTokens(context.Background(), key, delta, window, at)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.limiter.AdjustTokens(ctx, key, delta, window, at); err != nil {
		g.local.AdjustTokens(ctx, key, delta, window, at)
	}
}

// periodGrace keeps a period's counters a day past its end, for the
// settlement of requests still running at the boundary.
const periodGrace = 24 * time.Hour

// expireCounter tells the limiters, once per counter, to drop the counter
// of key a day after its period's end: a new period is a new counter, and
// the old ones would otherwise stay in Redis and in memory for good. A
// shared limiter that cannot be told now is told on a later request.
func (g *Gateway) expireCounter(key string, end, now time.Time) {
	if end.IsZero() {
		return
	}
	g.expiryMu.RLock()
	_, seen := g.expiring[key]
	g.expiryMu.RUnlock()
	if seen {
		return
	}
	g.expiryMu.Lock()
	if _, seen = g.expiring[key]; !seen {
		if g.expiring == nil {
			g.expiring = map[string]time.Time{}
		}
		g.expiring[key] = end
		if now.Sub(g.expirySwept) > time.Hour {
			g.expirySwept = now
			for k, e := range g.expiring {
				if now.After(e) {
					delete(g.expiring, k)
				}
			}
		}
	}
	g.expiryMu.Unlock()
	if seen {
		return
	}
	ttl := end.Sub(now) + periodGrace
	g.local.ExpireTokens(context.Background(), key, ttl, now)
	if e, ok := g.limiter.(CounterExpirer); ok && g.limiter != Limiter(g.local) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := e.ExpireTokens(ctx, key, ttl, now); err != nil {
			g.expiryMu.Lock()
			delete(g.expiring, key) // told on a later request
			g.expiryMu.Unlock()
		}
		cancel()
	}
}

// restoreBudgets seeds the local counters of budgets new to this process
// with the current period's spend from the usage ledger, so that a
// restart does not hand out a fresh budget. A shared limiter keeps its
// own counters.
func (g *Gateway) restoreBudgets(ctx context.Context, prev *snapshot, keys []VirtualKey) {
	if g.limiter != Limiter(g.local) {
		return
	}
	known := map[string]Budget{}
	if prev != nil {
		for _, e := range prev.keys {
			if b := e.key.Budget; b != nil {
				known["bk:"+e.key.ID] = *b
			}
			for _, a := range e.key.Assignments {
				if a.Budget != nil {
					known["b:"+a.ID] = *a.Budget
				}
			}
		}
	}
	now := clockNow()
	restore := func(b *Budget, owner string, f UsageFilter) {
		if b == nil {
			return
		}
		if old, ok := known[owner]; ok && SameBudget(&old, b) {
			return
		}
		start, end := b.period(now)
		_, spent, err := SpentSince(ctx, g.cfg.Storage, f, start)
		if err != nil {
			g.log.Warn("cannot restore a budget's spend from the ledger", "budget", owner, "err", err)
			return
		}
		g.local.SetTokensUsed(counterKey(owner, start), spent, 0, now)
		g.local.SetTokensUsed(alertCounter(counterKey(owner, start)), spent, 0, now)
		g.expireCounter(counterKey(owner, start), end, now)
		g.expireCounter(alertCounter(counterKey(owner, start)), end, now)
	}
	for i := range keys {
		k := &keys[i]
		restore(k.Budget, "bk:"+k.ID, UsageFilter{KeyID: k.ID})
		for j := range k.Assignments {
			a := &k.Assignments[j]
			restore(a.Budget, "b:"+a.ID, UsageFilter{AssignmentID: a.ID})
		}
	}
}
