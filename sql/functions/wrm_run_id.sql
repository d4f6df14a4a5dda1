-- An aggregate over a trace's span facts: its run id, the first wrm.run.id / CI/CD run id in
-- run-span order (wrm_run_order), else the trace id.
CREATE OR REPLACE FUNCTION wrm_run_id AS (run_id_attr, run_order, trace_id) ->
    coalesce(nullIf(argMinIf(run_id_attr, run_order, run_id_attr != ''), ''), trace_id);
