-- Queue, at stamp {queued_ms}, every unfinished run that has received no span for its workflow's
-- stale_run_after (human_wait_limit while waiting for a person), measured at {now_ms}: rebuilt,
-- it becomes failed / abandoned (assemble_runs).
INSERT INTO run_queue
SELECT {queued_ms:Int64}, tenant_id, run_id FROM runs_store FINAL
WHERE status IN ('running', 'waiting_human')
  AND toUnixTimestamp64Milli(last_span_at)
      + toInt64(if(status = 'waiting_human',
                   wrm_workflow_seconds(workflow_name, {wait_workflows:Array(String)}, {wait_seconds:Array(UInt64)},
                                        {wait_default:UInt64}),
                   wrm_workflow_seconds(workflow_name, {stale_workflows:Array(String)},
                                        {stale_seconds:Array(UInt64)}, {stale_default:UInt64}))) * 1000
      < {now_ms:Int64}
