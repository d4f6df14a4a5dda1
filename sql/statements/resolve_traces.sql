-- Resolve the run of each trace of an ingest window (since, until], ms, into trace_runs at version
-- {resolved}: its own key (trace_keys) if it has one; else, if its run span links to a trace that
-- started before it, that trace's run as last resolved (the linked trace id itself while that
-- trace is unknown); else its own trace id. A trace that would join a run it is not already part
-- of is a run of its own, under its trace id, when that run is frozen (wrm_frozen: it is not
-- rebuilt) or already has {max_parts} parts (a constant or too broad run id would otherwise make
-- one run of every trace, rebuilt whole at each new one).
-- resolve_links.sql then carries changes along links.
INSERT INTO trace_runs
WITH
    keys AS (
        SELECT * FROM trace_keys(since = {since:Int64}, until = {until:Int64}, run_keys = {run_keys:Array(String)})
    ),
    targets AS (
        SELECT tenant_id, trace_id, argMax(run_id, resolved) AS run_id, argMax(start_time, resolved) AS start_time
        FROM trace_runs
        WHERE (tenant_id, trace_id) IN (SELECT tenant_id, link_trace_id FROM keys WHERE link_trace_id != '')
        GROUP BY tenant_id, trace_id
    ),
    wanted AS (
        SELECT k.tenant_id AS tenant_id, k.trace_id AS trace_id, k.key_run_id AS key_run_id,
               k.link_trace_id AS link_trace_id, k.start_time AS start_time,
               multiIf(k.key_run_id != '', k.key_run_id,
                       k.link_trace_id = '', k.trace_id,
                       t.run_id = '', k.link_trace_id,
                       t.start_time < k.start_time, t.run_id,
                       k.trace_id) AS run_id
        FROM keys AS k
        LEFT JOIN targets AS t ON t.tenant_id = k.tenant_id AND t.trace_id = k.link_trace_id
    ),
    current AS (
        SELECT tenant_id, trace_id, argMax(run_id, resolved) AS run_id FROM trace_runs
        WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM keys)
        GROUP BY tenant_id, trace_id
    ),
    closed AS (
        SELECT tenant_id, run_id FROM runs_store FINAL
        WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM wanted)
          AND (wrm_frozen(tenant_id, start_time, {spans_tenants:Array(String)}, {spans_days:Array(UInt16)},
                          {spans_default:UInt16})
               OR length(trace_ids) >= {max_parts:UInt32})
    )
SELECT w.tenant_id, w.trace_id, w.key_run_id, w.link_trace_id,
       if((w.tenant_id, w.run_id) IN closed AND c.run_id != w.run_id, w.trace_id, w.run_id),
       w.start_time,
       wrm_tenant_days(w.tenant_id, {runs_tenants:Array(String)}, {runs_days:Array(UInt16)}, {runs_default:UInt16}),
       {resolved:UInt64}
FROM wanted AS w
LEFT JOIN current AS c ON c.tenant_id = w.tenant_id AND c.trace_id = w.trace_id
