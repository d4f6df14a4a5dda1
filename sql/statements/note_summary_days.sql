-- Note, for the summarizer, every (tenant, UTC day) the runs queued in (since, until], ms, are on.
-- The assembler runs it before a rebuild (the days runs were on) and after it (the days they are
-- on), stamped {noted_ms}: the ingest watermark the cycle moves to.
INSERT INTO summary_dirty
SELECT DISTINCT tenant_id, toDate(start_time), {noted_ms:Int64}
FROM runs_store FINAL
WHERE (tenant_id, run_id) IN (
    SELECT DISTINCT tenant_id, run_id FROM run_queue WHERE queued_ms > {since:Int64} AND queued_ms <= {until:Int64})
