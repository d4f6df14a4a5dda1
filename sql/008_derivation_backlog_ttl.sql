-- What the assembler has not derived yet must outlive an outage. dirty_traces (traces touched by
-- each insert, read by the assembler from its watermark on) and summary_dirty (days the
-- summarizer must recompute) expired after 2 and 7 days: an assembler stopped by a permanent
-- error, or retrying a transient one, for longer would come back to find acknowledged traces
-- that can no longer become runs. 35 days outlives the default span retention (30 days), past
-- which a run is frozen anyway (spec 6.1). Both tables are a small fraction of `spans`.
ALTER TABLE dirty_traces MODIFY TTL toDateTime(ingested_at) + INTERVAL 35 DAY;
ALTER TABLE summary_dirty MODIFY TTL toDateTime(intDiv(noted_ms, 1000)) + INTERVAL 35 DAY;
