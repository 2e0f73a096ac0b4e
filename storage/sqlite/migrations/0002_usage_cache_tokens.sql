-- The usage ledger's prompt-cache counts: prompt tokens read from and
-- written to the upstream's prompt cache (part of prompt_tokens).
-- Additive: ADD COLUMN with a constant default changes only the schema,
-- not the stored rows, so it is instant on a ledger of any size; existing
-- records read 0, and an older build's INSERT, which does not name these
-- columns, keeps working during a rolling upgrade.
ALTER TABLE usage_records ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_records ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
