-- Queue, at stamp {queued_ms}, every stale run (stale_runs): rebuilt, it becomes failed /
-- abandoned (assemble_runs); a frozen one is not rebuilt but marked by abandon_frozen_runs.sql,
-- and queueing it lets the cycle note its summary days.
INSERT INTO run_queue
SELECT {queued_ms:Int64}, tenant_id, run_id
FROM stale_runs(now_ms = {now_ms:Int64}, spans_tenants = {spans_tenants:Array(String)},
                spans_days = {spans_days:Array(UInt16)}, spans_default = {spans_default:UInt16},
                stale_workflows = {stale_workflows:Array(String)}, stale_seconds = {stale_seconds:Array(UInt64)},
                stale_default = {stale_default:UInt64}, wait_workflows = {wait_workflows:Array(String)},
                wait_seconds = {wait_seconds:Array(UInt64)}, wait_default = {wait_default:UInt64})
