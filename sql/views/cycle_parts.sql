-- The parts (tenant, trace, run) of the runs cycle {stamp} rebuilds (assembly_parts).
CREATE OR REPLACE VIEW cycle_parts AS
SELECT tenant_id, trace_id, run_id FROM assembly_parts WHERE stamp = {stamp:Int64} AND trace_id != '';
