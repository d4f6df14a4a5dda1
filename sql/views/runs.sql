-- The SQL contract: wrm.runs, one row per run (keyed by run id; trace_ids lists its parts).
CREATE OR REPLACE VIEW runs AS
SELECT * EXCEPT (assembled_at, retention_days, is_deleted) FROM runs_store FINAL;
