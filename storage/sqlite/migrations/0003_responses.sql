-- The Responses API's stored responses (llmproxy.StoredResponse): one row
-- per response id, replaced when the same id is stored again. items and
-- response are the JSON the gateway keeps, as BLOBs, byte for byte; both
-- are empty for a native response, whose content the upstream keeps.
-- A rowid table, unlike usage_records: rows of several megabytes are what
-- SQLite advises against in a WITHOUT ROWID table.
-- expires_at is NULL for a response that never expires; the expiry sweep
-- (DeleteExpiredResponses) finds the others through its index.
-- Additive: a new table, which older builds never read.
CREATE TABLE responses (
	id            TEXT PRIMARY KEY,
	key_id        TEXT NOT NULL DEFAULT '',  -- '' for the master key
	connection_id TEXT NOT NULL DEFAULT '',
	model         TEXT NOT NULL DEFAULT '',
	native        INTEGER NOT NULL DEFAULT 0,
	previous_id   TEXT NOT NULL DEFAULT '',
	items         BLOB NOT NULL DEFAULT x'',
	response      BLOB NOT NULL DEFAULT x'',
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER             -- NULL: never
);
CREATE INDEX responses_expires_at ON responses (expires_at);
