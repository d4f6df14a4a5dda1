-- A run is keyed by its run id, not by its trace (spec 4.3): a workflow that pauses for a person,
-- a timer or an event ends its trace there and resumes in a new one, and both traces are parts
-- of one run when they carry the same run id (wrm.run.id, cicd.pipeline.run.id, a configured
-- key) or when the resuming trace's run span links to a span of the paused one.
--
-- This migration
--   * adds trace_links (the links of run-span candidates) and trace_runs (each trace's part in a
--     run, as last resolved), and run_queue (the runs an assembly cycle must rebuild);
--   * re-keys runs_store and runs_by_time by run id, with is_deleted for a run whose every part
--     moved to another run, and the columns trace_ids (the parts) and failure_kind;
--   * marks every trace that still has spans for re-assembly, so existing runs are rebuilt under
--     the new model (parts joined, usage counted once) by the next `wrm serve`.
-- Runs whose spans have expired cannot be rebuilt and are copied as they are.

-- The links of spans that can be a trace's run span (roots, wrm.run=true): a resuming trace names
-- the paused one this way. Sorted by trace, as the assembler reads it for a set of traces.
CREATE TABLE IF NOT EXISTS trace_links
(
    tenant_id LowCardinality(String),
    trace_id String,
    span_id String,
    start_time DateTime64(9, 'UTC'),
    link_index UInt32,
    linked_trace_id String,
    linked_span_id String,
    retention_days UInt16,
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (tenant_id, trace_id, span_id, link_index)
TTL toDateTime(start_time) + toIntervalDay(retention_days);

CREATE MATERIALIZED VIEW IF NOT EXISTS trace_links_mv TO trace_links AS
SELECT tenant_id, trace_id, span_id, start_time, toUInt32(l.2) AS link_index, l.1.1 AS linked_trace_id,
       l.1.2 AS linked_span_id, retention_days, ingested_at
FROM spans
ARRAY JOIN arrayZip(arrayZip(`links.trace_id`, `links.span_id`), arrayEnumerate(`links.trace_id`)) AS l
WHERE (parent_span_id = '' OR attributes['wrm.run'] IN ('true', '1')) AND l.1.1 != '' AND l.1.1 != trace_id;

INSERT INTO trace_links
SELECT tenant_id, trace_id, span_id, start_time, toUInt32(l.2), l.1.1, l.1.2, retention_days, ingested_at
FROM spans
ARRAY JOIN arrayZip(arrayZip(`links.trace_id`, `links.span_id`), arrayEnumerate(`links.trace_id`)) AS l
WHERE (parent_span_id = '' OR attributes['wrm.run'] IN ('true', '1')) AND l.1.1 != '' AND l.1.1 != trace_id;

-- Each trace's part in a run, one row per resolution (the greatest `resolved` wins): its own run
-- id key (wrm.run.id, cicd.pipeline.run.id or a configured key; '' for none), the trace its run
-- span links to ('' for none), and the run id these resolve to. Kept as long as runs are, so a
-- trace id finds its run after its spans are gone. link_trace_id has a bloom filter: when a
-- trace's run id changes, the traces that link to it follow (derivation/assembler.py).
CREATE TABLE IF NOT EXISTS trace_runs
(
    tenant_id LowCardinality(String),
    trace_id String,
    key_run_id String,
    link_trace_id String,
    run_id String,
    start_time DateTime64(9, 'UTC'),
    retention_days UInt16,
    resolved UInt64,
    INDEX idx_link link_trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_run run_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_resolved resolved TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(resolved)
ORDER BY (tenant_id, trace_id)
TTL toDateTime(start_time) + toIntervalDay(retention_days);

-- The runs an assembly cycle rebuilds, stamped with the cycle (ms). The assembler rebuilds every
-- run queued after its `run_queue` mark in assembly_state and then moves the mark, so a run
-- queued by a cycle that died is rebuilt by the next one.
CREATE TABLE IF NOT EXISTS run_queue
(
    queued_ms Int64,
    tenant_id LowCardinality(String),
    run_id String
)
ENGINE = MergeTree
ORDER BY (queued_ms, tenant_id, run_id)
TTL toDateTime(intDiv(queued_ms, 1000)) + INTERVAL 35 DAY;

-- runs_store, keyed by (tenant_id, run_id). Re-runnable: a runs_store_by_run left by an interrupted
-- run of this migration is a partial copy, or the old table after the exchange, whose rows the
-- new runs_store already holds; either way it goes, and the copy below reads only columns both
-- tables have.
DROP TABLE IF EXISTS runs_store_by_run;
CREATE TABLE runs_store_by_run
(
    tenant_id LowCardinality(String),
    run_id String,
    trace_id String,
    trace_ids Array(String),
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
    failure_kind LowCardinality(String),
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
    -- the latest end of any of its spans, by the spans' own clocks: the run's last sign of life,
    -- which a re-delivered span does not move (runs whose end never comes, spec 4.5)
    last_active_at DateTime64(9, 'UTC'),
    retention_days UInt16,
    assembled_at DateTime64(6, 'UTC'),
    is_deleted UInt8,
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_start start_time TYPE minmax GRANULARITY 1,
    INDEX idx_status status TYPE set(16) GRANULARITY 4,
    INDEX idx_workflow workflow_name TYPE set(256) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(assembled_at, is_deleted)
ORDER BY (tenant_id, run_id)
TTL toDateTime(start_time) + toIntervalDay(retention_days);

INSERT INTO runs_store_by_run
SELECT tenant_id, run_id, trace_id, [trace_id], run_span_id, workflow_name, workflow_version, environment, status,
       start_time, end_time, duration_ns, span_count, step_count, retries, failed_steps, failed_step, failed_step_id,
       if(status = 'failed', 'error', ''), failure_reason, first_pass, human_decisions, human_corrections,
       human_wait_ms, input_tokens, output_tokens, cost_usd, validations_passed, validations_failed, quality_mean,
       cx_score, rerun_of, user_id, session_id, service_name, last_span_at,
       coalesce(end_time, start_time), retention_days, assembled_at, 0
FROM runs_store FINAL;

INSERT INTO trace_runs
SELECT tenant_id, trace_id, '', '', run_id, start_time, retention_days, 0 FROM runs_store FINAL;

DROP VIEW IF EXISTS runs_by_time_mv;
EXCHANGE TABLES runs_store AND runs_store_by_run;
DROP TABLE runs_store_by_run;

-- runs_by_time, keyed by (tenant_id, start_time, run_id); trace_ids and failure_kind added
-- (re-runnable as runs_store above).
DROP TABLE IF EXISTS runs_by_time_by_run;
CREATE TABLE runs_by_time_by_run
(
    tenant_id LowCardinality(String),
    start_time DateTime64(9, 'UTC'),
    run_id String,
    trace_id String,
    trace_ids Array(String),
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
    failure_kind LowCardinality(String),
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
ORDER BY (tenant_id, start_time, run_id)
TTL toDateTime(start_time) + toIntervalDay(retention_days)
SETTINGS index_granularity = 1024;

INSERT INTO runs_by_time_by_run
SELECT tenant_id, start_time, run_id, trace_id, trace_ids, workflow_name, workflow_version, environment, status,
       end_time, duration_ns, step_count, retries, input_tokens, output_tokens, cost_usd, first_pass, human_decisions,
       failure_kind, failure_reason, rerun_of, retention_days, assembled_at, is_deleted
FROM runs_store FINAL;

DROP VIEW IF EXISTS runs_by_time_mv;
EXCHANGE TABLES runs_by_time AND runs_by_time_by_run;
DROP TABLE runs_by_time_by_run;

CREATE MATERIALIZED VIEW IF NOT EXISTS runs_by_time_mv TO runs_by_time AS
SELECT tenant_id, start_time, run_id, trace_id, trace_ids, workflow_name, workflow_version, environment, status,
       end_time, duration_ns, step_count, retries, input_tokens, output_tokens, cost_usd, first_pass, human_decisions,
       failure_kind, failure_reason, rerun_of, retention_days, assembled_at, is_deleted
FROM runs_store;

-- Run ids now come from trace_runs, resolved across traces; frozen runs are found by run id
-- (views/queued_runs.sql).
DROP FUNCTION IF EXISTS wrm_run_id;
DROP VIEW IF EXISTS frozen_runs;

-- Re-assemble every trace that has spans, 20 traces per stamp (ms), above every stamp stored (the
-- writers' stamps can run ahead of the clock): the assembler takes what is stored as committed at
-- start and works through it a bounded number of traces per cycle.
INSERT INTO dirty_traces
SELECT fromUnixTimestamp64Milli(
           greatest(toUnixTimestamp64Milli(now64(3)),
                    (SELECT ifNull(toUnixTimestamp64Milli(max(ingested_at)), 0) FROM dirty_traces))
           + 1 + intDiv(rowNumberInAllBlocks(), 20), 'UTC'),
       tenant_id, trace_id
FROM (SELECT DISTINCT tenant_id, trace_id FROM span_facts);

-- The parts of the runs one cycle rebuilds, collected once per cycle ({stamp}) so the rebuild
-- statements read a short table rather than re-resolving the queue: one row per (run, trace) and
-- one with trace_id '' per run, which is all a run left without parts has.
CREATE TABLE IF NOT EXISTS assembly_parts
(
    stamp Int64,
    tenant_id LowCardinality(String),
    run_id String,
    trace_id String
)
ENGINE = MergeTree
ORDER BY (stamp, tenant_id, run_id, trace_id)
TTL toDateTime(intDiv(stamp, 1000)) + INTERVAL 1 DAY;
