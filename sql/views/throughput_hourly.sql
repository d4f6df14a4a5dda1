-- Runs per hour, from each summary day's runs_by_hour.
CREATE OR REPLACE VIEW throughput_hourly AS
SELECT
    tenant_id, workflow_name, workflow_version, environment,
    toDateTime(day, 'UTC') + toIntervalHour(h - 1) AS hour,
    sum(n) AS runs
FROM runs_daily_store FINAL
ARRAY JOIN runs_by_hour AS n, arrayEnumerate(runs_by_hour) AS h
GROUP BY tenant_id, workflow_name, workflow_version, environment, hour;
