-- Runs per day and per hour of the day.
CREATE OR REPLACE VIEW throughput AS
SELECT
    tenant_id, workflow_name, workflow_version, environment, day,
    sum(runs) AS runs,
    runs / 24 AS runs_per_hour,
    arrayMax(sumForEach(runs_by_hour)) AS peak_hour_runs,
    arrayCount(n -> n > 0, sumForEach(runs_by_hour)) AS active_hours
FROM runs_daily_store FINAL
GROUP BY tenant_id, workflow_name, workflow_version, environment, day;
