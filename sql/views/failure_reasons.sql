-- Why one workflow's runs failed over the UTC days [since, until] of their start: one row per
-- (failure_reason, failed_step), most runs first, with the three latest failed run ids. Reads the
-- runs tier (kept runs_ttl_days), so a period older than that has fewer or no rows.
CREATE OR REPLACE VIEW failure_reasons AS
SELECT
    failure_reason,
    failed_step,
    count() AS runs,
    arrayMap(t -> t.2, arraySlice(arrayReverseSort(groupArray((start_time, run_id))), 1, 3)) AS example_run_ids,
    max(start_time) AS last_failed_at
FROM runs
WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
  AND ({environment:String} = '' OR environment = {environment:String})
  AND status = 'failed'
  AND start_time >= toDateTime64({since:Date}, 9, 'UTC')
  AND start_time < toDateTime64({until:Date} + 1, 9, 'UTC')
GROUP BY failure_reason, failed_step
ORDER BY runs DESC, failure_reason, failed_step;
