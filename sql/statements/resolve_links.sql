-- One hop of link following (relinked_traces): each trace whose linked trace's run changed takes
-- that run, at version {resolved}. The assembler repeats it until nothing changes (a chain of N
-- resumed parts takes N hops).
INSERT INTO trace_runs
SELECT tenant_id, trace_id, key_run_id, link_trace_id, run_id, start_time, retention_days, {resolved:UInt64}
FROM relinked_traces(from = {from:UInt64})
