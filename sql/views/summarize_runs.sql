-- Recompute the noted days in (since, until] (summary_dirty.noted_ms) that are still inside
-- run retention. Retention per tenant comes in as parallel arrays (tenant ids, days) and a
-- default: runs_* for the guard, keep_* for the summary rows' own retention.
CREATE OR REPLACE VIEW summarize_runs AS
WITH
    pending AS (
        SELECT DISTINCT tenant_id, day FROM summary_dirty
        WHERE noted_ms > {since:Int64} AND noted_ms <= {until:Int64}
          AND dateDiff('day', day, today())
              < wrm_tenant_days(tenant_id, {runs_tenants:Array(String)}, {runs_days:Array(UInt16)},
                                {runs_default:UInt16})
    ),
    fresh AS (
        SELECT
            tenant_id, workflow_name, workflow_version, environment, toDate(start_time) AS day,
            count() AS runs,
            countIf(r.status IN ('running', 'waiting_human')) AS in_progress,
            countIf(r.status IN ('completed', 'failed', 'canceled')) AS finished,
            countIf(r.status = 'completed') AS completed,
            countIf(r.status = 'failed') AS failed,
            countIf(r.status = 'canceled') AS canceled,
            countIf(r.first_pass = 1) AS first_pass,
            sumIf(r.retries, r.fin) AS retries,
            sumIf(r.step_count, r.fin) AS steps,
            sumIf(r.validations_passed, r.fin) AS validations_passed,
            sumIf(r.validations_failed, r.fin) AS validations_failed,
            countIf(r.fin AND r.quality_mean IS NOT NULL) AS quality_runs,
            sumIf(assumeNotNull(r.quality_mean), r.fin AND r.quality_mean IS NOT NULL) AS quality_sum,
            sumIf(pow(assumeNotNull(r.quality_mean), 2), r.fin AND r.quality_mean IS NOT NULL) AS quality_sq,
            countIf(r.fin AND r.cx_score IS NOT NULL) AS cx_runs,
            sumIf(assumeNotNull(r.cx_score), r.fin AND r.cx_score IS NOT NULL) AS cx_sum,
            sumIf(pow(assumeNotNull(r.cx_score), 2), r.fin AND r.cx_score IS NOT NULL) AS cx_sq,
            sumIf(r.input_tokens, r.fin) AS input_tokens,
            sumIf(r.output_tokens, r.fin) AS output_tokens,
            sumIf(pow(toFloat64(r.input_tokens + r.output_tokens), 2), r.fin) AS tokens_sq,
            sumIf(r.cost_usd, r.fin) AS cost_usd,
            sumIf(pow(r.cost_usd, 2), r.fin) AS cost_sq,
            countIf(r.fin AND r.human_decisions > 0) AS runs_with_human,
            sumIf(r.human_decisions, r.fin) AS human_decisions,
            sumIf(r.human_corrections, r.fin) AS human_corrections,
            sumIf(r.human_wait_ms, r.fin) AS human_wait_ms,
            sumIf(pow(toFloat64(r.human_wait_ms), 2), r.fin) AS human_wait_sq,
            countIf(r.fin AND r.duration_ns IS NOT NULL) AS duration_runs,
            sumIf(assumeNotNull(r.duration_ns), r.fin AND r.duration_ns IS NOT NULL) AS duration_sum_ns,
            arraySort(groupArraySampleIf(100000, 20261126)(assumeNotNull(r.duration_ns),
                                                            r.fin AND r.duration_ns IS NOT NULL)) AS durations_ns,
            toUInt8(duration_runs > 100000) AS durations_sampled,
            arrayMap(n -> toUInt32(n), sumForEach(arrayMap(h -> toUInt8(h = toHour(r.start_time)), range(24))))
                AS runs_by_hour,
            min(r.start_time) AS first_run_at,
            max(r.start_time) AS last_run_at,
            wrm_tenant_days(tenant_id, {keep_tenants:Array(String)}, {keep_days:Array(UInt16)},
                            {keep_default:UInt16}) AS retention_days,
            now64(6) AS computed_at,
            toUInt8(0) AS is_deleted
        FROM (
            SELECT *, status IN ('completed', 'failed', 'canceled') AS fin
            FROM runs_store FINAL
            WHERE (tenant_id, toDate(start_time)) IN pending
              AND start_time >= (SELECT min(day) FROM pending)
              AND start_time < (SELECT max(day) FROM pending) + 1
        ) AS r
        GROUP BY tenant_id, workflow_name, workflow_version, environment, day
    )
SELECT * FROM fresh
UNION ALL
SELECT * REPLACE (now64(6) AS computed_at, toUInt8(1) AS is_deleted)
FROM runs_daily_store FINAL
WHERE (tenant_id, day) IN pending
  AND (tenant_id, workflow_name, workflow_version, environment, day) NOT IN (
        SELECT tenant_id, workflow_name, workflow_version, environment, day FROM fresh);
