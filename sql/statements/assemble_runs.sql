-- Rebuild the runs of cycle {stamp} (assemble_runs), each row kept for its tenant's run retention
-- (runs_*). Runs after assemble_steps.sql and unlist_runs.sql: a run reads its steps as they were
-- just rebuilt. {now_ms} and the stale_* / wait_* settings decide which unfinished runs are
-- abandoned.
INSERT INTO runs_store (* EXCEPT (retention_days), retention_days)
SELECT *, wrm_tenant_days(tenant_id, {runs_tenants:Array(String)}, {runs_days:Array(UInt16)}, {runs_default:UInt16})
FROM assemble_runs(stamp = {stamp:Int64}, now_ms = {now_ms:Int64},
                   stale_workflows = {stale_workflows:Array(String)}, stale_seconds = {stale_seconds:Array(UInt64)},
                   stale_default = {stale_default:UInt64}, wait_workflows = {wait_workflows:Array(String)},
                   wait_seconds = {wait_seconds:Array(UInt64)}, wait_default = {wait_default:UInt64})
