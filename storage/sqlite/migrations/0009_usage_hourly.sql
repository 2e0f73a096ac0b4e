-- Hourly traffic rollups of the usage ledger (issue 17, the web console):
-- the sums of the requests of one key (the master key's is '') in one
-- UTC hour (hour is the unix microseconds of its start), kept in the same
-- transaction as the ledger's batch insert, as usage_daily is, so that the
-- console charts 24 hours to 30 days from at most 720 rows a key. errors
-- counts the requests answered with a status of 400 or more; lat_00 …
-- lat_16 count the requests by llmproxy.LatencyBucket of their latency
-- (bounds 1 ms, 2 ms, 5 ms … 100 s; lat_16 is slower than 100 s).
-- The ledger written before this migration is rolled up here, in the
-- migration's transaction (the statement is sqlstore's hourlyFill, which
-- RebuildRollups runs; a test holds the two equal). An older replica still
-- running during a rolling upgrade appends to the ledger without these
-- rollups: run `llm-proxy usage rebuild-rollups` once it is gone.
CREATE TABLE usage_hourly (
	hour              INTEGER NOT NULL,
	key_id            TEXT NOT NULL,
	requests          INTEGER NOT NULL,
	errors            INTEGER NOT NULL,
	prompt_tokens     INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	total_tokens      INTEGER NOT NULL,
	cost_micros       INTEGER NOT NULL,
	unknown_cost      INTEGER NOT NULL,
	lat_00            INTEGER NOT NULL,
	lat_01            INTEGER NOT NULL,
	lat_02            INTEGER NOT NULL,
	lat_03            INTEGER NOT NULL,
	lat_04            INTEGER NOT NULL,
	lat_05            INTEGER NOT NULL,
	lat_06            INTEGER NOT NULL,
	lat_07            INTEGER NOT NULL,
	lat_08            INTEGER NOT NULL,
	lat_09            INTEGER NOT NULL,
	lat_10            INTEGER NOT NULL,
	lat_11            INTEGER NOT NULL,
	lat_12            INTEGER NOT NULL,
	lat_13            INTEGER NOT NULL,
	lat_14            INTEGER NOT NULL,
	lat_15            INTEGER NOT NULL,
	lat_16            INTEGER NOT NULL,
	PRIMARY KEY (hour, key_id)
) WITHOUT ROWID;
-- One key's chart reads its own rows, not every key's of the range.
CREATE INDEX usage_hourly_key ON usage_hourly (key_id, hour);
INSERT INTO usage_hourly (hour, key_id, requests, errors, prompt_tokens, completion_tokens, total_tokens, cost_micros, unknown_cost, lat_00, lat_01, lat_02, lat_03, lat_04, lat_05, lat_06, lat_07, lat_08, lat_09, lat_10, lat_11, lat_12, lat_13, lat_14, lat_15, lat_16)
SELECT time - time % 3600000000, key_id,
	COUNT(*),
	SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
	SUM(prompt_tokens),
	SUM(completion_tokens),
	SUM(total_tokens),
	COALESCE(SUM(cost_micros), 0),
	COUNT(*) - COUNT(cost_micros),
	SUM(CASE WHEN latency <= 1000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 1000000 AND latency <= 2000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 2000000 AND latency <= 5000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 5000000 AND latency <= 10000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 10000000 AND latency <= 20000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 20000000 AND latency <= 50000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 50000000 AND latency <= 100000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 100000000 AND latency <= 200000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 200000000 AND latency <= 500000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 500000000 AND latency <= 1000000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 1000000000 AND latency <= 2000000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 2000000000 AND latency <= 5000000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 5000000000 AND latency <= 10000000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 10000000000 AND latency <= 20000000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 20000000000 AND latency <= 50000000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 50000000000 AND latency <= 100000000000 THEN 1 ELSE 0 END),
	SUM(CASE WHEN latency > 100000000000 THEN 1 ELSE 0 END)
FROM usage_records
GROUP BY time - time % 3600000000, key_id;

-- The console's recent requests, newest first, filtered by key, model,
-- exact status or errors (status >= 400), each alone or together: every
-- combination reads an index whose equality prefix is one or two of the
-- filters and whose rest is time, backwards, stopping at the page's
-- limit (usage_records_time and usage_records_key_time serve no filter
-- and the key alone). The partial indexes hold only the errors, so that
-- asking for the errors of a key or an alias that has none reads nothing;
-- a query uses them when its WHERE has the literal `status >= 400`. The
-- pair of key and alias has its own index, so that a key asked for an
-- alias it never used is not read whole.
-- The ledger is WITHOUT ROWID, so every index also carries id, the
-- order of ties. The migration's transaction holds the database's write
-- lock while it rolls up the ledger and builds these: about a minute on
-- a ledger of 10 million records, which the gateway's usage buffer
-- rides out; upgrade a large one at a quiet hour.
CREATE INDEX usage_records_model_time ON usage_records (model, time);
CREATE INDEX usage_records_status_time ON usage_records (status, time);
CREATE INDEX usage_records_key_model_time ON usage_records (key_id, model, time);
CREATE INDEX usage_records_errors_time ON usage_records (time) WHERE status >= 400;
CREATE INDEX usage_records_key_errors_time ON usage_records (key_id, time) WHERE status >= 400;
CREATE INDEX usage_records_model_errors_time ON usage_records (model, time) WHERE status >= 400;
