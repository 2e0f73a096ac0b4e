-- The Responses API's stored responses (llmproxy.StoredResponse): one row
-- per response id, replaced when the same id is stored again. items and
-- response are the JSON the gateway keeps, as bytes: BYTEA keeps them
-- byte for byte (JSONB would reorder and respace them); both are empty
-- for a native response, whose content the upstream keeps.
-- expires_at is NULL for a response that never expires; the expiry sweep
-- (DeleteExpiredResponses) finds the others through its index.
-- Additive: a new table, which older replicas never read.
CREATE TABLE responses (
	id            TEXT COLLATE "C" PRIMARY KEY,
	key_id        TEXT NOT NULL DEFAULT '',  -- '' for the master key
	connection_id TEXT NOT NULL DEFAULT '',
	model         TEXT NOT NULL DEFAULT '',
	native        BOOLEAN NOT NULL DEFAULT FALSE,
	previous_id   TEXT NOT NULL DEFAULT '',
	items         BYTEA NOT NULL DEFAULT '',
	response      BYTEA NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	expires_at    BIGINT             -- NULL: never
);
CREATE INDEX responses_expires_at ON responses (expires_at);
