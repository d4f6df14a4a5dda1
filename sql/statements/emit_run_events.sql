-- The lifecycle events of the runs cycle {stamp} rebuilt, written to the outbox under
-- {emitted_ms} (warehouse/outbox.py): run.started for every run; run.waiting_human for each
-- wrm.hitl.state=requested marker of its parts; step.completed / step.failed for each step
-- attempt; run.completed / run.failed / run.canceled once it has finished.
--
-- Each id is a hash of what the event is about, by trace and span, never by run id (a run's id
-- can change as its spans arrive: a wrm.run.id on the run span, parts joined): (tenant, the run's
-- trace, type) for run events, (tenant, trace/marker span) for a wait, (tenant, trace/step span,
-- type) for a step. An id the cycle's traces already have in the outbox is not written again,
-- so re-assembly, re-delivered spans, a changed run id and restarts emit nothing twice. `data`
-- is the run or step as the API shows it, at the time of the transition for its status
-- (run.started says running, run.waiting_human waiting_human).
INSERT INTO lifecycle_events
    (tenant_id, trace_id, event_id, run_id, type, step_id, webhook_id, workflow_name, environment, status,
     occurred_at, rank, emitted_ms, data)
SELECT * FROM (
SELECT r.tenant_id, e.6 AS anchor, wrm_event_id(r.tenant_id, anchor, e.1, e.5) AS id, r.run_id, e.1, '', '',
       r.workflow_name, r.environment, e.2, e.3, e.4, {emitted_ms:Int64},
       formatRowNoNewline('JSONEachRow',
           r.tenant_id AS tenant_id, r.run_id AS run_id, r.trace_id AS trace_id,
           r.workflow_name AS workflow, r.workflow_version AS version, r.environment AS environment,
           e.2 AS status, r.start_time AS start_time,
           if(e.1 IN ('run.completed', 'run.failed', 'run.canceled'), r.end_time, NULL) AS end_time,
           if(e.1 IN ('run.completed', 'run.failed', 'run.canceled'), r.duration_ns / 1e6, NULL) AS duration_ms,
           if(e.1 = 'run.waiting_human', e.3, NULL) AS waiting_since,
           r.step_count AS step_count, r.retries AS retries, r.failed_step AS failed_step,
           if(e.1 = 'run.failed', r.failure_kind, '') AS failure_kind,
           if(e.1 = 'run.failed', r.failure_reason, '') AS failure_reason,
           r.human_decisions AS human_decisions, r.human_wait_ms AS human_wait_ms,
           r.input_tokens AS input_tokens, r.output_tokens AS output_tokens, r.cost_usd AS cost_usd,
           toBool(r.first_pass) AS first_pass, r.rerun_of AS rerun_of, r.trace_ids AS trace_ids)
FROM (
    SELECT * FROM runs_store FINAL
    WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM cycle_runs(stamp = {stamp:Int64}))
) AS r
LEFT JOIN (
    SELECT c.tenant_id AS tenant_id, c.run_id AS run_id,
           groupArray((f.trace_id, f.span_id, f.start_time)) AS markers
    FROM span_facts AS f FINAL
    INNER JOIN cycle_parts(stamp = {stamp:Int64}) AS c ON c.tenant_id = f.tenant_id AND c.trace_id = f.trace_id
    WHERE f.is_marker = 1
      AND (f.tenant_id, f.trace_id) IN (SELECT tenant_id, trace_id FROM cycle_parts(stamp = {stamp:Int64}))
    GROUP BY c.tenant_id, c.run_id
) AS m ON m.tenant_id = r.tenant_id AND m.run_id = r.run_id
-- (type, status announced, when, rank, what it is about, the trace it is anchored to)
ARRAY JOIN arrayConcat(
    [('run.started', 'running', r.start_time, toUInt8(0), '', r.trace_id)],
    arrayMap(x -> ('run.waiting_human', 'waiting_human', x.3, toUInt8(1), concat(x.1, '/', x.2), x.1), m.markers),
    if(r.status IN ('completed', 'failed', 'canceled'),
       [(concat('run.', r.status), toString(r.status), coalesce(r.end_time, r.last_active_at), toUInt8(9), '',
         r.trace_id)],
       [])) AS e
WHERE id NOT IN (
    SELECT event_id FROM lifecycle_events
    WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM cycle_parts(stamp = {stamp:Int64})))

UNION ALL

SELECT s.tenant_id, s.trace_id, wrm_event_id(s.tenant_id, s.trace_id, step_type, s.step_id) AS id, s.run_id,
       if(s.status = 'failed', 'step.failed', 'step.completed') AS step_type, s.step_id, '', r.workflow_name,
       r.environment, toString(s.status), s.end_time, toUInt8(5), {emitted_ms:Int64},
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
  AND id NOT IN (
      SELECT event_id FROM lifecycle_events
      WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM cycle_parts(stamp = {stamp:Int64})))
)
SETTINGS output_format_json_quote_64bit_integers = 0, date_time_output_format = 'iso',
         output_format_json_quote_denormals = 0
