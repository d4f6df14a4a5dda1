-- A key-value list as a map of text values, before any cut.
CREATE OR REPLACE FUNCTION wrm_map AS (kvs) ->
    mapFromArrays(arrayMap(kv -> tupleElement(kv, 'key'), kvs), arrayMap(kv -> wrm_text(tupleElement(kv, 'value')), kvs));
