-- Runs and steps, assembled in the warehouse from span_facts: the tables. The views that derive
-- them (priced_span_facts, assemble_steps, assemble_runs) and the SQL contract over them (runs,
-- steps) live in sql/views/; the statements the assembler runs (derivation/assembler.py) live in
-- sql/statements/.
--
-- Each run and each of its steps is recomputed from *all* facts of its trace, so the result does
-- not depend on arrival order or batching, and a re-delivered span (collapsed in span_facts)
-- changes nothing. Both tables are ReplacingMergeTree on the row's identity with the assembly
-- time as version: the newest assembly wins. A span that stops being a step (say its run span
-- arrives and is not its parent) is written with is_deleted = 1, which FINAL hides.

-- Prices per model, for spans that carry tokens but no cost attribute (settings: [prices]).
CREATE TABLE IF NOT EXISTS model_prices
(
    model String,
    input_usd_per_mtok Float64,
    output_usd_per_mtok Float64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY model;

-- Sort key (tenant_id, trace_id, step_id): one run's steps are one contiguous range, which is
-- what the run detail and the run assembly read. run_id has a bloom filter for SQL users who
-- filter steps by a run id that overrides the trace id.
CREATE TABLE IF NOT EXISTS steps_store
(
    tenant_id LowCardinality(String),
    trace_id String,
    step_id String,
    run_id String,
    parent_step_id String,
    parent_span_id String,
    name String,
    type LowCardinality(String),
    attempt UInt32,
    status LowCardinality(String),
    source_status LowCardinality(String),
    failure_kind LowCardinality(String),
    error_type String,
    error_message String,
    start_time DateTime64(9, 'UTC'),
    end_time DateTime64(9, 'UTC'),
    duration_ns UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cost_usd Float64,
    model LowCardinality(String),
    validation_name String,
    validation_passed Nullable(UInt8),
    quality_score Nullable(Float64),
    human_decision LowCardinality(String),
    human_actor String,
    human_wait_ms UInt64,
    user_id String,
    session_id String,
    service_name LowCardinality(String),
    span_name String,
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    retention_days UInt16,
    assembled_at DateTime64(6, 'UTC'),
    is_deleted UInt8,
    INDEX idx_run_id run_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(assembled_at, is_deleted)
ORDER BY (tenant_id, trace_id, step_id)
TTL toDateTime(start_time) + toIntervalDay(retention_days);

-- Sort key (tenant_id, trace_id): a run's identity must not change between assemblies (its
-- start time can, as earlier spans arrive), and ReplacingMergeTree collapses rows on the sort
-- key. Time-ordered lists are served by the minmax index on start_time (recent runs live in
-- recent parts) and the monthly partition; run_id has a bloom filter for lookups by an
-- overriding wrm.run.id.
CREATE TABLE IF NOT EXISTS runs_store
(
    tenant_id LowCardinality(String),
    trace_id String,
    run_id String,
    run_span_id String,
    workflow_name LowCardinality(String),
    workflow_version LowCardinality(String),
    environment LowCardinality(String),
    status LowCardinality(String),
    start_time DateTime64(9, 'UTC'),
    end_time Nullable(DateTime64(9, 'UTC')),
    duration_ns Nullable(UInt64),
    span_count UInt32,
    step_count UInt32,
    retries UInt32,
    failed_steps UInt32,
    failed_step String,
    failed_step_id String,
    failure_reason String,
    first_pass UInt8,
    human_decisions UInt32,
    human_corrections UInt32,
    human_wait_ms UInt64,
    input_tokens UInt64,
    output_tokens UInt64,
    cost_usd Float64,
    validations_passed UInt32,
    validations_failed UInt32,
    quality_mean Nullable(Float64),
    cx_score Nullable(Float64),
    rerun_of String,
    user_id String,
    session_id String,
    service_name LowCardinality(String),
    last_span_at DateTime64(3, 'UTC'),
    retention_days UInt16,
    assembled_at DateTime64(6, 'UTC'),
    INDEX idx_run_id run_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_start start_time TYPE minmax GRANULARITY 1,
    INDEX idx_status status TYPE set(16) GRANULARITY 4,
    INDEX idx_workflow workflow_name TYPE set(256) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(assembled_at)
ORDER BY (tenant_id, trace_id)
TTL toDateTime(start_time) + toIntervalDay(retention_days);

