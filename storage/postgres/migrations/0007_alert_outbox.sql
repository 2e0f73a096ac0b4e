-- Budget alert deliveries (llmproxy.AlertDelivery): one row per event and
-- webhook, its id the idempotency key, so that a second enqueue of the
-- same crossing (by another replica) inserts nothing. Times are unix
-- microseconds; delivered_at is NULL until a receiver accepted it. The
-- sender finds due rows through the index on next_at.
-- Additive: a new table, which older replicas never read.
CREATE TABLE alert_outbox (
	id           TEXT COLLATE "C" PRIMARY KEY,
	event_id     TEXT NOT NULL,
	url          TEXT NOT NULL,
	payload      BYTEA NOT NULL,
	created_at   BIGINT  NOT NULL,
	next_at      BIGINT  NOT NULL,
	attempts     BIGINT  NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	delivered_at BIGINT               -- NULL: not yet
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_at) WHERE delivered_at IS NULL;
