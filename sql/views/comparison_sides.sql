-- The summary rows of a comparison's two sides: b (baseline) and c (candidate). Two ways to
-- pick them:
--   versions: baseline_version, candidate_version (leave the dates at '1970-01-01'/'2149-06-06');
--   windows:  days before baseline_until against days from candidate_since (versions '').
-- environment '' takes every environment.
CREATE OR REPLACE VIEW comparison_sides AS
SELECT *,
       ({baseline_version:String} = '' OR workflow_version = {baseline_version:String})
           AND day < {baseline_until:Date} AS b,
       ({candidate_version:String} = '' OR workflow_version = {candidate_version:String})
           AND day >= {candidate_since:Date} AS c
FROM runs_daily_store FINAL
WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
  AND ({environment:String} = '' OR environment = {environment:String});
