-- The traces an assembly window covers: those with spans stored with an ingest stamp in
-- (since, until], in ms (dirty_traces, sql/002). A trace can be listed more than once.
CREATE OR REPLACE VIEW assembly_window AS
SELECT tenant_id, trace_id FROM dirty_traces
WHERE ingested_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC')
  AND ingested_at <= fromUnixTimestamp64Milli({until:Int64}, 'UTC');
