-- Retries by step of one workflow's runs that started on the UTC days [since, until]: per step
-- name, the runs that ran it, its attempts, the attempts after the first (retries, counted as
-- runs.retries counts them) and the failed attempts. Reads the steps and runs tiers (kept
-- steps_ttl_days and runs_ttl_days).
CREATE OR REPLACE VIEW step_retries AS
SELECT
    name AS step,
    uniqExact(run_id) AS runs,
    count() AS attempts,
    countIf(attempt > 1) AS retries,
    countIf(status = 'failed') AS failed_attempts
FROM steps
WHERE tenant_id = {tenant_id:String}
  AND run_id IN (
      SELECT run_id FROM runs
      WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
        AND ({environment:String} = '' OR environment = {environment:String})
        AND start_time >= toDateTime64({since:Date}, 9, 'UTC')
        AND start_time < toDateTime64({until:Date} + 1, 9, 'UTC'))
GROUP BY name
ORDER BY retries DESC, failed_attempts DESC, step;
