-- Budget alert deliveries (llmproxy.AlertDelivery): one row per event and
-- webhook, its id the idempotency key, so that a second enqueue of the
-- same crossing (by another replica) inserts nothing. Times are unix
-- microseconds; delivered_at is NULL until a receiver accepted it. The
-- sender finds due rows through the index on next_at.
-- Additive: a new table, which older builds never read.
CREATE TABLE alert_outbox (
	id           TEXT PRIMARY KEY,
	event_id     TEXT NOT NULL,
	url          TEXT NOT NULL,
	payload      BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	next_at      INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	delivered_at INTEGER              -- NULL: not yet
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_at) WHERE delivered_at IS NULL;
