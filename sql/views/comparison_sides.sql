-- The summary rows of a comparison's two sides: b (baseline) and c (candidate). Two ways to
-- pick them:
--   versions: baseline_version, candidate_version (leave the dates at '1970-01-01'/'2149-06-06');
--   windows:  days before baseline_until against days from candidate_since (versions '').
-- environment '' takes every environment. comparison_window_sides bounds both far ends too.
CREATE OR REPLACE VIEW comparison_sides AS
SELECT *
FROM comparison_window_sides(tenant_id = {tenant_id:String}, workflow = {workflow:String},
                             environment = {environment:String}, baseline_version = {baseline_version:String},
                             candidate_version = {candidate_version:String},
                             baseline_since = '1970-01-01', baseline_until = {baseline_until:Date},
                             candidate_since = {candidate_since:Date}, candidate_until = '2149-06-06');
