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
	hour              BIGINT NOT NULL,
	key_id            TEXT COLLATE "C" NOT NULL,
	requests          BIGINT NOT NULL,
	errors            BIGINT NOT NULL,
	prompt_tokens     BIGINT NOT NULL,
	completion_tokens BIGINT NOT NULL,
	total_tokens      BIGINT NOT NULL,
	cost_micros       BIGINT NOT NULL,
	unknown_cost      BIGINT NOT NULL,
	lat_00            BIGINT NOT NULL,
	lat_01            BIGINT NOT NULL,
	lat_02            BIGINT NOT NULL,
	lat_03            BIGINT NOT NULL,
	lat_04            BIGINT NOT NULL,
	lat_05            BIGINT NOT NULL,
	lat_06            BIGINT NOT NULL,
	lat_07            BIGINT NOT NULL,
	lat_08            BIGINT NOT NULL,
	lat_09            BIGINT NOT NULL,
	lat_10            BIGINT NOT NULL,
	lat_11            BIGINT NOT NULL,
	lat_12            BIGINT NOT NULL,
	lat_13            BIGINT NOT NULL,
	lat_14            BIGINT NOT NULL,
	lat_15            BIGINT NOT NULL,
	lat_16            BIGINT NOT NULL,
	PRIMARY KEY (hour, key_id)
);
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
-- Each ends in id, the order of ties. They are built in the migration's
-- transaction, which holds off the ledger's writers meanwhile (CREATE
-- INDEX CONCURRENTLY cannot run in a transaction): with the roll-up,
-- about a minute on a ledger of 10 million records, which the gateway's
-- usage buffer rides out; upgrade a large one at a quiet hour.
CREATE INDEX usage_records_model_time ON usage_records (model, time, id);
CREATE INDEX usage_records_status_time ON usage_records (status, time, id);
CREATE INDEX usage_records_key_model_time ON usage_records (key_id, model, time, id);
CREATE INDEX usage_records_errors_time ON usage_records (time, id) WHERE status >= 400;
CREATE INDEX usage_records_key_errors_time ON usage_records (key_id, time, id) WHERE status >= 400;
CREATE INDEX usage_records_model_errors_time ON usage_records (model, time, id) WHERE status >= 400;
