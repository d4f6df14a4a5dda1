-- The runs to rebuild: queued in (since, until], ms (run_queue), except frozen runs (wrm_frozen;
-- the spans_* parameters are the span tier's retention).
CREATE OR REPLACE VIEW queued_runs AS
WITH queued AS (
    SELECT DISTINCT tenant_id, run_id FROM run_queue WHERE queued_ms > {since:Int64} AND queued_ms <= {until:Int64}
)
SELECT tenant_id, run_id FROM queued
WHERE (tenant_id, run_id) NOT IN (
    SELECT tenant_id, run_id FROM runs_store FINAL
    WHERE (tenant_id, run_id) IN queued
      AND wrm_frozen(tenant_id, start_time, {spans_tenants:Array(String)}, {spans_days:Array(UInt16)},
                     {spans_default:UInt16}));
