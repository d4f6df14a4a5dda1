-- The runs cycle {stamp} rebuilds (assembly_parts), with or without parts left.
CREATE OR REPLACE VIEW cycle_runs AS
SELECT DISTINCT tenant_id, run_id FROM assembly_parts WHERE stamp = {stamp:Int64};
