-- Keys of a map whose values are over the limit, as "WHERE:KEY".
CREATE OR REPLACE FUNCTION wrm_long_keys AS (m, lim, where_) ->
    arrayMap(k -> concat(where_, ':', k), mapKeys(mapFilter((k, v) -> length(v) > lim, m)));
