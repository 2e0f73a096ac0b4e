-- Daily rollups of the usage ledger (issue 16): the sums of the requests
-- of one key, assignment, model alias and connection on one UTC day (day
-- is the unix microseconds of its midnight), kept in the same
-- transaction as the ledger's batch insert, so that reports read these
-- rows instead of scanning the ledger. estimated_tokens is the part of
-- total_tokens that was estimated; cost_micros sums the known costs and
-- unknown_cost counts the requests whose cost is unknown.
-- The ledger written before this migration is rolled up here, in the
-- migration's transaction. An older replica still running during a
-- rolling upgrade appends to the ledger without rollups: run
-- `llm-proxy usage rebuild-rollups` once it is gone.
CREATE TABLE usage_daily (
	day               INTEGER NOT NULL,
	key_id            TEXT NOT NULL,
	assignment_id     TEXT NOT NULL,
	model             TEXT NOT NULL,
	connection_id     TEXT NOT NULL,
	requests          INTEGER NOT NULL,
	prompt_tokens     INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	total_tokens      INTEGER NOT NULL,
	estimated_tokens  INTEGER NOT NULL,
	cache_read_tokens INTEGER NOT NULL,
	cache_write_tokens INTEGER NOT NULL,
	cost_micros       INTEGER NOT NULL,
	unknown_cost      INTEGER NOT NULL,
	PRIMARY KEY (day, key_id, assignment_id, model, connection_id)
) WITHOUT ROWID;
INSERT INTO usage_daily (day, key_id, assignment_id, model, connection_id, requests, prompt_tokens, completion_tokens,
	total_tokens, estimated_tokens, cache_read_tokens, cache_write_tokens, cost_micros, unknown_cost)
SELECT time - time % 86400000000, key_id, assignment_id, model, connection_id, COUNT(*), SUM(prompt_tokens),
	SUM(completion_tokens), SUM(total_tokens), SUM(CASE WHEN estimated THEN total_tokens ELSE 0 END),
	SUM(cache_read_tokens), SUM(cache_write_tokens), COALESCE(SUM(cost_micros), 0), COUNT(*) - COUNT(cost_micros)
FROM usage_records
GROUP BY time - time % 86400000000, key_id, assignment_id, model, connection_id;
