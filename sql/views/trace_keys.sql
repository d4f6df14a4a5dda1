-- What joins the traces of an ingest window (since, until], ms, to runs (spec 4.3): per trace, its
-- own run id key and the trace its run span links to. The key is the first, in run-span order
-- (wrm_run_order), of wrm.run.id / cicd.pipeline.run.id (span_facts.run_id_attr), else of the
-- span attributes named in {run_keys} (setting run_id_attributes), else ''. The link is the
-- earliest link of a root or wrm.run=true span to another trace (trace_links), else ''.
CREATE OR REPLACE VIEW trace_keys AS
WITH window AS (
    SELECT DISTINCT tenant_id, trace_id FROM assembly_window(since = {since:Int64}, until = {until:Int64})
)
SELECT f.tenant_id AS tenant_id, f.trace_id AS trace_id, f.key_run_id AS key_run_id, l.linked AS link_trace_id,
       f.start_time AS start_time
FROM (
    SELECT tenant_id, trace_id,
           coalesce(nullIf(argMinIf(run_id_attr, k, run_id_attr != ''), ''), nullIf(argMinIf(cfg, k, cfg != ''), ''),
                    '') AS key_run_id,
           min(start_time) AS start_time
    FROM (
        SELECT tenant_id, trace_id, run_id_attr, start_time, wrm_run_order(run_rank, start_time, span_id) AS k,
               arrayFirst(v -> v != '', arrayMap(key -> attributes[key], {run_keys:Array(String)})) AS cfg
        FROM span_facts FINAL
        WHERE (tenant_id, trace_id) IN window
    )
    GROUP BY tenant_id, trace_id
) AS f
LEFT JOIN (
    SELECT tenant_id, trace_id, argMin(linked_trace_id, (start_time, span_id, link_index)) AS linked
    FROM trace_links FINAL
    WHERE (tenant_id, trace_id) IN window
    GROUP BY tenant_id, trace_id
) AS l ON l.tenant_id = f.tenant_id AND l.trace_id = f.trace_id;
