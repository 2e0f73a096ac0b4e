-- The usage ledger's prompt-cache counts: prompt tokens read from and
-- written to the upstream's prompt cache (part of prompt_tokens).
-- Additive: since PostgreSQL 11, ADD COLUMN with a constant default is a
-- catalog change that rewrites no row: it holds the table's exclusive lock
-- only for a moment, on a ledger of any size (once the ledger's short
-- transactions in flight let go of it). Existing records read 0, and an
-- older replica's INSERT, which does not name these columns, keeps working
-- during a rolling upgrade.
ALTER TABLE usage_records
	ADD COLUMN cache_read_tokens  BIGINT NOT NULL DEFAULT 0,
	ADD COLUMN cache_write_tokens BIGINT NOT NULL DEFAULT 0;
