-- A run of cycle {stamp} none of whose traces resolves to it any more (every part moved to
-- another run) is deleted: an is_deleted row over its current one, kept as long as that row
-- would be.
INSERT INTO runs_store
SELECT * REPLACE (now64(6) AS assembled_at, toUInt8(1) AS is_deleted)
FROM runs_store FINAL
WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM cycle_runs(stamp = {stamp:Int64}))
  AND (tenant_id, run_id) NOT IN (SELECT tenant_id, run_id FROM cycle_parts(stamp = {stamp:Int64}))
