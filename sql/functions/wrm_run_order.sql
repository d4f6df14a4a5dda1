-- Run-span selection, part 1: the order in which a trace's spans are candidates for its run span
-- (span_facts.run_rank, lowest first; then the earliest; then the lowest span id). Attributes
-- read "from the run, else the first span that has it" take the first in this order.
CREATE OR REPLACE FUNCTION wrm_run_order AS (run_rank, start_time, span_id) -> (run_rank, start_time, span_id);
