-- The summary rows of a comparison's two sides over bounded days: b (baseline) and c (candidate).
--   baseline:  days from baseline_since, before baseline_until, of baseline_version ('' = any);
--   candidate: days from candidate_since through candidate_until, of candidate_version ('' = any).
-- Two versions within one period: the same days on both sides. The period before against this
-- one: versions '' and adjoining days. environment '' takes every environment.
CREATE OR REPLACE VIEW comparison_window_sides AS
SELECT *,
       ({baseline_version:String} = '' OR workflow_version = {baseline_version:String})
           AND day >= {baseline_since:Date} AND day < {baseline_until:Date} AS b,
       ({candidate_version:String} = '' OR workflow_version = {candidate_version:String})
           AND day >= {candidate_since:Date} AND day <= {candidate_until:Date} AS c
FROM runs_daily_store FINAL
WHERE tenant_id = {tenant_id:String} AND workflow_name = {workflow:String}
  AND ({environment:String} = '' OR environment = {environment:String});
