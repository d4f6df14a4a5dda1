-- Collect, for cycle {stamp}, every part (trace) of the runs collect_runs.sql listed: each trace
-- whose newest resolution in trace_runs names one of them, with that run id.
INSERT INTO assembly_parts
SELECT {stamp:Int64}, tenant_id, run_id, trace_id FROM (
    SELECT tenant_id, trace_id, argMax(run_id, resolved) AS run_id FROM trace_runs
    WHERE (tenant_id, trace_id) IN (
        SELECT tenant_id, trace_id FROM trace_runs
        WHERE run_id IN (SELECT run_id FROM assembly_parts WHERE stamp = {stamp:Int64})
          AND (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM assembly_parts WHERE stamp = {stamp:Int64}))
    GROUP BY tenant_id, trace_id
)
WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM assembly_parts WHERE stamp = {stamp:Int64})
