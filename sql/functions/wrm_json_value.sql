-- Attribute values as stored text: strings as sent, ints and doubles in decimal, bools
-- true/false, bytes base64, arrays and key-value lists JSON. Values nested deeper than one
-- array or list arrive as raw protobuf and are kept losslessly as "pb64:" + base64.
CREATE OR REPLACE FUNCTION wrm_json_value AS (v) -> multiIf(
    isNotNull(tupleElement(v, 'string_value')), toJSONString(assumeNotNull(tupleElement(v, 'string_value'))),
    isNotNull(tupleElement(v, 'int_value')), toString(assumeNotNull(tupleElement(v, 'int_value'))),
    isNotNull(tupleElement(v, 'bool_value')), if(assumeNotNull(tupleElement(v, 'bool_value')), 'true', 'false'),
    isNotNull(tupleElement(v, 'double_value')), if(isFinite(assumeNotNull(tupleElement(v, 'double_value'))), toString(assumeNotNull(tupleElement(v, 'double_value'))),
                                  toJSONString(toString(assumeNotNull(tupleElement(v, 'double_value'))))),
    isNotNull(tupleElement(v, 'bytes_value')), toJSONString(base64Encode(assumeNotNull(tupleElement(v, 'bytes_value')))),
    isNotNull(tupleElement(v, 'array_value')), toJSONString(concat('pb64:', base64Encode(assumeNotNull(tupleElement(v, 'array_value'))))),
    isNotNull(tupleElement(v, 'kvlist_value')), toJSONString(concat('pb64:', base64Encode(assumeNotNull(tupleElement(v, 'kvlist_value'))))),
    'null');
