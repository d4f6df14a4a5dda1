-- The unfinished runs none of whose spans ended within their workflow's stale_run_after
-- (human_wait_limit while waiting for a person), measured at {now_ms} (spec 4.5), with that limit
-- and whether the run is frozen (wrm_frozen: it is then not rebuilt, abandon_frozen_runs.sql).
CREATE OR REPLACE VIEW stale_runs AS
SELECT tenant_id, run_id, idle_limit_s,
       wrm_frozen(tenant_id, start_time, {spans_tenants:Array(String)}, {spans_days:Array(UInt16)},
                  {spans_default:UInt16}) AS frozen
FROM (
    SELECT tenant_id, run_id, start_time, last_active_at,
           wrm_idle_limit(status, workflow_name, {stale_workflows:Array(String)}, {stale_seconds:Array(UInt64)},
                          {stale_default:UInt64}, {wait_workflows:Array(String)}, {wait_seconds:Array(UInt64)},
                          {wait_default:UInt64}) AS idle_limit_s
    FROM runs_store FINAL
    WHERE status IN ('running', 'waiting_human')
)
WHERE toUnixTimestamp64Milli(last_active_at) + toInt64(idle_limit_s) * 1000 < {now_ms:Int64};
