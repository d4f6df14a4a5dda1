-- Summary tier: daily rollups of runs, kept longer than the raw tiers (default 400 days against
-- 90 for runs), so indicators and before/after comparisons outlive raw data.
--
-- How it stays correct. runs_store is re-versioned whenever a trace gets spans (re-delivered or
-- late ones), so adding each new run row to a running total would count runs twice. Instead:
--   1. the assembler notes, in summary_dirty, every (tenant, UTC day) whose runs it rewrote,
--      both the day a run was on before the rewrite and the day it is on after it;
--   2. the summarizer recomputes each noted day whole, from runs_store FINAL, with
--      sql/statements/refresh_summaries.sql over the view sql/views/summarize_runs.sql. A group
--      that no longer has runs (a run moved to another version or day) gets an is_deleted row.
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
