-- Queue, at stamp {queued_ms}, the runs of every trace resolved in this cycle (version {from} or
-- later): the runs they joined.
INSERT INTO run_queue
SELECT DISTINCT {queued_ms:Int64}, tenant_id, run_id FROM trace_runs WHERE resolved >= {from:UInt64}
