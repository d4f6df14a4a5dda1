-- Rebuild the runs of the traces in an assembly window (since, until], ms, except frozen runs,
-- each row kept for its tenant's run retention (runs_*). Runs after assemble_steps.sql and
-- unlist_runs.sql: a run reads its steps as they were just rebuilt.
INSERT INTO runs_store (* EXCEPT (retention_days), retention_days)
SELECT *, wrm_tenant_days(tenant_id, {runs_tenants:Array(String)}, {runs_days:Array(UInt16)}, {runs_default:UInt16})
FROM assemble_runs(since = {since:Int64}, until = {until:Int64})
WHERE (tenant_id, trace_id) NOT IN (
        SELECT tenant_id, trace_id FROM frozen_runs(
            since = {since:Int64}, until = {until:Int64}, spans_tenants = {spans_tenants:Array(String)},
            spans_days = {spans_days:Array(UInt16)}, spans_default = {spans_default:UInt16}))
