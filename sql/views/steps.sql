-- The SQL contract: wrm.steps, one row per step attempt.
CREATE OR REPLACE VIEW steps AS
SELECT * EXCEPT (assembled_at, retention_days, is_deleted) FROM steps_store FINAL;
