-- Collect, for cycle {stamp}, the runs to rebuild (queued_runs: queued in (since, until], ms, not
-- frozen), each as an assembly_parts row with trace_id ''. collect_parts.sql adds their traces.
INSERT INTO assembly_parts
SELECT {stamp:Int64}, tenant_id, run_id, '' FROM queued_runs(since = {since:Int64}, until = {until:Int64},
    spans_tenants = {spans_tenants:Array(String)}, spans_days = {spans_days:Array(UInt16)},
    spans_default = {spans_default:UInt16})
