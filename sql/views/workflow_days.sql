-- One workflow's indicators by UTC day over [since, until], all versions together (environment
-- '' takes every environment): what a report's trend charts draw. A day without runs has no row.
CREATE OR REPLACE VIEW workflow_days AS
SELECT
    d.day AS day,
    sum(d.runs) AS runs,
    sum(d.finished) AS finished,
    wrm_ratio(sum(d.first_pass), sum(d.finished)) AS first_pass_rate,
    wrm_ratio(sum(d.completed), sum(d.finished)) AS success_rate,
    if(sum(d.duration_runs) = 0, NULL,
       arrayReduce('quantileExactInclusive(0.95)', groupArrayArray(d.durations_ns)) / 1e9) AS p95_duration_s,
    wrm_ratio(sum(d.cost_usd), sum(d.finished)) AS cost_per_run_usd
FROM runs_daily_store AS d FINAL
WHERE d.tenant_id = {tenant_id:String} AND d.workflow_name = {workflow:String}
  AND ({environment:String} = '' OR d.environment = {environment:String})
  AND d.day >= {since:Date} AND d.day <= {until:Date}
GROUP BY d.day
ORDER BY d.day;
