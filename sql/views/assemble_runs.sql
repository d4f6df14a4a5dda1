-- The runs of cycle {stamp} (assembly_parts: queued, not frozen): one runs_store row per
-- run, without its retention_days (sql/statements/assemble_runs.sql adds it), from the span facts
-- of all its parts (cycle_parts) and its steps as steps_store holds them (assembled just before).
--
-- A run is one or more parts, one per trace (spec 4.3). Each part has its own run span, chosen as
-- in assemble_steps (wrm_run_span_value); the run's attributes are read from the first run span in
-- run-span order over all parts (wrm_run_order), else from the first span that has them. Status:
-- the last part (by start) settles it: its run span's outcome when it has ended; waiting_human
-- while a human request made in that part is open; running otherwise. A run not finished that has
-- had no span end for its workflow's stale_run_after (or, waiting for a person, its
-- human_wait_limit), measured at {now_ms}, is failed with failure_kind abandoned; a later span
-- rebuilds it from what it says.
CREATE OR REPLACE VIEW assemble_runs AS
WITH
    parts AS (
        SELECT tenant_id, trace_id, run_id FROM cycle_parts(stamp = {stamp:Int64})
    ),
    facts AS (  -- usage and cost come from steps_store (usage, below), not from here
        SELECT *, wrm_run_order(run_rank, start_time, span_id) AS k
        FROM span_facts FINAL WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM parts)
    ),
    -- one row per part: its run span's outcome and its start
    per_part AS (
        SELECT
            f.tenant_id AS tenant_id, f.trace_id AS trace_id, any(p.run_id) AS run_key,
            wrm_run_span_value(span_id, k) AS part_span_id,
            wrm_run_span_value(run_status_attr, k) AS rs_run_status,
            wrm_run_span_value(status, k) AS rs_status,
            wrm_run_span_value(error_type, k) AS rs_error_type,
            wrm_run_span_value(error_message, k) AS rs_error_message,
            wrm_run_span_value(start_time, k) AS rs_start,
            wrm_run_span_value(end_time, k) AS rs_end,
            if(part_span_id != '', rs_start, min(start_time)) AS part_start
        FROM facts AS f
        INNER JOIN parts AS p ON p.tenant_id = f.tenant_id AND p.trace_id = f.trace_id
        GROUP BY f.tenant_id, f.trace_id
    ),
    per_parts AS (
        SELECT
            tenant_id, run_key,
            arrayMap(x -> x.2, arraySort(groupArray((part_start, trace_id)))) AS trace_ids,
            argMax((part_span_id, rs_run_status, rs_status, rs_error_type, rs_error_message), (part_start, trace_id))
                AS last_part,
            max(part_start) AS last_part_start,
            min(part_start) AS first_start,
            maxIf(rs_end, part_span_id != '') AS last_root_end,
            -- parts whose run span ended failed: in a completed run, earlier parts, and a failure
            -- resumed is no first pass
            countIf(part_span_id != ''
                    AND if(rs_run_status IN ('completed', 'failed', 'canceled'), rs_run_status, rs_status) = 'failed')
                AS failed_parts
        FROM per_part GROUP BY tenant_id, run_key
    ),
    -- run-wide values over every span of every part
    per_run AS (
        SELECT
            f.tenant_id AS tenant_id, p.run_id AS run_key,
            wrm_run_span_value(span_id, k) AS run_span_id,
            coalesce(nullIf(wrm_run_span_value(f.trace_id, k), ''), argMin(f.trace_id, (start_time, span_id)))
                AS run_trace_id,
            argMinIf(workflow_attr, k, workflow_attr != '') AS wf_attr,
            argMinIf(agent_name, k, run_rank < 9 AND agent_name != '') AS wf_agent,
            argMinIf(pipeline_name, k, pipeline_name != '') AS wf_pipeline,
            wrm_run_span_value(span_name, k) AS wf_span_name,
            argMinIf(workflow_version_attr, k, workflow_version_attr != '') AS ver_attr,
            argMinIf(agent_version, k, run_rank < 9 AND agent_version != '') AS ver_agent,
            argMinIf(service_version, k, service_version != '') AS ver_service,
            argMinIf(environment, k, environment != '') AS env,
            argMinIf(service_name, k, service_name != '') AS service,
            count() AS span_count,
            countIf(validation_passed = 1) AS validations_passed,
            countIf(validation_passed = 0) AS validations_failed,
            avgIf(quality_score, isNotNull(quality_score)) AS quality_mean,
            avgIf(cx_score, isNotNull(cx_score)) AS cx_score,
            argMinIf(rerun_of, k, rerun_of != '') AS rerun_of,
            argMinIf(user_id, k, user_id != '') AS user_id,
            argMinIf(session_id, k, session_id != '') AS session_id,
            -- the human requests still open (wrm_hitl_fold: each decision answers the oldest)
            wrm_hitl_fold(arraySort(groupArrayIf(
                wrm_hitl_event(is_marker, start_time, end_time, span_id, duration_ns),
                is_marker = 1 OR hitl_decision != ''))).1 AS open_requests,
            max(end_time) AS last_end,
            argMax((step_name, status, end_time), (end_time, span_id)) AS last_seen,
            max(ingested_at) AS last_span_at,
            max(end_time) AS last_active_at
        FROM facts AS f
        INNER JOIN parts AS p ON p.tenant_id = f.tenant_id AND p.trace_id = f.trace_id
        GROUP BY f.tenant_id, p.run_id
    ),
    -- every span's row in steps_store, as last assembled (argMax: steps and is_deleted rows
    -- alike): the steps' counts, and the usage, each span's row holding the usage that counts for
    -- it and nothing counted elsewhere (usage counted once, assemble_steps)
    per_steps AS (
        SELECT
            tenant_id, run_id AS run_key,
            countIf(live) AS step_count,
            countIf(live AND attempt > 1) AS retries,
            countIf(live AND status = 'failed') AS failed_steps,
            argMaxIf(name, (end_time, step_id), live AND status = 'failed') AS failed_step,
            argMaxIf(step_id, (end_time, step_id), live AND status = 'failed') AS failed_step_id,
            argMaxIf(failure_kind, (end_time, step_id), live AND status = 'failed') AS failed_kind,
            argMaxIf(concat(error_type, if(error_type != '' AND error_message != '', ': ', ''), error_message),
                     (end_time, step_id), live AND status = 'failed') AS step_failure,
            countIf(live AND human_decision != '') AS human_decisions,
            countIf(live AND human_decision IN ('rejected', 'edited')) AS human_corrections,
            sumIf(human_wait_ms, live) AS human_wait_ms,
            sum(i) AS input_tokens,
            sum(o) AS output_tokens,
            sum(c) AS cost_usd
        FROM (
            SELECT tenant_id, step_id, v.1 AS run_id, v.2 = 0 AS live, v.3 AS attempt, v.4 AS status, v.5 AS name,
                   v.6 AS end_time, v.7 AS failure_kind, v.8 AS error_type, v.9 AS error_message,
                   v.10 AS human_decision, v.11 AS human_wait_ms, v.12 AS i, v.13 AS o, v.14 AS c
            FROM (
                SELECT tenant_id, trace_id, step_id,
                       argMax((run_id, is_deleted, attempt, status, name, end_time, failure_kind, error_type,
                               error_message, human_decision, human_wait_ms, input_tokens, output_tokens, cost_usd),
                              assembled_at) AS v
                FROM steps_store
                WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM parts)
                GROUP BY tenant_id, trace_id, step_id
            )
        )
        GROUP BY tenant_id, run_id
    ),
    settled AS (
        SELECT
            *,
            last_part.1 != '' AS last_ended,
            multiIf(
                last_ended AND last_part.2 IN ('completed', 'failed', 'canceled'), last_part.2,
                last_ended AND last_part.3 IN ('failed', 'canceled'), last_part.3,
                notEmpty(open_requests) AND arrayMax(open_requests) >= toUnixTimestamp64Nano(last_part_start),
                    'waiting_human',
                last_ended, 'completed',
                'running') AS live_status,
            coalesce(nullIf(wf_attr, ''), nullIf(wf_agent, ''), nullIf(wf_pipeline, ''),
                     nullIf(wf_span_name, ''), service) AS workflow,
            wrm_idle_limit(live_status, workflow, {stale_workflows:Array(String)}, {stale_seconds:Array(UInt64)},
                           {stale_default:UInt64}, {wait_workflows:Array(String)}, {wait_seconds:Array(UInt64)},
                           {wait_default:UInt64}) AS idle_limit_s,
            live_status IN ('running', 'waiting_human')
                AND toUnixTimestamp64Milli(last_active_at) + toInt64(idle_limit_s) * 1000 < {now_ms:Int64}
                AS abandoned
        FROM per_run AS r
        INNER JOIN per_parts AS pp USING (tenant_id, run_key)
        LEFT JOIN per_steps AS s USING (tenant_id, run_key)
    )
SELECT
    tenant_id,
    run_key AS run_id,
    run_trace_id AS trace_id,
    trace_ids,
    run_span_id,
    workflow AS workflow_name,
    coalesce(nullIf(ver_attr, ''), nullIf(ver_agent, ''), ver_service) AS workflow_version,
    env AS environment,
    if(abandoned, 'failed', live_status) AS status,
    first_start AS start_time,
    multiIf(abandoned, toNullable(last_end),
            live_status IN ('completed', 'failed', 'canceled'), toNullable(greatest(last_root_end, first_start)),
            NULL) AS end_time,
    if(isNull(end_time), NULL,
       toNullable(toUInt64(greatest(0, toUnixTimestamp64Nano(assumeNotNull(end_time)) - toUnixTimestamp64Nano(first_start)))))
        AS duration_ns,
    toUInt32(span_count) AS span_count,
    toUInt32(step_count) AS step_count,
    toUInt32(retries) AS retries,
    toUInt32(failed_steps) AS failed_steps,
    if(status = 'failed' AND NOT abandoned, failed_step, '') AS failed_step,
    if(status = 'failed' AND NOT abandoned, failed_step_id, '') AS failed_step_id,
    multiIf(status != 'failed', '', abandoned, 'abandoned', failed_step != '', failed_kind, 'error') AS failure_kind,
    multiIf(
        status != 'failed', '',
        abandoned,
            concat('abandoned: no span for ', formatReadableTimeDelta(idle_limit_s),
                   if(live_status = 'waiting_human', ' while waiting for a person', ''),
                   '; last seen: "', last_seen.1, '" ', last_seen.2, ' at ',
                   formatDateTime(last_seen.3, '%Y-%m-%d %H:%i:%S', 'UTC'), ' UTC'),
        failed_step != '', concat(failed_step, ': ', step_failure),
        concat(last_part.4, if(last_part.4 != '' AND last_part.5 != '', ': ', ''), last_part.5)) AS failure_reason,
    toUInt8(status = 'completed' AND retries = 0 AND failed_steps = 0 AND failed_parts = 0 AND rerun_of = ''
            AND human_corrections = 0) AS first_pass,
    toUInt32(human_decisions) AS human_decisions,
    toUInt32(human_corrections) AS human_corrections,
    human_wait_ms,
    input_tokens,
    output_tokens,
    cost_usd,
    toUInt32(validations_passed) AS validations_passed,
    toUInt32(validations_failed) AS validations_failed,
    if(isNaN(quality_mean), NULL, quality_mean) AS quality_mean,
    if(isNaN(cx_score), NULL, cx_score) AS cx_score,
    rerun_of,
    user_id,
    session_id,
    service AS service_name,
    last_span_at,
    last_active_at,
    now64(6) AS assembled_at,
    toUInt8(0) AS is_deleted
FROM settled;
