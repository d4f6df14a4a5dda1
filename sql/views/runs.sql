-- The SQL contract: wrm.runs, one row per run.
CREATE OR REPLACE VIEW runs AS
SELECT * EXCEPT (assembled_at, retention_days) FROM runs_store FINAL;
