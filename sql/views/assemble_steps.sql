-- The steps of the runs of cycle {stamp} (assembly_parts: queued, not frozen): every span of each
-- of their traces (cycle_parts) as a steps_store row without its retention_days
-- (sql/statements/assemble_steps.sql adds it), is_deleted when the span is not a step.
--
-- One pass per trace (each part of a run keeps its own tree): the trace's spans are gathered into
-- arrays sorted by span id, and the tree questions are answered with array functions, which keeps
-- the plan small:
--   * the trace's run span (wrm_run_span_value: sql/functions); the run id is the trace's
--     resolved run (trace_runs, through cycle_parts);
--   * which spans are steps (step meaning, or a direct child of the run span; never a marker);
--   * each span's nearest step ancestor, by pointer jumping over parent links (arrayFold: each
--     round doubles the reach, six rounds reach 64 levels): a step nests under it, a non-step
--     span rolls its usage into it;
--   * usage counted once (wrm_usage_covered / wrm_usage_counted): a span's own tokens and cost
--     count only when no descendant reports them;
--   * attempts: wrm.step.attempt, else the order among steps with the same name and parent in the
--     same trace (a part that resumes after a pause is not a retry).
-- A human decision's wait is measured per request, across the run's parts: from the latest
-- wrm.hitl.state=requested marker since the run's previous decision to the decision's end; with
-- no such marker, the decision span's own duration.
CREATE OR REPLACE VIEW assemble_steps AS
WITH
    parts AS (
        SELECT tenant_id, trace_id, run_id FROM cycle_parts(stamp = {stamp:Int64})
    ),
    facts AS (
        SELECT * FROM priced_span_facts WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM parts)
    ),
    requests AS (
        SELECT p.tenant_id AS tenant_id, p.run_id AS run_id,
               wrm_hitl_fold(arraySort(groupArrayIf(
                   wrm_hitl_event(f.is_marker, f.start_time, f.end_time, f.span_id, f.duration_ns),
                   f.is_marker = 1 OR f.hitl_decision != ''))).2 AS waits
        FROM facts AS f
        INNER JOIN parts AS p ON p.tenant_id = f.tenant_id AND p.trace_id = f.trace_id
        GROUP BY p.tenant_id, p.run_id
    ),
    tree AS (
        SELECT tenant_id, trace_id, run_id, z.1 AS span_id, z.2 AS is_step, z.3 AS parent_step_id, z.4 AS attempt,
               z.5 AS rolled_in, z.6 AS rolled_out, z.7 AS rolled_cost, z.8 AS own_in, z.9 AS own_out,
               z.10 AS own_cost
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
                   arrayZip(ids, is_step, found, attempts, r_in, r_out, r_cost, tok_in, tok_out, costs) AS rows
            FROM (
                SELECT tenant_id, trace_id, run_id, ids, parents, names, starts, attempt_attrs, is_step,
                       -- the usage that counts (spec 4.4)
                       wrm_usage_counted(own_in, covered_in) AS tok_in,
                       wrm_usage_counted(own_out, covered_out) AS tok_out,
                       wrm_usage_counted(own_cost, covered_cost) AS costs,
                       -- index of each span's parent (0: not in the trace); a walk stops at a step or the run span
                       arrayMap(p -> toUInt32(indexOfAssumeSorted(ids, p)), parents) AS up,
                       arrayMap((id, st) -> st = 1 OR id = run_span, ids, is_step) AS stop,
                       arrayFold((acc, round) -> arrayMap(i -> if(acc[i] = 0 OR stop[acc[i]], acc[i], acc[acc[i]]),
                                                          arrayEnumerate(acc)),
                                 range(6), up) AS nearest
                FROM (
                    SELECT tenant_id, trace_id, run_span, run_id, ids, parents, names, starts, attempt_attrs,
                           own_in, own_out, own_cost,
                           wrm_usage_covered(ids, parents, own_in) AS covered_in,
                           wrm_usage_covered(ids, parents, own_out) AS covered_out,
                           wrm_usage_covered(ids, parents, own_cost) AS covered_cost,
                           arrayMap((id, p, m, mk) -> toUInt8(id != run_span AND mk = 0
                                                             AND (m = 1 OR (run_span != '' AND p = run_span))),
                                    ids, parents, meaning, marker) AS is_step
                    FROM (
                        SELECT tenant_id, trace_id,
                               wrm_run_span_value(span_id, wrm_run_order(run_rank, start_time, span_id)) AS run_span,
                               any(p.run_id) AS run_id,
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
                               arrayMap(n -> n.8, nodes) AS own_in,
                               arrayMap(n -> n.9, nodes) AS own_out,
                               arrayMap(n -> n.10, nodes) AS own_cost
                        FROM facts AS f
                        INNER JOIN parts AS p ON p.tenant_id = f.tenant_id AND p.trace_id = f.trace_id
                        GROUP BY f.tenant_id AS tenant_id, f.trace_id AS trace_id
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
    -- a step: its own usage and its non-step spans'; a span that is not a step (an is_deleted
    -- row): its own usage unless a step took it, so the rows of a trace sum to its usage once
    if(t.is_step = 1, t.own_in + t.rolled_in, if(t.parent_step_id = '', t.own_in, 0)) AS input_tokens,
    if(t.is_step = 1, t.own_out + t.rolled_out, if(t.parent_step_id = '', t.own_out, 0)) AS output_tokens,
    if(t.is_step = 1, t.own_cost + t.rolled_cost, if(t.parent_step_id = '', t.own_cost, 0)) AS cost_usd,
    f.model AS model,
    f.validation_name AS validation_name,
    f.validation_passed AS validation_passed,
    f.quality_score AS quality_score,
    f.hitl_decision AS human_decision,
    f.hitl_actor AS human_actor,
    toUInt64(if(f.hitl_decision = '' OR f.is_marker = 1, 0,
                intDiv(greatest(0, arrayFirst(w -> w.1 = f.span_id, q.waits).2), 1000000))) AS human_wait_ms,
    f.user_id AS user_id,
    f.session_id AS session_id,
    f.service_name AS service_name,
    f.span_name AS span_name,
    f.attributes AS attributes,
    now64(6) AS assembled_at,
    toUInt8(1 - t.is_step) AS is_deleted
FROM facts AS f
INNER JOIN tree AS t ON t.tenant_id = f.tenant_id AND t.trace_id = f.trace_id AND t.span_id = f.span_id
LEFT JOIN requests AS q ON q.tenant_id = f.tenant_id AND q.run_id = t.run_id;
