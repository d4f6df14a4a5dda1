-- Per tenant/workflow/environment/version: when it first ran (anywhere, and in production),
-- the version before it in this environment, that version's first-pass rate over the 7 days
-- before this one's first run here (all its earlier days when it had none in those 7), and the
-- first day this version's rolling 7-day first-pass rate met or beat it.
CREATE OR REPLACE VIEW time_to_benefit AS
WITH
    daily AS (
        SELECT tenant_id, workflow_name, environment, workflow_version, day,
               sum(first_pass) AS fp, sum(finished) AS fin, min(first_run_at) AS first_at
        FROM runs_daily_store FINAL
        GROUP BY tenant_id, workflow_name, environment, workflow_version, day
    ),
    versions AS (
        SELECT tenant_id, workflow_name, environment, workflow_version, first_run_in_env,
               lagInFrame(workflow_version, 1, '') OVER (
                   PARTITION BY tenant_id, workflow_name, environment ORDER BY first_run_in_env, workflow_version
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS previous_version
        FROM (SELECT tenant_id, workflow_name, environment, workflow_version, min(first_at) AS first_run_in_env
              FROM daily GROUP BY tenant_id, workflow_name, environment, workflow_version)
    ),
    firsts AS (
        SELECT tenant_id, workflow_name, workflow_version, min(r.first_run_at) AS first_run_at,
               minIfOrNull(r.first_run_at, r.environment IN ('production', 'prod')) AS first_production_run_at
        FROM runs_daily_store AS r FINAL
        GROUP BY tenant_id, workflow_name, workflow_version
    ),
    baselines AS (
        SELECT v.tenant_id AS tenant_id, v.workflow_name AS workflow_name, v.environment AS environment,
               v.workflow_version AS workflow_version,
               coalesce(wrm_ratio(sumIf(d.fp, d.day >= toDate(v.first_run_in_env) - 7),
                                  sumIf(d.fin, d.day >= toDate(v.first_run_in_env) - 7)),
                        wrm_ratio(sum(d.fp), sum(d.fin))) AS baseline_first_pass_rate
        FROM versions AS v
        INNER JOIN daily AS d
            ON d.tenant_id = v.tenant_id AND d.workflow_name = v.workflow_name AND d.environment = v.environment
           AND d.workflow_version = v.previous_version
        WHERE v.previous_version != '' AND d.day < toDate(v.first_run_in_env)
        GROUP BY v.tenant_id, v.workflow_name, v.environment, v.workflow_version
    ),
    rolling AS (
        SELECT tenant_id, workflow_name, environment, workflow_version, day,
               sum(fp) OVER w AS fp7, sum(fin) OVER w AS fin7
        FROM daily
        WINDOW w AS (PARTITION BY tenant_id, workflow_name, environment, workflow_version
                     ORDER BY toUInt32(day) RANGE BETWEEN 6 PRECEDING AND CURRENT ROW)
    ),
    benefits AS (
        SELECT r.tenant_id AS tenant_id, r.workflow_name AS workflow_name, r.environment AS environment,
               r.workflow_version AS workflow_version,
               minIfOrNull(r.day, r.fin7 > 0 AND r.fp7 / r.fin7 >= b.baseline_first_pass_rate) AS benefit_day,
               argMinIf(r.fp7 / r.fin7, r.day, r.fin7 > 0 AND r.fp7 / r.fin7 >= b.baseline_first_pass_rate)
                   AS rolling_first_pass_rate_at_benefit
        FROM rolling AS r
        INNER JOIN baselines AS b
            ON b.tenant_id = r.tenant_id AND b.workflow_name = r.workflow_name AND b.environment = r.environment
           AND b.workflow_version = r.workflow_version
        GROUP BY r.tenant_id, r.workflow_name, r.environment, r.workflow_version
    )
SELECT
    v.tenant_id AS tenant_id,
    v.workflow_name AS workflow_name,
    v.environment AS environment,
    v.workflow_version AS workflow_version,
    v.previous_version AS previous_version,
    f.first_run_at AS first_run_at,
    f.first_production_run_at AS first_production_run_at,
    v.first_run_in_env AS first_run_in_env,
    b.baseline_first_pass_rate AS baseline_first_pass_rate,
    e.benefit_day AS benefit_day,
    if(e.benefit_day IS NULL, NULL, e.rolling_first_pass_rate_at_benefit) AS rolling_first_pass_rate_at_benefit,
    dateDiff('day', toDate(v.first_run_in_env), e.benefit_day) AS days_to_benefit,
    dateDiff('day', toDate(f.first_production_run_at), e.benefit_day) AS days_from_production_to_benefit
FROM versions AS v
LEFT JOIN firsts AS f
    ON f.tenant_id = v.tenant_id AND f.workflow_name = v.workflow_name AND f.workflow_version = v.workflow_version
LEFT JOIN baselines AS b
    ON b.tenant_id = v.tenant_id AND b.workflow_name = v.workflow_name AND b.environment = v.environment
   AND b.workflow_version = v.workflow_version
LEFT JOIN benefits AS e
    ON e.tenant_id = v.tenant_id AND e.workflow_name = v.workflow_name AND e.environment = v.environment
   AND e.workflow_version = v.workflow_version
SETTINGS join_use_nulls = 1;
