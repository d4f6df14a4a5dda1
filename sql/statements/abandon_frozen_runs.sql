-- A frozen run (wrm_frozen) still unfinished past its limit (stale_runs) cannot be rebuilt from
-- its spans, some of which may be gone: its row is marked failed / abandoned as it stands.
INSERT INTO runs_store
SELECT r.* REPLACE (
    'failed' AS status,
    'abandoned' AS failure_kind,
    concat('abandoned: no span for ', formatReadableTimeDelta(s.idle_limit_s),
           '; past its span retention, the run was not rebuilt') AS failure_reason,
    toUInt8(0) AS first_pass,
    now64(6) AS assembled_at)
FROM runs_store AS r FINAL
INNER JOIN (
    SELECT tenant_id, run_id, idle_limit_s
    FROM stale_runs(now_ms = {now_ms:Int64}, spans_tenants = {spans_tenants:Array(String)},
                    spans_days = {spans_days:Array(UInt16)}, spans_default = {spans_default:UInt16},
                    stale_workflows = {stale_workflows:Array(String)}, stale_seconds = {stale_seconds:Array(UInt64)},
                    stale_default = {stale_default:UInt64}, wait_workflows = {wait_workflows:Array(String)},
                    wait_seconds = {wait_seconds:Array(UInt64)}, wait_default = {wait_default:UInt64})
    WHERE frozen
) AS s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
