-- Baseline against candidate, sides as in comparison_sides (unbounded at the far ends), one row
-- per indicator: window_comparison with the baseline open to the past and the candidate to the
-- future. Kept with its parameters for the queries written against it.
CREATE OR REPLACE VIEW version_comparison AS
SELECT *
FROM window_comparison(tenant_id = {tenant_id:String}, workflow = {workflow:String},
                       environment = {environment:String}, baseline_version = {baseline_version:String},
                       candidate_version = {candidate_version:String},
                       baseline_since = '1970-01-01', baseline_until = {baseline_until:Date},
                       candidate_since = {candidate_since:Date}, candidate_until = '2149-06-06');
