-- The runs to rebuild: queued in (since, until], ms (run_queue), except frozen runs. A run is
-- frozen when it started more than its tenant's span retention ago, less an hour: its first spans
-- may already be expiring, so a late span must not rebuild it from what is left. The spans_*
-- parameters are the span tier's retention (wrm_tenant_days).
CREATE OR REPLACE VIEW queued_runs AS
WITH queued AS (
    SELECT DISTINCT tenant_id, run_id FROM run_queue WHERE queued_ms > {since:Int64} AND queued_ms <= {until:Int64}
)
SELECT tenant_id, run_id FROM queued
WHERE (tenant_id, run_id) NOT IN (
    SELECT tenant_id, run_id FROM runs_store FINAL
    WHERE (tenant_id, run_id) IN queued
      AND start_time < now64(9) - toIntervalDay(wrm_tenant_days(tenant_id, {spans_tenants:Array(String)},
                                                                {spans_days:Array(UInt16)}, {spans_default:UInt16}))
                       + INTERVAL 1 HOUR);
