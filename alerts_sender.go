package llmproxy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"
)

// alertBatch bounds the deliveries one pass of the sender takes.
const alertBatch = 100

// alertMaxBackoff caps the wait between two attempts of a delivery.
const alertMaxBackoff = time.Hour

// SignAlert returns the X-Llm-Proxy-Signature value of body under secret:
// "sha256=" and the hex HMAC-SHA256. A receiver recomputes it over the raw
// body and compares with hmac.Equal.
func SignAlert(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// wakeAlerts tells the sender that a delivery is due now.
func (g *Gateway) wakeAlerts() {
	select {
	case g.alertWake <- struct{}{}:
	default:
	}
}

// sendAlerts delivers due alerts until ctx ends: when woken by an enqueue,
// and every poll interval for retries and for events another replica (or
// an earlier run of this process) enqueued.
func (g *Gateway) sendAlerts(ctx context.Context) {
	t := time.NewTicker(g.cfg.PollInterval)
	defer t.Stop()
	for {
		g.sendDueAlerts(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.alertWake:
		}
	}
}

// sendDueAlerts makes one attempt at every due delivery.
func (g *Gateway) sendDueAlerts(ctx context.Context) {
	due, err := g.outbox.DueAlerts(ctx, time.Now(), alertBatch)
	if err != nil {
		if ctx.Err() == nil {
			g.log.Warn("cannot read the alert outbox", "err", err)
		}
		return
	}
	for i := range due {
		if ctx.Err() != nil {
			return
		}
		g.deliverAlert(ctx, &due[i])
	}
}

// deliverAlert POSTs d once and records the outcome. A failure is retried
// after AlertRetryBase doubled per earlier failure, up to an hour.
func (g *Gateway) deliverAlert(ctx context.Context, d *AlertDelivery) {
	err := g.postAlert(ctx, d)
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err == nil {
		g.alertsDelivered.Add(1)
		g.log.Info("budget alert delivered", "event", d.EventID, "url", d.URL, "attempts", d.Attempts+1)
		if err := g.outbox.MarkAlertDelivered(mctx, d.ID, time.Now()); err != nil {
			g.log.Warn("cannot mark a budget alert delivered; it will be sent again", "event", d.EventID, "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		return // shutting down: the attempt was cut, not failed
	}
	g.alertFailures.Add(1)
	wait := g.cfg.AlertRetryBase << min(d.Attempts, 30)
	if wait <= 0 || wait > alertMaxBackoff {
		wait = alertMaxBackoff
	}
	g.log.Warn("budget alert delivery failed", "event", d.EventID, "url", d.URL, "attempt", d.Attempts+1, "retry_in", wait, "err", err)
	if err := g.outbox.MarkAlertAttempt(mctx, d.ID, time.Now().Add(wait), err.Error()); err != nil {
		g.log.Warn("cannot record a failed budget alert attempt", "event", d.EventID, "err", err)
	}
}

// postAlert sends d's payload, signed, and wants a 2xx answer.
func (g *Gateway) postAlert(ctx context.Context, d *AlertDelivery) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llm-proxy")
	req.Header.Set(HeaderAlertEventID, d.EventID)
	if g.cfg.AlertWebhookSecret != "" {
		req.Header.Set(HeaderAlertSignature, SignAlert(g.cfg.AlertWebhookSecret, d.Payload))
	}
	resp, err := g.alertClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
