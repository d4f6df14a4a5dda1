-- Indicators: the SQL contract analysts and reports read. Every view here reads the summary
-- tier (runs_daily_store, sql/005), never runs or spans, so it gives the same answer after the
-- raw tiers have expired. Days are UTC. Rates and per-run figures are over finished runs
-- (completed, failed, canceled); NULL where there is nothing to divide by.
-- docs/workflow_run_management_spec.md ("Indicators") defines each column, with examples.

CREATE OR REPLACE FUNCTION wrm_ratio AS (a, b) -> if(b = 0, NULL, a / b);
-- sample standard deviation from a sum, a sum of squares and a count
CREATE OR REPLACE FUNCTION wrm_sd AS (s, sq, n) -> if(n < 2, NULL, sqrt(greatest((sq - s * s / n) / (n - 1), 0)));

-- Indicators per tenant/workflow/version/environment over the days [since, until]; by_day = 1
-- gives one row per day, by_day = 0 one row for the whole window (day is then since).
CREATE VIEW IF NOT EXISTS effectiveness_window AS
SELECT
    tenant_id, workflow_name, workflow_version, environment, day,
    runs, in_progress, finished, completed, failed, canceled,
    wrm_ratio(first_pass, finished) AS first_pass_rate,
    wrm_ratio(completed, finished) AS success_rate,
    wrm_ratio(validations_passed, validations_passed + validations_failed) AS validation_pass_rate,
    validations_passed + validations_failed AS validations,
    wrm_ratio(quality_sum, quality_runs) AS quality_mean,
    quality_runs,
    if(duration_runs = 0, NULL, duration_q[1] / 1e9) AS p50_duration_s,
    if(duration_runs = 0, NULL, duration_q[2] / 1e9) AS p95_duration_s,
    wrm_ratio(duration_sum_ns / 1e9, duration_runs) AS mean_duration_s,
    wrm_ratio(input_tokens, finished) AS input_tokens_per_run,
    wrm_ratio(output_tokens, finished) AS output_tokens_per_run,
    wrm_ratio(cost_usd, finished) AS cost_per_run_usd,
    wrm_ratio(retries, finished) AS retries_per_run,
    wrm_ratio(human_decisions, finished) AS human_decisions_per_run,
    wrm_ratio(human_wait_ms / 1000, finished) AS human_wait_s_per_run,
    wrm_ratio(runs_with_human, finished) AS human_share,
    wrm_ratio(cx_sum, cx_runs) AS cx_score_mean,
    cx_runs,
    durations_sampled
FROM (
    SELECT
        tenant_id, workflow_name, workflow_version, environment,
        if({by_day:UInt8} = 1, day, {since:Date}) AS day,
        sum(runs) AS runs, sum(in_progress) AS in_progress, sum(finished) AS finished,
        sum(completed) AS completed, sum(failed) AS failed, sum(canceled) AS canceled,
        sum(first_pass) AS first_pass,
        sum(validations_passed) AS validations_passed,
        sum(validations_failed) AS validations_failed,
        sum(quality_sum) AS quality_sum, sum(quality_runs) AS quality_runs,
        sum(duration_runs) AS duration_runs, sum(duration_sum_ns) AS duration_sum_ns,
        arrayReduce('quantilesExactInclusive(0.5, 0.95)', groupArrayArray(durations_ns)) AS duration_q,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd,
        sum(retries) AS retries, sum(human_decisions) AS human_decisions, sum(human_wait_ms) AS human_wait_ms,
        sum(runs_with_human) AS runs_with_human, sum(cx_sum) AS cx_sum, sum(cx_runs) AS cx_runs,
        max(durations_sampled) AS durations_sampled
    FROM runs_daily_store FINAL
    WHERE day >= {since:Date} AND day <= {until:Date}
    GROUP BY tenant_id, workflow_name, workflow_version, environment, day
);

-- One row per tenant/workflow/version/environment/day.
CREATE VIEW IF NOT EXISTS effectiveness AS
SELECT * FROM effectiveness_window(since = '1970-01-01', until = '2149-06-06', by_day = 1);

-- The summary rows of a comparison's two sides: b (baseline) and c (candidate). Two ways to
-- pick them:
--   versions: baseline_version, candidate_version (leave the dates at '1970-01-01'/'2149-06-06');
--   windows:  days before baseline_until against days from candidate_since (versions '').
-- environment '' takes every environment.
CREATE VIEW IF NOT EXISTS comparison_sides AS
SELECT *,
       ({baseline_version:String} = '' OR workflow_version = {baseline_version:String})
           AND day < {baseline_until:Date} AS b,
       ({candidate_version:String} = '' OR workflow_version = {candidate_version:String})
           AND day >= {candidate_since:Date} AS c
FROM runs_daily_store FINAL
WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
  AND ({environment:String} = '' OR environment = {environment:String});

-- Baseline against candidate, sides as in comparison_sides, one row per indicator. The *_n
-- columns are the sample sizes each indicator was computed from (finished runs, validations,
-- scored runs, timed runs, or days for runs_per_day); *_sd are sample standard deviations of
-- the per-run values behind a mean.
CREATE VIEW IF NOT EXISTS version_comparison AS
SELECT
    t.1 AS indicator,
    t.2 AS baseline,
    t.3 AS candidate,
    candidate - baseline AS delta,
    if(baseline = 0, NULL, (candidate - baseline) / abs(baseline)) AS relative_delta,
    t.4 AS baseline_n,
    t.5 AS candidate_n,
    t.6 AS baseline_sd,
    t.7 AS candidate_sd,
    t.8 AS kind,
    t.9 AS higher_is_better
FROM (
    SELECT
        arrayReduce('quantilesExactInclusive(0.5, 0.95)', groupArrayArrayIf(durations_ns, b)) AS bq,
        arrayReduce('quantilesExactInclusive(0.5, 0.95)', groupArrayArrayIf(durations_ns, c)) AS cq,
        sumIf(finished, b) AS bf, sumIf(finished, c) AS cf,
        sumIf(validations_passed + validations_failed, b) AS bv, sumIf(validations_passed + validations_failed, c) AS cv,
        sumIf(quality_runs, b) AS bqn, sumIf(quality_runs, c) AS cqn,
        sumIf(cx_runs, b) AS bxn, sumIf(cx_runs, c) AS cxn,
        sumIf(duration_runs, b) AS bdn, sumIf(duration_runs, c) AS cdn,
        uniqExactIf(day, b) AS bdays, uniqExactIf(day, c) AS cdays,
        [
            ('first_pass_rate', wrm_ratio(sumIf(first_pass, b), bf), wrm_ratio(sumIf(first_pass, c), cf),
             bf, cf, NULL, NULL, 'rate', 1),
            ('success_rate', wrm_ratio(sumIf(completed, b), bf), wrm_ratio(sumIf(completed, c), cf),
             bf, cf, NULL, NULL, 'rate', 1),
            ('validation_pass_rate', wrm_ratio(sumIf(validations_passed, b), bv),
             wrm_ratio(sumIf(validations_passed, c), cv), bv, cv, NULL, NULL, 'rate', 1),
            ('quality_mean', wrm_ratio(sumIf(quality_sum, b), bqn), wrm_ratio(sumIf(quality_sum, c), cqn), bqn, cqn,
             wrm_sd(sumIf(quality_sum, b), sumIf(quality_sq, b), bqn),
             wrm_sd(sumIf(quality_sum, c), sumIf(quality_sq, c), cqn), 'mean', 1),
            ('p50_duration_s', if(bdn = 0, NULL, bq[1] / 1e9), if(cdn = 0, NULL, cq[1] / 1e9), bdn, cdn, NULL, NULL,
             'duration', 0),
            ('p95_duration_s', if(bdn = 0, NULL, bq[2] / 1e9), if(cdn = 0, NULL, cq[2] / 1e9), bdn, cdn, NULL, NULL,
             'duration', 0),
            ('tokens_per_run', wrm_ratio(sumIf(input_tokens + output_tokens, b), bf),
             wrm_ratio(sumIf(input_tokens + output_tokens, c), cf), bf, cf,
             wrm_sd(sumIf(input_tokens + output_tokens, b), sumIf(tokens_sq, b), bf),
             wrm_sd(sumIf(input_tokens + output_tokens, c), sumIf(tokens_sq, c), cf), 'mean', 0),
            ('cost_per_run_usd', wrm_ratio(sumIf(cost_usd, b), bf), wrm_ratio(sumIf(cost_usd, c), cf), bf, cf,
             wrm_sd(sumIf(cost_usd, b), sumIf(cost_sq, b), bf), wrm_sd(sumIf(cost_usd, c), sumIf(cost_sq, c), cf),
             'mean', 0),
            ('human_share', wrm_ratio(sumIf(runs_with_human, b), bf), wrm_ratio(sumIf(runs_with_human, c), cf),
             bf, cf, NULL, NULL, 'rate', 0),
            ('human_wait_s_per_run', wrm_ratio(sumIf(human_wait_ms, b) / 1000, bf),
             wrm_ratio(sumIf(human_wait_ms, c) / 1000, cf), bf, cf,
             wrm_sd(sumIf(human_wait_ms, b) / 1000, sumIf(human_wait_sq, b) / 1e6, bf),
             wrm_sd(sumIf(human_wait_ms, c) / 1000, sumIf(human_wait_sq, c) / 1e6, cf), 'mean', 0),
            ('cx_score_mean', wrm_ratio(sumIf(cx_sum, b), bxn), wrm_ratio(sumIf(cx_sum, c), cxn), bxn, cxn,
             wrm_sd(sumIf(cx_sum, b), sumIf(cx_sq, b), bxn), wrm_sd(sumIf(cx_sum, c), sumIf(cx_sq, c), cxn),
             'mean', 1),
            ('runs_per_day', wrm_ratio(sumIf(runs, b), bdays), wrm_ratio(sumIf(runs, c), cdays), bdays, cdays,
             NULL, NULL, 'throughput', 1)
        ]::Array(Tuple(String, Nullable(Float64), Nullable(Float64), UInt64, UInt64, Nullable(Float64),
                       Nullable(Float64), String, UInt8)) AS rows
    FROM comparison_sides(tenant_id = {tenant_id:String}, workflow = {workflow:String},
                          environment = {environment:String}, baseline_version = {baseline_version:String},
                          candidate_version = {candidate_version:String},
                          baseline_until = {baseline_until:Date}, candidate_since = {candidate_since:Date})
)
ARRAY JOIN rows AS t;

-- Runs per day and per hour of the day.
CREATE VIEW IF NOT EXISTS throughput AS
SELECT
    tenant_id, workflow_name, workflow_version, environment, day,
    sum(runs) AS runs,
    runs / 24 AS runs_per_hour,
    arrayMax(sumForEach(runs_by_hour)) AS peak_hour_runs,
    arrayCount(n -> n > 0, sumForEach(runs_by_hour)) AS active_hours
FROM runs_daily_store FINAL
GROUP BY tenant_id, workflow_name, workflow_version, environment, day;

CREATE VIEW IF NOT EXISTS throughput_hourly AS
SELECT
    tenant_id, workflow_name, workflow_version, environment,
    toDateTime(day, 'UTC') + toIntervalHour(h - 1) AS hour,
    sum(n) AS runs
FROM runs_daily_store FINAL
ARRAY JOIN runs_by_hour AS n, arrayEnumerate(runs_by_hour) AS h
GROUP BY tenant_id, workflow_name, workflow_version, environment, hour;

-- Per tenant/workflow/environment/version: when it first ran (anywhere, and in production),
-- the version before it in this environment, that version's first-pass rate over the 7 days
-- before this one's first run here (all its earlier days when it had none in those 7), and the
-- first day this version's rolling 7-day first-pass rate met or beat it.
CREATE VIEW IF NOT EXISTS time_to_benefit AS
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
