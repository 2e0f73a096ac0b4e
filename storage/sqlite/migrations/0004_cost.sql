-- Spend in dollars (issue 16).
-- A model's price override, in US dollars per million tokens: NULL in
-- input_price means no override (the price table applies), and then all
-- five are NULL; otherwise all five are set.
-- The usage ledger's cost of each request, in micro-dollars: NULL when the
-- request's model had no known price, never 0 for unknown. Records written
-- before this migration had no price and read as unknown.
-- Additive: ADD COLUMN without a default changes only the schema, not the
-- stored rows, so it is instant on a ledger of any size; an older build's
-- INSERTs, which do not name these columns, keep working during a rolling
-- upgrade (its models have no override, its records an unknown cost).
ALTER TABLE models ADD COLUMN input_price REAL;
ALTER TABLE models ADD COLUMN output_price REAL;
ALTER TABLE models ADD COLUMN cached_input_price REAL;
ALTER TABLE models ADD COLUMN cache_write_price REAL;
ALTER TABLE models ADD COLUMN cache_write_1h_price REAL;
ALTER TABLE usage_records ADD COLUMN cost_micros INTEGER;
