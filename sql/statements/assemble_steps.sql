-- Rebuild the steps of the traces in an assembly window (since, until], ms, except frozen runs,
-- each row kept for its tenant's step retention (steps_*).
INSERT INTO steps_store (* EXCEPT (retention_days), retention_days)
SELECT *, wrm_tenant_days(tenant_id, {steps_tenants:Array(String)}, {steps_days:Array(UInt16)}, {steps_default:UInt16})
FROM assemble_steps(since = {since:Int64}, until = {until:Int64})
WHERE (tenant_id, trace_id) NOT IN (
        SELECT tenant_id, trace_id FROM frozen_runs(
            since = {since:Int64}, until = {until:Int64}, spans_tenants = {spans_tenants:Array(String)},
            spans_days = {spans_days:Array(UInt16)}, spans_default = {spans_default:UInt16}))
