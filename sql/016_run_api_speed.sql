-- The run list longest first (`GET /v1/runs?sort=duration`) at a million runs (issue 18).
--
-- runs_by_time is sorted by start time, so "the 50 longest" was a top-N sort over every run with
-- FINAL (~170 ms at 1M runs). This projection keeps the columns the list filters on, sorted by
-- (tenant_id, duration, run_id): the list reads its candidates in reverse order of that key
-- without FINAL (analytics/runs/listing.py), a short read, and then checks each candidate's
-- current version in runs_by_time by its key, as it does for the newest-first list.
--
-- A projection is part of the table: every insert into runs_by_time (runs_by_time_mv and the
-- is_deleted rows of statements/unlist_runs.sql) and every merge keeps it, so it holds the same
-- rows, older versions and hiding rows included, which the check handles as for the table itself.
-- ReplacingMergeTree refuses projections unless told what a merge does with them: 'rebuild'
-- builds the projection again from the merged (deduplicated) rows.
ALTER TABLE runs_by_time MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE runs_by_time ADD PROJECTION IF NOT EXISTS by_duration
(
    SELECT tenant_id, start_time, run_id, trace_id, trace_ids, workflow_name, workflow_version, environment, status,
           end_time, duration_ns, step_count, retries, input_tokens, output_tokens, cost_usd, first_pass,
           human_decisions, failure_kind, failure_reason, assembled_at, is_deleted
    ORDER BY tenant_id, ifNull(duration_ns, 0), run_id
);

-- Build it for the runs already listed (a mutation, rewriting the projection only); until it is
-- built for a part, that part is read from the table as before.
ALTER TABLE runs_by_time MATERIALIZE PROJECTION by_duration;
