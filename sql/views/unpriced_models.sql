-- The models that left a workflow's cost partial: steps of the runs of workflow {workflow}
-- (environment {environment}, '' = all) that started (UTC day) from {since} to {until}, both
-- included, that counted tokens but carry no cost attribute and whose model no price rule in
-- force (price_rules_current: the tenant's, the global ones, the shipped table) matches. A step
-- with tokens and no model name is listed under model ''. One row per model: its steps, runs and
-- tokens, with two totals repeated on every row: unpriced_runs (distinct runs with at least one
-- such step) and scope_runs (all runs in the scope); no row means every cost was priced.
--
-- Reads steps (steps_store, the steps tier: raw, kept steps_ttl_days) joined to runs (runs_store,
-- the runs tier) by run id; beyond the steps' retention a run's steps are gone and it counts as
-- priced. Rules are matched as they are now, which is what a re-assembly would price with.
CREATE OR REPLACE VIEW unpriced_models AS
WITH
    scope AS (
        SELECT run_id FROM runs
        WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
          AND ({environment:String} = '' OR environment = {environment:String})
          AND toDate(start_time) BETWEEN {since:Date} AND {until:Date}
    ),
    unpriced AS (
        WITH (SELECT (regexes, tenants) FROM price_rules_current) AS rules
        SELECT model, run_id, input_tokens, output_tokens
        FROM steps
        WHERE tenant_id = {tenant_id:String} AND run_id IN (SELECT run_id FROM scope)
          AND input_tokens + output_tokens > 0
          AND attributes['wrm.cost.usd'] = '' AND attributes['llm.cost.total'] = ''
          AND attributes['langfuse.observation.cost_details'] = ''
          AND (model = '' OR arrayFirst(i -> rules.2[i] = '' OR rules.2[i] = {tenant_id:String},
                                        arraySort(multiMatchAllIndices(model, rules.1))) = 0)
    )
SELECT model, count() AS steps, uniqExact(run_id) AS runs, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       (SELECT uniqExact(run_id) FROM unpriced) AS unpriced_runs,
       (SELECT count() FROM scope) AS scope_runs
FROM unpriced
GROUP BY model
ORDER BY steps DESC, model;
