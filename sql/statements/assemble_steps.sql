-- Rebuild the steps of the runs of cycle {stamp} (assemble_steps), each row kept for its tenant's
-- step retention (steps_*).
INSERT INTO steps_store (* EXCEPT (retention_days), retention_days)
SELECT *, wrm_tenant_days(tenant_id, {steps_tenants:Array(String)}, {steps_days:Array(UInt16)}, {steps_default:UInt16})
FROM assemble_steps(stamp = {stamp:Int64})
