-- The lifecycle events of the runs cycle {stamp} rebuilt, written to the outbox under
-- {emitted_ms} (warehouse/outbox.py): run.started for every run; run.waiting_human for each
-- wrm.hitl.state=requested marker of its parts; step.completed / step.failed for each step
-- attempt; run.completed / run.failed / run.canceled once it has finished. Each id is a hash of
-- (tenant, run, type, what it is about: the marker's or the step's span id), and an id already in
-- the outbox is not written again, so re-assembly, re-delivered spans and restarts emit nothing
-- twice. `data` is the run or step as the API shows it, at the time of the transition for its
-- status (run.started says running, run.waiting_human waiting_human).
INSERT INTO lifecycle_events
    (tenant_id, run_id, event_id, type, step_id, webhook_id, workflow_name, environment, status, occurred_at, rank,
     emitted_ms, data)
SELECT tenant_id, run_id, wrm_event_id(tenant_id, run_id, ev_type, ev_about) AS event_id, ev_type, ev_step_id, '',
       workflow_name, environment, ev_status, ev_at, ev_rank, {emitted_ms:Int64}, ev_data
FROM (
    SELECT r.tenant_id AS tenant_id, r.run_id AS run_id, r.workflow_name AS workflow_name,
           r.environment AS environment, e.1 AS ev_type, e.2 AS ev_status, e.3 AS ev_at, e.4 AS ev_rank,
           e.5 AS ev_about, '' AS ev_step_id, e.1 IN ('run.completed', 'run.failed', 'run.canceled') AS ended,
           formatRowNoNewline('JSONEachRow',
               r.tenant_id AS tenant_id, r.run_id AS run_id, r.trace_id AS trace_id,
               r.workflow_name AS workflow, r.workflow_version AS version, r.environment AS environment,
               e.2 AS status, r.start_time AS start_time, if(ended, r.end_time, NULL) AS end_time,
               if(ended, r.duration_ns / 1e6, NULL) AS duration_ms,
               if(e.1 = 'run.waiting_human', e.3, NULL) AS waiting_since,
               r.step_count AS step_count, r.retries AS retries, r.failed_step AS failed_step,
               if(e.1 = 'run.failed', r.failure_kind, '') AS failure_kind,
               if(e.1 = 'run.failed', r.failure_reason, '') AS failure_reason,
               r.human_decisions AS human_decisions, r.human_wait_ms AS human_wait_ms,
               r.input_tokens AS input_tokens, r.output_tokens AS output_tokens, r.cost_usd AS cost_usd,
               toBool(r.first_pass) AS first_pass, r.rerun_of AS rerun_of, r.trace_ids AS trace_ids) AS ev_data
    FROM (
        SELECT * FROM runs_store FINAL
        WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM cycle_runs(stamp = {stamp:Int64}))
    ) AS r
    LEFT JOIN (
        SELECT c.tenant_id AS tenant_id, c.run_id AS run_id, groupArray((f.span_id, f.start_time)) AS markers
        FROM span_facts AS f FINAL
        INNER JOIN cycle_parts(stamp = {stamp:Int64}) AS c ON c.tenant_id = f.tenant_id AND c.trace_id = f.trace_id
        WHERE f.is_marker = 1
          AND (f.tenant_id, f.trace_id) IN (SELECT tenant_id, trace_id FROM cycle_parts(stamp = {stamp:Int64}))
        GROUP BY c.tenant_id, c.run_id
    ) AS m ON m.tenant_id = r.tenant_id AND m.run_id = r.run_id
    ARRAY JOIN arrayConcat(
        [('run.started', 'running', r.start_time, toUInt8(0), '')],
        arrayMap(x -> ('run.waiting_human', 'waiting_human', x.2, toUInt8(1), x.1), m.markers),
        if(r.status IN ('completed', 'failed', 'canceled'),
           [(concat('run.', r.status), toString(r.status), coalesce(r.end_time, r.last_active_at), toUInt8(9), '')],
           [])) AS e

    UNION ALL

    SELECT s.tenant_id, s.run_id, r.workflow_name, r.environment,
           if(s.status = 'failed', 'step.failed', 'step.completed'), toString(s.status), s.end_time, toUInt8(5),
           s.step_id, s.step_id, true,
           formatRowNoNewline('JSONEachRow',
               s.tenant_id AS tenant_id, s.run_id AS run_id, s.trace_id AS trace_id, s.step_id AS step_id,
               s.parent_step_id AS parent_step_id, r.workflow_name AS workflow, r.workflow_version AS version,
               r.environment AS environment, s.name AS name, s.type AS type, s.attempt AS attempt,
               s.status AS status, s.start_time AS start_time, s.end_time AS end_time,
               s.duration_ns / 1e6 AS duration_ms, s.model AS model, s.input_tokens AS input_tokens,
               s.output_tokens AS output_tokens, s.cost_usd AS cost_usd, s.validation_name AS validation_name,
               CAST(s.validation_passed, 'Nullable(Bool)') AS validation_passed, s.quality_score AS quality_score,
               s.human_decision AS human_decision, s.human_actor AS human_actor, s.human_wait_ms AS human_wait_ms,
               if(s.status = 'failed', arrayStringConcat(arrayFilter(p -> p != '', [s.error_type, s.error_message]), ': '),
                  '') AS last_error)
    FROM steps_store AS s FINAL
    INNER JOIN (
        SELECT tenant_id, run_id, workflow_name, workflow_version, environment FROM runs_store FINAL
        WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM cycle_runs(stamp = {stamp:Int64}))
    ) AS r ON r.tenant_id = s.tenant_id AND r.run_id = s.run_id
    WHERE (s.tenant_id, s.trace_id) IN (SELECT tenant_id, trace_id FROM cycle_parts(stamp = {stamp:Int64}))
      AND s.status IN ('completed', 'failed')
)
WHERE event_id NOT IN (
    SELECT event_id FROM lifecycle_events
    WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM cycle_runs(stamp = {stamp:Int64})))
SETTINGS output_format_json_quote_64bit_integers = 0, date_time_output_format = 'iso',
         output_format_json_quote_denormals = 0
