-- Spend in dollars (issue 16).
-- A model's price override, in US dollars per million tokens: NULL in
-- input_price means no override (the price table applies), and then all
-- five are NULL; otherwise all five are set.
-- The usage ledger's cost of each request, in micro-dollars: NULL when the
-- request's model had no known price, never 0 for unknown. Records written
-- before this migration had no price and read as unknown.
-- Additive: ADD COLUMN without a default is a catalog change that rewrites
-- no row; it holds each table's exclusive lock only for a moment, on a
-- ledger of any size. An older replica's INSERTs, which do not name these
-- columns, keep working during a rolling upgrade (its models have no
-- override, its records an unknown cost).
ALTER TABLE models
	ADD COLUMN input_price          DOUBLE PRECISION,
	ADD COLUMN output_price         DOUBLE PRECISION,
	ADD COLUMN cached_input_price   DOUBLE PRECISION,
	ADD COLUMN cache_write_price    DOUBLE PRECISION,
	ADD COLUMN cache_write_1h_price DOUBLE PRECISION;
ALTER TABLE usage_records ADD COLUMN cost_micros BIGINT;
