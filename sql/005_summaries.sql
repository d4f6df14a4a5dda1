-- Summary tier: daily rollups of runs, kept longer than the raw tiers (default 400 days against
-- 90 for runs), so indicators and before/after comparisons outlive raw data.
--
-- How it stays correct. runs_store is re-versioned whenever a trace gets spans (re-delivered or
-- late ones), so adding each new run row to a running total would count runs twice. Instead:
--   1. the assembler notes, in summary_dirty, every (tenant, UTC day) whose runs it rewrote,
--      both the day a run was on before the rewrite and the day it is on after it;
--   2. the summarizer recomputes each noted day whole, from runs_store FINAL, with
--      INSERT INTO runs_daily_store SELECT * FROM summarize_runs(…). A group that no longer has
--      runs (a run moved to another version or day) gets an is_deleted row.
-- A day is recomputed only while all its runs are still inside the tenant's run retention
-- (`runs_days`): after that the raw rows start to expire and the stored summary is final.

-- Watermarks of the assembler ('runs') and the summarizer ('summaries'), in ingest ms. Until
-- this migration the assembler created the table itself; IF NOT EXISTS keeps that one.
CREATE TABLE IF NOT EXISTS assembly_state
(
    name String,
    watermark_ms Int64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

CREATE TABLE IF NOT EXISTS summary_dirty
(
    tenant_id LowCardinality(String),
    day Date,
    noted_ms Int64
)
ENGINE = MergeTree
ORDER BY noted_ms
TTL toDateTime(intDiv(noted_ms, 1000)) + INTERVAL 7 DAY;

-- One row per (tenant, workflow, day, version, environment). Usage, human and quality sums are
-- over finished runs (completed, failed or canceled), so a run still in progress does not pull
-- a mean down; it is counted in `in_progress`. Squared sums let a comparison compute variances
-- (Welch's test) without the raw runs. durations_ns holds every finished run's duration, so
-- p50/p95 over any set of days are exact, and rank tests have their samples; above 100,000
-- finished runs in one group-day it is a uniform sample of 100,000 (durations_sampled = 1).
CREATE TABLE IF NOT EXISTS runs_daily_store
(
    tenant_id LowCardinality(String),
    workflow_name LowCardinality(String),
    workflow_version LowCardinality(String),
    environment LowCardinality(String),
    day Date,
    runs UInt64,
    in_progress UInt64,
    finished UInt64,
    completed UInt64,
    failed UInt64,
    canceled UInt64,
    first_pass UInt64,
    retries UInt64,
    steps UInt64,
    validations_passed UInt64,
    validations_failed UInt64,
    quality_runs UInt64,
    quality_sum Float64,
    quality_sq Float64,
    cx_runs UInt64,
    cx_sum Float64,
    cx_sq Float64,
    input_tokens UInt64,
    output_tokens UInt64,
    tokens_sq Float64,
    cost_usd Float64,
    cost_sq Float64,
    runs_with_human UInt64,
    human_decisions UInt64,
    human_corrections UInt64,
    human_wait_ms UInt64,
    human_wait_sq Float64,
    duration_runs UInt64,
    duration_sum_ns UInt64,
    durations_ns Array(UInt64) CODEC(ZSTD(1)),
    durations_sampled UInt8,
    runs_by_hour Array(UInt32),
    first_run_at DateTime64(9, 'UTC'),
    last_run_at DateTime64(9, 'UTC'),
    retention_days UInt16,
    computed_at DateTime64(6, 'UTC'),
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(computed_at, is_deleted)
ORDER BY (tenant_id, workflow_name, day, workflow_version, environment)
TTL day + toIntervalDay(retention_days);

-- Recompute the noted days in (since, until] (summary_dirty.noted_ms) that are still inside
-- run retention. Retention per tenant comes in as parallel arrays (tenant ids, days) and a
-- default: runs_* for the guard, keep_* for the summary rows' own retention.
CREATE VIEW IF NOT EXISTS summarize_runs AS
WITH
    pending AS (
        SELECT DISTINCT tenant_id, day FROM summary_dirty
        WHERE noted_ms > {since:Int64} AND noted_ms <= {until:Int64}
          AND dateDiff('day', day, today())
              < transform(toString(tenant_id), {runs_tenants:Array(String)}, {runs_days:Array(UInt16)},
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
            toUInt16(transform(toString(tenant_id), {keep_tenants:Array(String)}, {keep_days:Array(UInt16)},
                               {keep_default:UInt16})) AS retention_days,
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

-- The retention policy last applied, for `wrm retention show` and for noticing at start-up that
-- the settings changed (tenant_id '*' is the default; days per tier).
CREATE TABLE IF NOT EXISTS retention_policies
(
    tenant_id String,
    spans_days UInt16,
    steps_days UInt16,
    runs_days UInt16,
    summaries_days UInt16,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3),
    is_deleted UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(updated_at, is_deleted)
ORDER BY tenant_id;
