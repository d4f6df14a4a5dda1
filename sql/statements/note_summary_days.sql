-- Note, for the summarizer, every (tenant, UTC day) the runs of an assembly window are on. The
-- assembler runs it before a rebuild (the days runs were on) and after it (the days they are on).
INSERT INTO summary_dirty
SELECT DISTINCT tenant_id, toDate(start_time), {until:Int64}
FROM runs_store FINAL
WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM assembly_window(since = {since:Int64}, until = {until:Int64}))
