-- Budgets (issue 16): a spending limit in US dollars per calendar period
-- on a key (over all its assignments) and on an assignment. NULL in
-- budget_usd means no budget, and then all three are NULL; otherwise
-- budget_period is daily, weekly, monthly or total and budget_tz the
-- IANA time zone whose midnight starts a period ('' = UTC).
-- Additive: ADD COLUMN without a default is a catalog change that rewrites
-- no row; an older replica's INSERTs, which do not name these columns,
-- keep working during a rolling upgrade (its keys have no budget).
ALTER TABLE keys
	ADD COLUMN budget_usd    DOUBLE PRECISION,
	ADD COLUMN budget_period TEXT,
	ADD COLUMN budget_tz     TEXT;
ALTER TABLE assignments
	ADD COLUMN budget_usd    DOUBLE PRECISION,
	ADD COLUMN budget_period TEXT,
	ADD COLUMN budget_tz     TEXT;
