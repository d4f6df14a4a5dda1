-- The models that left a workflow's cost partial: steps of the runs of workflow {workflow}
-- (environment {environment}, '' = all) that started (UTC day) from {since} to {until}, both
-- included, that counted tokens but were stored with cost 0 and carry no cost attribute: no
-- price rule matched their model when their run was assembled. Prices apply at assembly, so a
-- price added later does not reach runs already stored, and they stay listed here (what the
-- stored cost says, not what today's rules would say). A step with tokens and no model name is
-- listed under model ''. One row per model: its steps, runs and tokens, with two totals repeated
-- on every row: unpriced_runs (distinct runs with at least one such step) and scope_runs (all
-- runs in the scope); no row means every cost was priced.
--
-- Reads steps (steps_store, the steps tier: raw, kept steps_ttl_days) joined to runs (runs_store,
-- the runs tier) by run id; beyond the steps' retention a run's steps are gone and it counts as
-- priced.
CREATE OR REPLACE VIEW unpriced_models AS
WITH
    scope AS (
        SELECT run_id FROM runs
        WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
          AND ({environment:String} = '' OR environment = {environment:String})
          AND toDate(start_time) BETWEEN {since:Date} AND {until:Date}
    ),
    unpriced AS (
        SELECT model, run_id, input_tokens, output_tokens
        FROM steps
        WHERE tenant_id = {tenant_id:String} AND run_id IN (SELECT run_id FROM scope)
          AND input_tokens + output_tokens > 0 AND cost_usd = 0
          AND attributes['wrm.cost.usd'] = '' AND attributes['llm.cost.total'] = ''
          AND attributes['langfuse.observation.cost_details'] = ''
    )
SELECT model, count() AS steps, uniqExact(run_id) AS runs, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       (SELECT uniqExact(run_id) FROM unpriced) AS unpriced_runs,
       (SELECT count() FROM scope) AS scope_runs
FROM unpriced
GROUP BY model
ORDER BY steps DESC, model;
