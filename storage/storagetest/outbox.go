package storagetest

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-llm-proxy/llmproxy"
)

// The AlertOutbox part of the suite; a Storage without it skips it.

func alertOutbox(t *testing.T, s llmproxy.Storage) llmproxy.AlertOutbox {
	t.Helper()
	o, ok := s.(llmproxy.AlertOutbox)
	if !ok {
		t.Skipf("%T does not implement llmproxy.AlertOutbox", s)
	}
	return o
}

var outboxT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testOutbox(t *testing.T, s llmproxy.Storage) {
	o := alertOutbox(t, s)
	ctx := t.Context()
	body := []byte(`{"id":"bk:k1:1:50","x":"h\u00e9"}`)
	d := &llmproxy.AlertDelivery{ID: "bk:k1:1:50@aa", EventID: "bk:k1:1:50", URL: "http://127.0.0.1:1/h", Payload: body,
		CreatedAt: outboxT0, NextAt: outboxT0}
	if added, err := o.EnqueueAlert(ctx, d); err != nil || !added {
		t.Fatalf("EnqueueAlert = %v, %v; want true", added, err)
	}
	dup := *d
	dup.Payload = []byte(`{"other":1}`)
	if added, err := o.EnqueueAlert(ctx, &dup); err != nil || added {
		t.Fatalf("second EnqueueAlert = %v, %v; want false, nil", added, err)
	}
	later := &llmproxy.AlertDelivery{ID: "b:a1:1:80@aa", EventID: "b:a1:1:80", URL: "http://x/", Payload: []byte(`{}`),
		CreatedAt: outboxT0, NextAt: outboxT0.Add(time.Minute)}
	if _, err := o.EnqueueAlert(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := o.EnqueueAlert(ctx, &llmproxy.AlertDelivery{}); !errors.Is(err, llmproxy.ErrInvalid) {
		t.Errorf("EnqueueAlert without an ID = %v; want ErrInvalid", err)
	}
	if got, _ := o.DueAlerts(ctx, outboxT0.Add(-time.Second), 10); len(got) != 0 {
		t.Errorf("DueAlerts before NextAt = %d deliveries; want 0", len(got))
	}
	got, err := o.DueAlerts(ctx, outboxT0, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("DueAlerts = %d, %v; want 1", len(got), err)
	}
	g := got[0]
	if g.ID != d.ID || g.EventID != d.EventID || g.URL != d.URL || !bytes.Equal(g.Payload, body) ||
		!g.CreatedAt.Equal(outboxT0) || !g.NextAt.Equal(outboxT0) || g.Attempts != 0 {
		t.Errorf("DueAlerts = %+v; want %+v (the first enqueue's)", g, *d)
	}
	got, _ = o.DueAlerts(ctx, outboxT0.Add(time.Hour), 1)
	if len(got) != 1 || got[0].ID != d.ID {
		t.Errorf("DueAlerts limit 1 = %v; want the earliest", got)
	}
	if err := o.MarkAlertAttempt(ctx, d.ID, outboxT0.Add(2*time.Minute), "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	got, _ = o.DueAlerts(ctx, outboxT0.Add(time.Minute), 10)
	if len(got) != 1 || got[0].ID != later.ID {
		t.Errorf("DueAlerts after a failed attempt = %v; want only %s", got, later.ID)
	}
	got, _ = o.DueAlerts(ctx, outboxT0.Add(time.Hour), 10)
	if len(got) != 2 || got[0].ID != later.ID || got[1].Attempts != 1 || got[1].LastError != "503 Service Unavailable" {
		t.Errorf("DueAlerts later = %+v; want %s then %s with one attempt", got, later.ID, d.ID)
	}
	if err := o.MarkAlertDelivered(ctx, d.ID, outboxT0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ = o.DueAlerts(ctx, outboxT0.Add(time.Hour), 10)
	if len(got) != 1 || got[0].ID != later.ID {
		t.Errorf("DueAlerts after delivery = %v; want only %s", got, later.ID)
	}
	if added, _ := o.EnqueueAlert(ctx, d); added {
		t.Error("EnqueueAlert of a delivered ID added it again")
	}
	if err := o.MarkAlertDelivered(ctx, "missing", outboxT0); !errors.Is(err, llmproxy.ErrNotFound) {
		t.Errorf("MarkAlertDelivered(missing) = %v; want ErrNotFound", err)
	}
	if err := o.MarkAlertAttempt(ctx, "missing", outboxT0, "x"); !errors.Is(err, llmproxy.ErrNotFound) {
		t.Errorf("MarkAlertAttempt(missing) = %v; want ErrNotFound", err)
	}
}

// testOutboxConcurrentEnqueue enqueues one ID from many goroutines: exactly
// one of them adds it.
func testOutboxConcurrentEnqueue(t *testing.T, s llmproxy.Storage) {
	o := alertOutbox(t, s)
	var added atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := o.EnqueueAlert(t.Context(), &llmproxy.AlertDelivery{ID: "same", EventID: "same", URL: "http://x/",
				Payload: []byte(`{}`), CreatedAt: outboxT0, NextAt: outboxT0})
			if err != nil {
				t.Error(err)
			}
			if ok {
				added.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := added.Load(); n != 1 {
		t.Errorf("%d concurrent enqueues of one ID added it; want 1", n)
	}
}
