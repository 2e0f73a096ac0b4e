-- Budget alert thresholds (issue 16): the fractions of budget_usd at which
-- an alert fires, comma-separated (e.g. '0.5,0.8,1'); NULL means the
-- default thresholds. Additive: no default, so no stored row changes and
-- an older build's INSERTs keep working during a rolling upgrade.
ALTER TABLE keys ADD COLUMN budget_alerts TEXT;
ALTER TABLE assignments ADD COLUMN budget_alerts TEXT;
