-- Baseline against candidate over bounded days, sides as in comparison_window_sides, one row per
-- indicator. The *_n columns are the sample sizes each indicator was computed from (finished
-- runs, validations, scored runs, timed runs, days for runs_per_day, runs for runs); *_sd are
-- sample standard deviations of the per-run values behind a mean (NULL where the summary tier
-- keeps no squares). kind says which test fits: rate, mean, duration; none for count (runs),
-- throughput (runs_per_day) and ratio (human_decisions_per_run: a ratio of totals, no spread).
CREATE OR REPLACE VIEW window_comparison AS
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
            ('runs', toFloat64(sumIf(runs, b)), toFloat64(sumIf(runs, c)), sumIf(runs, b), sumIf(runs, c), NULL, NULL,
             'count', 1),
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
            ('human_decisions_per_run', wrm_ratio(sumIf(human_decisions, b), bf),
             wrm_ratio(sumIf(human_decisions, c), cf), bf, cf, NULL, NULL, 'ratio', 0),
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
    FROM comparison_window_sides(tenant_id = {tenant_id:String}, workflow = {workflow:String},
                                 environment = {environment:String}, baseline_version = {baseline_version:String},
                                 candidate_version = {candidate_version:String},
                                 baseline_since = {baseline_since:Date}, baseline_until = {baseline_until:Date},
                                 candidate_since = {candidate_since:Date}, candidate_until = {candidate_until:Date})
)
ARRAY JOIN rows AS t;
