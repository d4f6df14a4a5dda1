-- Runs and steps, assembled in the warehouse from span_facts.
--
-- The assembler (receiver/assembler.py) periodically runs
--   INSERT INTO steps_store SELECT * FROM assemble_steps(since=…, until=…, retention_days=…)
--   INSERT INTO runs_store  SELECT * FROM assemble_runs(since=…, until=…, retention_days=…)
-- for the traces that received spans in (since, until]. Each run and each of its steps is
-- recomputed from *all* facts of its trace, so the result does not depend on arrival order or
-- batching, and a re-delivered span (collapsed in span_facts) changes nothing. Both tables are
-- ReplacingMergeTree on the row's identity with the assembly time as version: the newest
-- assembly wins. A span that stops being a step (say its run span arrives and is not its
-- parent) is written with is_deleted = 1, which FINAL hides.

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

-- Span facts with their cost: the cost attribute, else tokens × the model's newest price, else 0.
-- Both assembly views read it with a (tenant_id, trace_id) filter, which ClickHouse pushes into
-- span_facts' primary key (checked with EXPLAIN indexes = 1).
CREATE VIEW IF NOT EXISTS priced_span_facts AS
SELECT f.*, coalesce(f.cost_attr, (f.input_tokens * p.input_usd_per_mtok + f.output_tokens * p.output_usd_per_mtok) / 1e6, 0)
           AS cost
FROM span_facts AS f FINAL
LEFT JOIN (SELECT model, argMax(input_usd_per_mtok, updated_at) AS input_usd_per_mtok,
                  argMax(output_usd_per_mtok, updated_at) AS output_usd_per_mtok
           FROM model_prices GROUP BY model) AS p ON p.model = f.model;

-- One pass per trace: the trace's spans are gathered into arrays sorted by span id, and the
-- tree questions are answered with array functions, which keeps the plan small:
--   * the run span (lowest run_rank, then earliest) and the run id;
--   * which spans are steps (step meaning, or a direct child of the run span; never a marker);
--   * each span's nearest step ancestor, by pointer jumping over parent links (arrayFold: each
--     round doubles the reach, six rounds reach 64 levels): a step nests under it, a non-step
--     span rolls its usage into it;
--   * attempts: wrm.step.attempt, else the order among steps with the same name and parent.
CREATE VIEW IF NOT EXISTS assemble_steps AS
WITH
    facts AS (
        SELECT * FROM priced_span_facts
        WHERE (tenant_id, trace_id) IN (
            SELECT tenant_id, trace_id FROM dirty_traces
            WHERE ingested_at > {since:DateTime64(3)} AND ingested_at <= {until:DateTime64(3)})
    ),
    tree AS (
        SELECT tenant_id, trace_id, run_id, z.1 AS span_id, z.2 AS is_step, z.3 AS parent_step_id, z.4 AS attempt,
               z.5 AS rolled_in, z.6 AS rolled_out, z.7 AS rolled_cost
        FROM (
            SELECT tenant_id, trace_id, run_id,
                   arrayMap(j -> if(j > 0 AND is_step[j] = 1, ids[j], ''), nearest) AS found,
                   arrayMap(i -> toUInt32(if(attempt_attrs[i] > 0, attempt_attrs[i],
                       1 + arrayCount(j -> is_step[j] = 1 AND parents[j] = parents[i] AND names[j] = names[i]
                                           AND (starts[j], ids[j]) < (starts[i], ids[i]), arrayEnumerate(ids)))),
                       arrayEnumerate(ids)) AS attempts,
                   -- usage of non-step spans, summed into their nearest step
                   arrayMap((st, id) -> if(st = 1, arraySum(arrayMap((s2, f2, v) -> if(s2 = 0 AND f2 = id, v, 0),
                       is_step, found, tok_in)), 0), is_step, ids) AS r_in,
                   arrayMap((st, id) -> if(st = 1, arraySum(arrayMap((s2, f2, v) -> if(s2 = 0 AND f2 = id, v, 0),
                       is_step, found, tok_out)), 0), is_step, ids) AS r_out,
                   arrayMap((st, id) -> if(st = 1, arraySum(arrayMap((s2, f2, v) -> if(s2 = 0 AND f2 = id, v, 0),
                       is_step, found, costs)), 0), is_step, ids) AS r_cost,
                   arrayZip(ids, is_step, found, attempts, r_in, r_out, r_cost) AS rows
            FROM (
                SELECT tenant_id, trace_id, run_id, ids, parents, names, starts, attempt_attrs, is_step,
                       tok_in, tok_out, costs,
                       -- index of each span's parent (0: not in the trace); a walk stops at a step or the run span
                       arrayMap(p -> toUInt32(indexOfAssumeSorted(ids, p)), parents) AS up,
                       arrayMap((id, st) -> st = 1 OR id = run_span, ids, is_step) AS stop,
                       arrayFold((acc, round) -> arrayMap(i -> if(acc[i] = 0 OR stop[acc[i]], acc[i], acc[acc[i]]),
                                                          arrayEnumerate(acc)),
                                 range(6), up) AS nearest
                FROM (
                    SELECT tenant_id, trace_id, run_span, run_id, ids, parents, names, starts, attempt_attrs,
                           tok_in, tok_out, costs,
                           arrayMap((id, p, m, mk) -> toUInt8(id != run_span AND mk = 0
                                                             AND (m = 1 OR (run_span != '' AND p = run_span))),
                                    ids, parents, meaning, marker) AS is_step
                    FROM (
                        SELECT tenant_id, trace_id,
                               argMinIf(span_id, (run_rank, start_time, span_id), run_rank < 9) AS run_span,
                               coalesce(nullIf(argMinIf(run_id_attr, (run_rank, start_time, span_id), run_id_attr != ''),
                                               ''), trace_id) AS run_id,
                               arraySort(groupArray((span_id, parent_span_id, has_step_meaning, is_marker, step_name,
                                                     start_time, attempt_attr, input_tokens, output_tokens, cost)))
                                   AS nodes,
                               arrayMap(n -> n.1, nodes) AS ids,
                               arrayMap(n -> n.2, nodes) AS parents,
                               arrayMap(n -> n.3, nodes) AS meaning,
                               arrayMap(n -> n.4, nodes) AS marker,
                               arrayMap(n -> n.5, nodes) AS names,
                               arrayMap(n -> n.6, nodes) AS starts,
                               arrayMap(n -> n.7, nodes) AS attempt_attrs,
                               arrayMap(n -> n.8, nodes) AS tok_in,
                               arrayMap(n -> n.9, nodes) AS tok_out,
                               arrayMap(n -> n.10, nodes) AS costs
                        FROM facts GROUP BY tenant_id, trace_id
                    )
                )
            )
        )
        ARRAY JOIN rows AS z
    )
SELECT
    f.tenant_id AS tenant_id,
    f.trace_id AS trace_id,
    f.span_id AS step_id,
    t.run_id AS run_id,
    t.parent_step_id AS parent_step_id,
    f.parent_span_id AS parent_span_id,
    f.step_name AS name,
    f.step_type AS type,
    t.attempt AS attempt,
    f.status AS status,
    f.source_status AS source_status,
    multiIf(f.status != 'failed', '',
            f.source_status = 'timeout' OR positionCaseInsensitive(f.error_type, 'timeout') > 0, 'timeout',
            f.hitl_decision = 'rejected', 'rejected_by_human',
            f.step_type = 'validation' OR f.validation_passed = 0, 'validation',
            'error') AS failure_kind,
    f.error_type AS error_type,
    f.error_message AS error_message,
    f.start_time AS start_time,
    f.end_time AS end_time,
    f.duration_ns AS duration_ns,
    f.input_tokens + t.rolled_in AS input_tokens,
    f.output_tokens + t.rolled_out AS output_tokens,
    f.cost + t.rolled_cost AS cost_usd,
    f.model AS model,
    f.validation_name AS validation_name,
    f.validation_passed AS validation_passed,
    f.quality_score AS quality_score,
    f.hitl_decision AS human_decision,
    f.hitl_actor AS human_actor,
    toUInt64(if(f.hitl_decision != '', intDiv(f.duration_ns, 1000000), 0)) AS human_wait_ms,
    f.user_id AS user_id,
    f.session_id AS session_id,
    f.service_name AS service_name,
    f.span_name AS span_name,
    f.attributes AS attributes,
    toUInt16({retention_days:UInt16}) AS retention_days,
    now64(6) AS assembled_at,
    toUInt8(1 - t.is_step) AS is_deleted
FROM facts AS f
INNER JOIN tree AS t ON t.tenant_id = f.tenant_id AND t.trace_id = f.trace_id AND t.span_id = f.span_id;

CREATE VIEW IF NOT EXISTS assemble_runs AS
WITH
    traces AS (
        SELECT tenant_id, trace_id FROM dirty_traces
        WHERE ingested_at > {since:DateTime64(3)} AND ingested_at <= {until:DateTime64(3)}
    ),
    facts AS (
        SELECT *, (run_rank, start_time, span_id) AS k FROM priced_span_facts WHERE (tenant_id, trace_id) IN traces
    ),
    per_trace AS (
        SELECT
            tenant_id, trace_id,
            argMinIf(span_id, k, run_rank < 9) AS run_span_id,
            coalesce(nullIf(argMinIf(run_id_attr, k, run_id_attr != ''), ''), trace_id) AS run_id,
            argMinIf(workflow_attr, k, workflow_attr != '') AS wf_attr,
            argMinIf(agent_name, k, run_rank < 9 AND agent_name != '') AS wf_agent,
            argMinIf(pipeline_name, k, pipeline_name != '') AS wf_pipeline,
            argMinIf(span_name, k, run_rank < 9) AS wf_span_name,
            argMinIf(workflow_version_attr, k, workflow_version_attr != '') AS ver_attr,
            argMinIf(agent_version, k, run_rank < 9 AND agent_version != '') AS ver_agent,
            argMinIf(service_version, k, service_version != '') AS ver_service,
            argMinIf(environment, k, environment != '') AS env,
            argMinIf(service_name, k, service_name != '') AS service,
            argMinIf(run_status_attr, k, run_rank < 9) AS rs_run_status,
            argMinIf(status, k, run_rank < 9) AS rs_status,
            argMinIf(error_type, k, run_rank < 9) AS rs_error_type,
            argMinIf(error_message, k, run_rank < 9) AS rs_error_message,
            argMinIf(start_time, k, run_rank < 9) AS rs_start,
            argMinIf(end_time, k, run_rank < 9) AS rs_end,
            argMinIf(duration_ns, k, run_rank < 9) AS rs_duration,
            min(start_time) AS first_start,
            maxIf(start_time, is_marker = 1) AS last_wait_requested,
            maxIf(end_time, hitl_decision != '') AS last_decision,
            count() AS span_count,
            sum(input_tokens) AS input_tokens,
            sum(output_tokens) AS output_tokens,
            sum(cost) AS cost_usd,
            countIf(validation_passed = 1) AS validations_passed,
            countIf(validation_passed = 0) AS validations_failed,
            avgIf(quality_score, isNotNull(quality_score)) AS quality_mean,
            avgIf(cx_score, isNotNull(cx_score)) AS cx_score,
            argMinIf(rerun_of, k, rerun_of != '') AS rerun_of,
            argMinIf(user_id, k, user_id != '') AS user_id,
            argMinIf(session_id, k, session_id != '') AS session_id,
            max(ingested_at) AS last_span_at
        FROM facts GROUP BY tenant_id, trace_id
    ),
    per_steps AS (
        SELECT
            tenant_id, trace_id,
            count() AS step_count,
            countIf(attempt > 1) AS retries,
            countIf(status = 'failed') AS failed_steps,
            argMaxIf(name, (end_time, step_id), status = 'failed') AS failed_step,
            argMaxIf(step_id, (end_time, step_id), status = 'failed') AS failed_step_id,
            argMaxIf(concat(error_type, if(error_type != '' AND error_message != '', ': ', ''), error_message),
                     (end_time, step_id), status = 'failed') AS step_failure,
            countIf(human_decision != '') AS human_decisions,
            countIf(human_decision IN ('rejected', 'edited')) AS human_corrections,
            sum(human_wait_ms) AS human_wait_ms
        FROM steps_store FINAL
        WHERE (tenant_id, trace_id) IN traces
        GROUP BY tenant_id, trace_id
    )
SELECT
    t.tenant_id AS tenant_id,
    t.trace_id AS trace_id,
    t.run_id AS run_id,
    t.run_span_id AS run_span_id,
    coalesce(nullIf(t.wf_attr, ''), nullIf(t.wf_agent, ''), nullIf(t.wf_pipeline, ''), nullIf(t.wf_span_name, ''),
             t.service) AS workflow_name,
    coalesce(nullIf(t.ver_attr, ''), nullIf(t.ver_agent, ''), t.ver_service) AS workflow_version,
    t.env AS environment,
    multiIf(
        t.run_span_id != '' AND t.rs_run_status IN ('completed', 'failed', 'canceled'), t.rs_run_status,
        t.run_span_id != '' AND t.rs_status IN ('failed', 'canceled'), t.rs_status,
        t.run_span_id != '', 'completed',
        t.last_wait_requested > t.last_decision, 'waiting_human',
        'running') AS status,
    if(t.run_span_id != '', t.rs_start, t.first_start) AS start_time,
    if(t.run_span_id != '', toNullable(t.rs_end), NULL) AS end_time,
    if(t.run_span_id != '', toNullable(t.rs_duration), NULL) AS duration_ns,
    toUInt32(t.span_count) AS span_count,
    toUInt32(s.step_count) AS step_count,
    toUInt32(s.retries) AS retries,
    toUInt32(s.failed_steps) AS failed_steps,
    if(status = 'failed', s.failed_step, '') AS failed_step,
    if(status = 'failed', s.failed_step_id, '') AS failed_step_id,
    if(status != 'failed', '',
       if(s.failed_step != '', concat(s.failed_step, ': ', s.step_failure),
          concat(t.rs_error_type, if(t.rs_error_type != '' AND t.rs_error_message != '', ': ', ''),
                 t.rs_error_message))) AS failure_reason,
    toUInt8(status = 'completed' AND s.retries = 0 AND s.failed_steps = 0 AND t.rerun_of = ''
            AND s.human_corrections = 0) AS first_pass,
    toUInt32(s.human_decisions) AS human_decisions,
    toUInt32(s.human_corrections) AS human_corrections,
    s.human_wait_ms AS human_wait_ms,
    t.input_tokens AS input_tokens,
    t.output_tokens AS output_tokens,
    t.cost_usd AS cost_usd,
    toUInt32(t.validations_passed) AS validations_passed,
    toUInt32(t.validations_failed) AS validations_failed,
    if(isNaN(t.quality_mean), NULL, t.quality_mean) AS quality_mean,
    if(isNaN(t.cx_score), NULL, t.cx_score) AS cx_score,
    t.rerun_of AS rerun_of,
    t.user_id AS user_id,
    t.session_id AS session_id,
    t.service AS service_name,
    t.last_span_at AS last_span_at,
    toUInt16({retention_days:UInt16}) AS retention_days,
    now64(6) AS assembled_at
FROM per_trace AS t
LEFT JOIN per_steps AS s ON s.tenant_id = t.tenant_id AND s.trace_id = t.trace_id;

-- The SQL contract: wrm.runs and wrm.steps, one row per run and per step (attempts are rows).
CREATE VIEW IF NOT EXISTS runs AS
SELECT * EXCEPT (assembled_at, retention_days) FROM runs_store FINAL;

CREATE VIEW IF NOT EXISTS steps AS
SELECT * EXCEPT (assembled_at, retention_days, is_deleted) FROM steps_store FINAL;
