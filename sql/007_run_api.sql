-- What the HTTP API (/v1) reads and writes besides runs and steps: a time-ordered copy of the
-- run list, and the records operators add (actions, annotations, tags).

-- The run list, newest first, must stay fast at a million runs. runs_store is sorted by
-- (tenant_id, trace_id) because a run's identity must not move between assemblies, so "newest
-- 50" there means sorting every run. runs_by_time holds the list columns sorted by
-- (tenant_id, start_time, trace_id): a page is a short read in reverse key order. Granules
-- of 1,024 rows rather than 8,192, because a page reads a few dozen rows: with 8,192 the
-- granules around them cost ~30 ms at a million runs.
-- Each runs_store insert reaches it through runs_by_time_mv. A run's start_time can change
-- between assemblies (earlier spans arrive), which moves its key: the assembler first writes an
-- is_deleted row at every old key of the traces it is about to rebuild, versioned between the
-- old row and the new one, so FINAL shows each run once.
CREATE TABLE IF NOT EXISTS runs_by_time
(
    tenant_id LowCardinality(String),
    start_time DateTime64(9, 'UTC'),
    trace_id String,
    run_id String,
    workflow_name LowCardinality(String),
    workflow_version LowCardinality(String),
    environment LowCardinality(String),
    status LowCardinality(String),
    end_time Nullable(DateTime64(9, 'UTC')),
    duration_ns Nullable(UInt64),
    step_count UInt32,
    retries UInt32,
    input_tokens UInt64,
    output_tokens UInt64,
    cost_usd Float64,
    first_pass UInt8,
    human_decisions UInt32,
    failure_reason String,
    rerun_of String,
    retention_days UInt16,
    assembled_at DateTime64(6, 'UTC'),
    is_deleted UInt8,
    INDEX idx_run_id run_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_workflow workflow_name TYPE set(256) GRANULARITY 4,
    INDEX idx_status status TYPE set(16) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(assembled_at, is_deleted)
ORDER BY (tenant_id, start_time, trace_id)
TTL toDateTime(start_time) + toIntervalDay(retention_days)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS runs_by_time_mv TO runs_by_time AS
SELECT tenant_id, start_time, trace_id, run_id, workflow_name, workflow_version, environment, status, end_time,
       duration_ns, step_count, retries, input_tokens, output_tokens, cost_usd, first_pass, human_decisions,
       failure_reason, rerun_of, retention_days, assembled_at, toUInt8(0) AS is_deleted
FROM runs_store;

-- Fill runs_by_time with the runs assembled before this migration (the query of the view
-- runs_listing, written out: migrations run before views are applied).
INSERT INTO runs_by_time
SELECT tenant_id, start_time, trace_id, run_id, workflow_name, workflow_version, environment, status, end_time,
       duration_ns, step_count, retries, input_tokens, output_tokens, cost_usd, first_pass, human_decisions,
       failure_reason, rerun_of, retention_days, assembled_at, toUInt8(0) AS is_deleted
FROM runs_store FINAL;

-- Re-run and cancel requests, handed to the engine that runs the workflow. One row per state
-- change (newest updated_at wins): pending, then done / failed / rejected when the engine
-- acknowledges. idempotency_key makes a repeated request return the same action.
CREATE TABLE IF NOT EXISTS run_actions
(
    tenant_id LowCardinality(String),
    action_id String,
    run_id String,
    kind LowCardinality(String),
    state LowCardinality(String),
    reason String,
    context String,
    requested_by String,
    requested_at DateTime64(3, 'UTC'),
    idempotency_key String,
    outcome String,
    new_run_id String,
    acked_by String,
    acked_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(6, 'UTC'),
    INDEX idx_run run_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_key idempotency_key TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_new_run new_run_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant_id, action_id);

CREATE TABLE IF NOT EXISTS run_annotations
(
    tenant_id LowCardinality(String),
    run_id String,
    annotation_id String,
    text String,
    label String,
    score Nullable(Float64),
    author String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, run_id, annotation_id);

-- Current tags: the newest row per (run, tag); present = 0 means it was removed.
CREATE TABLE IF NOT EXISTS run_tags
(
    tenant_id LowCardinality(String),
    run_id String,
    tag String,
    present UInt8,
    changed_by String,
    changed_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY (tenant_id, run_id, tag);
