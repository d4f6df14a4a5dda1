-- One workflow's indicators by UTC day over [since, until], all versions together (environment
-- '' takes every environment): what a report's trend charts draw. A day without runs has no row.
CREATE OR REPLACE VIEW workflow_days AS
SELECT
    day,
    sum(runs) AS runs,
    sum(finished) AS finished,
    wrm_ratio(sum(first_pass), sum(finished)) AS first_pass_rate,
    wrm_ratio(sum(completed), sum(finished)) AS success_rate,
    if(sum(duration_runs) = 0, NULL,
       arrayReduce('quantileExactInclusive(0.95)', groupArrayArray(durations_ns)) / 1e9) AS p95_duration_s,
    wrm_ratio(sum(cost_usd), sum(finished)) AS cost_per_run_usd
FROM runs_daily_store FINAL
WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
  AND ({environment:String} = '' OR environment = {environment:String})
  AND day >= {since:Date} AND day <= {until:Date}
GROUP BY day
ORDER BY day;
