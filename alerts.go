package llmproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// Budget alerts: when the settled spend of a budget's period crosses 50%,
// 80% or 100% of its limit, one "budget.threshold" event is written to the
// Storage's AlertOutbox, and a background sender POSTs it to every
// Config.AlertWebhooks URL, retrying with exponential backoff until the
// receiver answers 2xx (at-least-once; receivers deduplicate by the
// X-Llm-Proxy-Event-Id header).
//
// Exactly one crossing per threshold and period: each settled request adds
// its real cost to a second Limiter counter of the budget's period (the
// "alert:" counter, which holds settled spend only, never estimates, so it
// only grows). The Limiter returns the counter's value after the addition
// atomically (a Lua script on a shared Redis), so the additions of all
// replicas form one sequence of disjoint intervals (after-cost, after], and
// exactly one of them holds a given threshold. Only the request whose
// interval holds it enqueues the event. When the shared limiter is down
// and replicas count locally, or a local counter restarts, a crossing may
// be seen twice; the outbox's idempotency ID (owner, period start,
// threshold) then makes the second enqueue a no-op.

// AlertThresholds are the fractions of a budget's USD at which an alert is
// sent. Configurable thresholds per budget would need a field on Budget
// stored by every backend and set by the CLI; they come later.
var AlertThresholds = []float64{0.5, 0.8, 1}

// AlertTypeBudgetThreshold is the type of a budget alert event.
const AlertTypeBudgetThreshold = "budget.threshold"

// Headers of a webhook delivery: the event's idempotency ID and, when
// Config.AlertWebhookSecret is set, "sha256=" and the hex HMAC-SHA256 of
// the body under that secret.
const (
	HeaderAlertEventID   = "X-Llm-Proxy-Event-Id"
	HeaderAlertSignature = "X-Llm-Proxy-Signature"
)

// AlertOutbox is a durable queue of alert deliveries, implemented by every
// standard backend. A Storage without it sends no alerts.
type AlertOutbox interface {
	// EnqueueAlert stores d unless a delivery with d.ID is stored already
	// (then it does nothing and reports false): the ID is the idempotency
	// key of a crossing and webhook.
	EnqueueAlert(ctx context.Context, d *AlertDelivery) (bool, error)
	// DueAlerts returns up to limit undelivered deliveries whose NextAt is
	// not after now, by NextAt then ID.
	DueAlerts(ctx context.Context, now time.Time, limit int) ([]AlertDelivery, error)
	// MarkAlertDelivered records that the delivery with id succeeded at
	// at; it is then never due again.
	MarkAlertDelivered(ctx context.Context, id string, at time.Time) error
	// MarkAlertAttempt records a failed attempt: Attempts grows by one,
	// LastError is set and the delivery is next due at next.
	MarkAlertAttempt(ctx context.Context, id string, next time.Time, lastError string) error
}

// AlertDelivery is one event to POST to one webhook.
type AlertDelivery struct {
	// ID is unique per event and URL: the event ID, "@" and a hash of URL.
	ID string
	// EventID is the event's idempotency ID, the same for every URL.
	EventID string
	// URL is the webhook.
	URL string
	// Payload is the JSON body, fixed when the event is enqueued so that
	// every attempt sends (and signs) the same bytes.
	Payload []byte
	// CreatedAt is when the event was enqueued.
	CreatedAt time.Time
	// NextAt is when the delivery is next due.
	NextAt time.Time
	// Attempts counts failed attempts.
	Attempts int
	// LastError describes the last failed attempt.
	LastError string
	// DeliveredAt is when a receiver accepted it; zero until then.
	DeliveredAt time.Time
}

// AlertEvent is the JSON body of a budget alert.
type AlertEvent struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Key is the virtual key whose request crossed the threshold.
	Key struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"key"`
	// AssignmentID is set for an assignment's budget, and for a key's
	// budget when the request went through an assignment.
	AssignmentID string `json:"assignment_id,omitempty"`
	// Scope is "key" or "assignment": whose budget it is.
	Scope  string `json:"scope"`
	Budget struct {
		USD    float64 `json:"usd"`
		Period string  `json:"period"`
		TZ     string  `json:"tz,omitempty"`
	} `json:"budget"`
	// Threshold is the fraction of the budget crossed, e.g. 0.8.
	Threshold float64 `json:"threshold"`
	// SpentUSD is the period's settled spend right after the crossing.
	SpentUSD float64 `json:"spent_usd"`
	// PeriodStart and PeriodEnd bound the period; both absent for a total
	// budget.
	PeriodStart *time.Time `json:"period_start,omitempty"`
	PeriodEnd   *time.Time `json:"period_end,omitempty"`
}

// alertCeiling is the limit the alert counters are reserved against: never
// reached (4.5 billion dollars), and exact in a Lua double.
const alertCeiling = int64(1) << 52

// alertCounter names the settled-spend counter of a budget counter key.
func alertCounter(budgetKey string) string { return "alert:" + budgetKey }

// alertWho identifies whose request spent, for the event.
type alertWho struct {
	keyID, keyName, assignmentID string
}

// checkAlerts adds cost to the settled spend of h's budget period and
// enqueues an event for every threshold the addition crosses.
func (g *Gateway) checkAlerts(h budgetHold, who alertWho, cost int64) {
	if g.outbox == nil || cost <= 0 || h.of.b == nil {
		return
	}
	now := clockNow()
	var d Decision
	err := g.limit(func(l Limiter) (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		d, err = l.ReserveTokens(ctx, alertCounter(h.key), cost, alertCeiling, 0, now)
		return err
	})
	if err != nil {
		g.log.Warn("cannot count a budget's spend for alerts", "budget", h.key, "err", err)
		return
	}
	g.expireCounter(alertCounter(h.key), h.of.end, now)
	after := alertCeiling - d.Remaining
	before := after - cost
	limit := h.of.b.limitMicros()
	for _, t := range h.of.b.alertThresholds() {
		at := int64(t*float64(limit) + 0.5)
		if before < at && at <= after {
			g.enqueueAlert(h, who, t, after, now)
		}
	}
}

// enqueueAlert writes the event of h's budget crossing threshold t, one
// delivery per webhook.
func (g *Gateway) enqueueAlert(h budgetHold, who alertWho, t float64, spent int64, now time.Time) {
	b := h.of.b
	var e AlertEvent
	e.ID = h.key + ":" + strconv.FormatFloat(t*100, 'f', -1, 64)
	e.Type = AlertTypeBudgetThreshold
	e.Time = now.UTC()
	e.Key.ID, e.Key.Name = who.keyID, who.keyName
	e.AssignmentID = who.assignmentID
	e.Scope = "key"
	if h.of.assignment {
		e.Scope = "assignment"
	}
	e.Budget.USD, e.Budget.Period, e.Budget.TZ = b.USD, b.Period, b.TZ
	e.Threshold = t
	e.SpentUSD = float64(spent) / 1e6
	if !h.of.start.IsZero() {
		s, end := h.of.start, h.of.end
		e.PeriodStart, e.PeriodEnd = &s, &end
	}
	body, err := json.Marshal(&e)
	if err != nil {
		g.log.Error("cannot encode a budget alert", "event", e.ID, "err", err)
		return
	}
	g.log.Info("budget alert", "event", e.ID, "key", who.keyName, "threshold", t, "spent_usd", e.SpentUSD, "budget_usd", b.USD)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, u := range g.cfg.AlertWebhooks {
		d := &AlertDelivery{ID: deliveryID(e.ID, u), EventID: e.ID, URL: u, Payload: body, CreatedAt: e.Time, NextAt: e.Time}
		added, err := g.outbox.EnqueueAlert(ctx, d)
		if err != nil {
			g.alertFailures.Add(1)
			g.log.Error("cannot enqueue a budget alert; it is lost", "event", e.ID, "url", u, "err", err)
			continue
		}
		if added {
			g.alertsEnqueued.Add(1)
		}
	}
	g.wakeAlerts()
}

// deliveryID is the outbox ID of event id's delivery to url.
func deliveryID(id, url string) string {
	sum := sha256.Sum256([]byte(url))
	return id + "@" + hex.EncodeToString(sum[:6])
}

// alertThresholds are the fractions of b's USD at which alerts fire: its
// own Alerts when set, else AlertThresholds.
func (b *Budget) alertThresholds() []float64 {
	if b.Alerts != nil {
		return b.Alerts
	}
	return AlertThresholds
}
