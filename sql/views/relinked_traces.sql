-- Traces whose run must follow a link: each trace without a key of its own whose run span links
-- to a trace resolved at version {from} or later, when the run it resolves to now differs from
-- the one it holds (old_run_id). A link to a trace that started at or after the linking one is
-- not followed (the trace is its own run), so links cannot form a cycle.
CREATE OR REPLACE VIEW relinked_traces AS
WITH
    changed AS (SELECT DISTINCT tenant_id, trace_id FROM trace_runs WHERE resolved >= {from:UInt64}),
    linkers AS (
        SELECT tenant_id, trace_id,
               argMax(tuple(key_run_id, link_trace_id, run_id, start_time, retention_days), resolved) AS cur
        FROM trace_runs
        WHERE (tenant_id, trace_id) IN (
            SELECT tenant_id, trace_id FROM trace_runs
            WHERE link_trace_id IN (SELECT trace_id FROM changed) AND (tenant_id, link_trace_id) IN changed)
        GROUP BY tenant_id, trace_id
    ),
    targets AS (
        SELECT tenant_id, trace_id, argMax(tuple(run_id, start_time), resolved) AS cur
        FROM trace_runs
        WHERE (tenant_id, trace_id) IN changed
        GROUP BY tenant_id, trace_id
    )
SELECT l.tenant_id AS tenant_id, l.trace_id AS trace_id, l.cur.1 AS key_run_id, l.cur.2 AS link_trace_id,
       if(t.cur.2 < l.cur.4, t.cur.1, l.trace_id) AS run_id, l.cur.3 AS old_run_id, l.cur.4 AS start_time,
       l.cur.5 AS retention_days
FROM linkers AS l
INNER JOIN targets AS t ON t.tenant_id = l.tenant_id AND t.trace_id = l.cur.2
WHERE l.cur.1 = '' AND run_id != old_run_id;
