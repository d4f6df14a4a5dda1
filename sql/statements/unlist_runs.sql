-- Before a rebuild, hide each current row, in the time-ordered list (runs_by_time, sql/007 and
-- 009), of the runs of cycle {stamp}: the rebuilt row may sit at another key when its start time
-- moved, and its newer version wins otherwise. Frozen runs are not rebuilt, so they stay listed.
INSERT INTO runs_by_time
SELECT * REPLACE (now64(6) AS assembled_at, toUInt8(1) AS is_deleted)
FROM runs_listing
WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM cycle_runs(stamp = {stamp:Int64}))
