-- The current version of every run, as runs_by_time rows (sql/009): the assembler reads it to
-- write the is_deleted rows before a rebuild (sql/statements/unlist_runs.sql).
CREATE OR REPLACE VIEW runs_listing AS
SELECT tenant_id, start_time, run_id, trace_id, trace_ids, workflow_name, workflow_version, environment, status,
       end_time, duration_ns, step_count, retries, input_tokens, output_tokens, cost_usd, first_pass, human_decisions,
       failure_kind, failure_reason, rerun_of, retention_days, assembled_at, toUInt8(0) AS is_deleted
FROM runs_store FINAL;
