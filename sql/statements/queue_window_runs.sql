-- Queue, at stamp {queued_ms}, every run the traces of an ingest window (since, until], ms, were
-- ever resolved to (all stored versions): run before resolve_traces.sql, so a run a trace
-- leaves is rebuilt without it.
INSERT INTO run_queue
SELECT DISTINCT {queued_ms:Int64}, tenant_id, run_id FROM trace_runs
WHERE (tenant_id, trace_id) IN (SELECT tenant_id, trace_id FROM assembly_window(since = {since:Int64}, until = {until:Int64}))
