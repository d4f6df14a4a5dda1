-- Indicators per tenant/workflow/version/environment over the days [since, until]; by_day = 1
-- gives one row per day, by_day = 0 one row for the whole window (day is then since).
CREATE OR REPLACE VIEW effectiveness_window AS
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
