package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

var _ llmproxy.AlertOutbox = (*Store)(nil)

// outbox holds budget alert deliveries by ID, under its own lock. Its zero
// value is ready.
type outbox struct {
	mu   sync.Mutex
	rows map[string]llmproxy.AlertDelivery
}

// EnqueueAlert stores a copy of d unless its ID is stored already.
func (s *Store) EnqueueAlert(ctx context.Context, d *llmproxy.AlertDelivery) (bool, error) {
	if d == nil || d.ID == "" {
		return false, fmt.Errorf("%w: alert delivery without an ID", llmproxy.ErrInvalid)
	}
	o := &s.outbox
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.rows[d.ID]; ok {
		return false, nil
	}
	if o.rows == nil {
		o.rows = map[string]llmproxy.AlertDelivery{}
	}
	c := *d
	c.Payload = slices.Clone(d.Payload)
	o.rows[c.ID] = c
	return true, nil
}

// DueAlerts returns copies of the undelivered deliveries due at now.
func (s *Store) DueAlerts(ctx context.Context, now time.Time, limit int) ([]llmproxy.AlertDelivery, error) {
	o := &s.outbox
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []llmproxy.AlertDelivery
	for _, d := range o.rows {
		if d.DeliveredAt.IsZero() && !d.NextAt.After(now) {
			d.Payload = slices.Clone(d.Payload)
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b llmproxy.AlertDelivery) int {
		if c := a.NextAt.Compare(b.NextAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// MarkAlertDelivered records the delivery with id as done.
func (s *Store) MarkAlertDelivered(ctx context.Context, id string, at time.Time) error {
	return s.updateAlert(id, func(d *llmproxy.AlertDelivery) { d.DeliveredAt = at })
}

// MarkAlertAttempt records a failed attempt of the delivery with id.
func (s *Store) MarkAlertAttempt(ctx context.Context, id string, next time.Time, lastError string) error {
	return s.updateAlert(id, func(d *llmproxy.AlertDelivery) {
		d.Attempts++
		d.NextAt, d.LastError = next, lastError
	})
}

func (s *Store) updateAlert(id string, f func(*llmproxy.AlertDelivery)) error {
	o := &s.outbox
	o.mu.Lock()
	defer o.mu.Unlock()
	d, ok := o.rows[id]
	if !ok {
		return fmt.Errorf("%w: alert delivery %q", llmproxy.ErrNotFound, id)
	}
	f(&d)
	o.rows[id] = d
	return nil
}
