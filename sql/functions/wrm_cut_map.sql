-- wrm_cut on every value of a map.
CREATE OR REPLACE FUNCTION wrm_cut_map AS (m, lim) -> mapApply((k, v) -> (k, wrm_cut(v, lim)), m);
