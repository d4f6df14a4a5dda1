-- Whether a run that started at `start_time` is frozen (spec 6.1): more than its tenant's span
-- retention ago, less an hour, so its first spans may already be expiring and it must not be
-- rebuilt from what is left. The spans_* arguments are the span tier's retention (wrm_tenant_days).
CREATE OR REPLACE FUNCTION wrm_frozen AS (tenant_id, start_time, spans_tenants, spans_days, spans_default) ->
    start_time < now64(9) - toIntervalDay(wrm_tenant_days(tenant_id, spans_tenants, spans_days, spans_default))
                 + INTERVAL 1 HOUR;
