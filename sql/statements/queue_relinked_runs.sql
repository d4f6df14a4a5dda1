-- Queue, at stamp {queued_ms}, the runs the traces of relinked_traces are about to leave; run
-- before resolve_links.sql, which moves them.
INSERT INTO run_queue
SELECT DISTINCT {queued_ms:Int64}, tenant_id, old_run_id FROM relinked_traces(from = {from:UInt64})
