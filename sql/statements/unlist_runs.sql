-- Before a rebuild, hide each run's current row in the time-ordered list (runs_by_time, sql/007):
-- the rebuilt row may sit at another key when its start time moved, and its newer version wins
-- otherwise. Frozen runs are not rebuilt, so they stay listed.
INSERT INTO runs_by_time
SELECT * REPLACE (now64(6) AS assembled_at, toUInt8(1) AS is_deleted)
FROM runs_listing
WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM assembly_window(since = {since:Int64}, until = {until:Int64}))
  AND (tenant_id, trace_id) NOT IN (
        SELECT tenant_id, trace_id FROM frozen_runs(
            since = {since:Int64}, until = {until:Int64}, spans_tenants = {spans_tenants:Array(String)},
            spans_days = {spans_days:Array(UInt16)}, spans_default = {spans_default:UInt16}))
