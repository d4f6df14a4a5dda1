-- A span as an event for wrm_hitl_fold: (time ns, kind, span id, duration ns), a request marker at
-- its start (kind 0), a decision at its end (kind 1). Collect it for spans with is_marker = 1 or a
-- hitl_decision, sorted.
CREATE OR REPLACE FUNCTION wrm_hitl_event AS (is_marker, start_time, end_time, span_id, duration_ns) ->
    (toUnixTimestamp64Nano(if(is_marker = 1, start_time, end_time)), toUInt8(is_marker = 0), span_id,
     toInt64(duration_ns));
