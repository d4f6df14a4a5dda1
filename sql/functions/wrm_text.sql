-- An OTLP AnyValue as stored text (docs/conventions.md): scalars as text, bytes base64, arrays
-- and key-value lists as JSON through wrm_json_value.
CREATE OR REPLACE FUNCTION wrm_text AS (v) -> multiIf(
    isNotNull(tupleElement(v, 'string_value')), assumeNotNull(tupleElement(v, 'string_value')),
    isNotNull(tupleElement(v, 'int_value')), toString(assumeNotNull(tupleElement(v, 'int_value'))),
    isNotNull(tupleElement(v, 'bool_value')), if(assumeNotNull(tupleElement(v, 'bool_value')), 'true', 'false'),
    isNotNull(tupleElement(v, 'double_value')), toString(assumeNotNull(tupleElement(v, 'double_value'))),
    isNotNull(tupleElement(v, 'bytes_value')), base64Encode(assumeNotNull(tupleElement(v, 'bytes_value'))),
    notEmpty(tupleElement(tupleElement(v, 'array_value'), 'values')),
        concat('[', arrayStringConcat(arrayMap(x -> wrm_json_value(x), tupleElement(tupleElement(v, 'array_value'), 'values')), ','), ']'),
    notEmpty(tupleElement(tupleElement(v, 'kvlist_value'), 'values')),
        concat('{', arrayStringConcat(arrayMap(kv -> concat(toJSONString(tupleElement(kv, 'key')), ':', wrm_json_value(tupleElement(kv, 'value'))),
                                               tupleElement(tupleElement(v, 'kvlist_value'), 'values')), ','), '}'),
    '');
