-- A tenant's retention in days for one tier: the retention settings reach SQL as parallel arrays
-- (tenant ids, their days) and the default days, all bound parameters (warehouse.retention.TierDays).
CREATE OR REPLACE FUNCTION wrm_tenant_days AS (tenant_id, tenants, days, default_days) ->
    toUInt16(transform(toString(tenant_id), tenants, days, default_days));
