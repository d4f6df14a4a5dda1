-- The runs of an assembly window that are frozen: started more than their tenant's span
-- retention ago, less an hour, so their first spans may already be expiring and a late span must
-- not rebuild them from what is left. The spans_* parameters are the span tier's retention
-- (wrm_tenant_days).
CREATE OR REPLACE VIEW frozen_runs AS
SELECT tenant_id, trace_id FROM runs_store FINAL
WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM assembly_window(since = {since:Int64}, until = {until:Int64}))
  AND start_time < now64(9) - toIntervalDay(wrm_tenant_days(tenant_id, {spans_tenants:Array(String)},
                                                            {spans_days:Array(UInt16)}, {spans_default:UInt16}))
                   + INTERVAL 1 HOUR;
