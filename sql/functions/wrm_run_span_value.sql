-- Run-span selection, part 2: an aggregate over a trace's span facts that gives `x` of its run
-- span, the first span in wrm_run_order(…) whose run_rank is below 9 (9: not a run span). With
-- no such span the trace has no run span yet and x's default (e.g. '') is returned.
-- Use: wrm_run_span_value(span_id, wrm_run_order(run_rank, start_time, span_id)) … GROUP BY trace.
CREATE OR REPLACE FUNCTION wrm_run_span_value AS (x, run_order) -> argMinIf(x, run_order, tupleElement(run_order, 1) < 9);
