-- The runs of the traces in an assembly window (since, until], ms: one runs_store row per trace
-- without its retention_days (sql/statements/assemble_runs.sql adds it), from all the trace's span
-- facts and its steps as steps_store holds them (assembled just before). The run span and the run
-- id are chosen as in assemble_steps (wrm_run_span_value, wrm_run_id: sql/functions).
CREATE OR REPLACE VIEW assemble_runs AS
WITH
    traces AS (
        SELECT tenant_id, trace_id FROM assembly_window(since = {since:Int64}, until = {until:Int64})
    ),
    facts AS (
        SELECT *, wrm_run_order(run_rank, start_time, span_id) AS k FROM priced_span_facts WHERE (tenant_id, trace_id) IN traces
    ),
    per_trace AS (
        SELECT
            tenant_id, trace_id,
            wrm_run_span_value(span_id, k) AS run_span_id,
            wrm_run_id(run_id_attr, k, trace_id) AS run_id,
            argMinIf(workflow_attr, k, workflow_attr != '') AS wf_attr,
            argMinIf(agent_name, k, run_rank < 9 AND agent_name != '') AS wf_agent,
            argMinIf(pipeline_name, k, pipeline_name != '') AS wf_pipeline,
            wrm_run_span_value(span_name, k) AS wf_span_name,
            argMinIf(workflow_version_attr, k, workflow_version_attr != '') AS ver_attr,
            argMinIf(agent_version, k, run_rank < 9 AND agent_version != '') AS ver_agent,
            argMinIf(service_version, k, service_version != '') AS ver_service,
            argMinIf(environment, k, environment != '') AS env,
            argMinIf(service_name, k, service_name != '') AS service,
            wrm_run_span_value(run_status_attr, k) AS rs_run_status,
            wrm_run_span_value(status, k) AS rs_status,
            wrm_run_span_value(error_type, k) AS rs_error_type,
            wrm_run_span_value(error_message, k) AS rs_error_message,
            wrm_run_span_value(start_time, k) AS rs_start,
            wrm_run_span_value(end_time, k) AS rs_end,
            wrm_run_span_value(duration_ns, k) AS rs_duration,
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
    now64(6) AS assembled_at
FROM per_trace AS t
LEFT JOIN per_steps AS s ON s.tenant_id = t.tenant_id AND s.trace_id = t.trace_id;
