-- OTLP requests decoded by the engine: the receiver validates each request in Python (ids,
-- times, tenant) but leaves attribute decoding to ClickHouse, which reads the exporter's
-- protobuf bytes (format Protobuf, schema sql/schemas/otlp_envelope.proto) into otlp_landing.
-- That table stores nothing (engine Null); the view below turns each request into span rows.
-- Doing this in the engine keeps the per-span Python work to a few field reads. The functions
-- the view uses (wrm_map, wrm_text, wrm_json_value, wrm_cut, wrm_cut_map, wrm_long_keys) live in
-- sql/functions/ and are applied before any migration.

-- The column types mirror sql/schemas/otlp_envelope.proto, which is their source: the AnyValue
-- tuple appears five times (resource, scope, span, event and link attributes) because ClickHouse
-- DDL has no type aliases. The five copies must stay identical.
CREATE TABLE IF NOT EXISTS otlp_landing
(
    request Tuple(resource_spans Array(Tuple(
        resource Tuple(
            attributes Array(Tuple(key String, value Tuple(
                string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                double_value Nullable(Float64),
                array_value Tuple(values Array(Tuple(
                    string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                    double_value Nullable(Float64), array_value Nullable(String), kvlist_value Nullable(String),
                    bytes_value Nullable(String)))),
                kvlist_value Tuple(values Array(Tuple(key String, value Tuple(
                    string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                    double_value Nullable(Float64), array_value Nullable(String), kvlist_value Nullable(String),
                    bytes_value Nullable(String))))),
                bytes_value Nullable(String)))),
            dropped_attributes_count UInt32),
        scope_spans Array(Tuple(
            scope Tuple(name String, version String,
                attributes Array(Tuple(key String, value Tuple(
                    string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                    double_value Nullable(Float64),
                    array_value Tuple(values Array(Tuple(
                        string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                        double_value Nullable(Float64), array_value Nullable(String), kvlist_value Nullable(String),
                        bytes_value Nullable(String)))),
                    kvlist_value Tuple(values Array(Tuple(key String, value Tuple(
                        string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                        double_value Nullable(Float64), array_value Nullable(String), kvlist_value Nullable(String),
                        bytes_value Nullable(String))))),
                    bytes_value Nullable(String)))),
                dropped_attributes_count UInt32),
            spans Array(Tuple(
                trace_id String, span_id String, trace_state String, parent_span_id String, flags UInt32,
                name String, kind Int32, start_time_unix_nano UInt64, end_time_unix_nano UInt64,
                attributes Array(Tuple(key String, value Tuple(
                    string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                    double_value Nullable(Float64),
                    array_value Tuple(values Array(Tuple(
                        string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                        double_value Nullable(Float64), array_value Nullable(String), kvlist_value Nullable(String),
                        bytes_value Nullable(String)))),
                    kvlist_value Tuple(values Array(Tuple(key String, value Tuple(
                        string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                        double_value Nullable(Float64), array_value Nullable(String), kvlist_value Nullable(String),
                        bytes_value Nullable(String))))),
                    bytes_value Nullable(String)))),
                dropped_attributes_count UInt32,
                events Array(Tuple(time_unix_nano UInt64, name String,
                    attributes Array(Tuple(key String, value Tuple(
                        string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                        double_value Nullable(Float64),
                        array_value Tuple(values Array(Tuple(
                            string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                            double_value Nullable(Float64), array_value Nullable(String),
                            kvlist_value Nullable(String), bytes_value Nullable(String)))),
                        kvlist_value Tuple(values Array(Tuple(key String, value Tuple(
                            string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                            double_value Nullable(Float64), array_value Nullable(String),
                            kvlist_value Nullable(String), bytes_value Nullable(String))))),
                        bytes_value Nullable(String)))),
                    dropped_attributes_count UInt32)),
                dropped_events_count UInt32,
                links Array(Tuple(trace_id String, span_id String, trace_state String,
                    attributes Array(Tuple(key String, value Tuple(
                        string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                        double_value Nullable(Float64),
                        array_value Tuple(values Array(Tuple(
                            string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                            double_value Nullable(Float64), array_value Nullable(String),
                            kvlist_value Nullable(String), bytes_value Nullable(String)))),
                        kvlist_value Tuple(values Array(Tuple(key String, value Tuple(
                            string_value Nullable(String), bool_value Nullable(Bool), int_value Nullable(Int64),
                            double_value Nullable(Float64), array_value Nullable(String),
                            kvlist_value Nullable(String), bytes_value Nullable(String))))),
                        bytes_value Nullable(String)))),
                    dropped_attributes_count UInt32, flags UInt32)),
                dropped_links_count UInt32,
                status Tuple(message String, code Int32))),
            schema_url String)),
        schema_url String))),
    ingested_at_ms Int64,
    retention_days UInt16,
    default_tenant String,
    max_attribute_bytes UInt32
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS spans_from_otlp_mv TO spans AS
WITH
    max_attribute_bytes AS lim,
    wrm_map(rs.resource.attributes) AS r_attrs,
    wrm_map(ss.scope.attributes) AS sc_attrs,
    wrm_map(s.attributes) AS sp_attrs,
    arrayMap(e -> wrm_map(e.attributes), s.events) AS ev_attrs,
    arrayMap(l -> wrm_map(l.attributes), s.links) AS ln_attrs
SELECT
    if(r_attrs['wrm.tenant.id'] != '', r_attrs['wrm.tenant.id'], default_tenant) AS tenant_id,
    r_attrs['service.name'] AS service_name,
    lower(hex(s.trace_id)) AS trace_id,
    lower(hex(s.span_id)) AS span_id,
    lower(hex(s.parent_span_id)) AS parent_span_id,
    s.trace_state AS trace_state,
    s.flags AS flags,
    s.name AS name,
    transform(s.kind, [0, 1, 2, 3, 4, 5], ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'],
              toString(s.kind)) AS kind,
    fromUnixTimestamp64Nano(toInt64(s.start_time_unix_nano), 'UTC') AS start_time,
    fromUnixTimestamp64Nano(toInt64(s.end_time_unix_nano), 'UTC') AS end_time,
    s.end_time_unix_nano - s.start_time_unix_nano AS duration_ns,
    transform(s.status.code, [0, 1, 2], ['UNSET', 'OK', 'ERROR'], toString(s.status.code)) AS status_code,
    s.status.message AS status_message,
    wrm_cut_map(r_attrs, lim) AS resource_attributes,
    rs.schema_url AS resource_schema_url,
    rs.resource.dropped_attributes_count AS resource_dropped_attributes_count,
    ss.scope.name AS scope_name,
    ss.scope.version AS scope_version,
    wrm_cut_map(sc_attrs, lim) AS scope_attributes,
    ss.schema_url AS scope_schema_url,
    ss.scope.dropped_attributes_count AS scope_dropped_attributes_count,
    wrm_cut_map(sp_attrs, lim) AS attributes,
    s.dropped_attributes_count AS dropped_attributes_count,
    arrayMap(e -> fromUnixTimestamp64Nano(toInt64(e.time_unix_nano), 'UTC'), s.events) AS `events.time`,
    arrayMap(e -> e.name, s.events) AS `events.name`,
    arrayMap(m -> wrm_cut_map(m, lim), ev_attrs) AS `events.attributes`,
    arrayMap(e -> e.dropped_attributes_count, s.events) AS `events.dropped_attributes_count`,
    s.dropped_events_count AS dropped_events_count,
    arrayMap(l -> lower(hex(l.trace_id)), s.links) AS `links.trace_id`,
    arrayMap(l -> lower(hex(l.span_id)), s.links) AS `links.span_id`,
    arrayMap(l -> l.trace_state, s.links) AS `links.trace_state`,
    arrayMap(l -> l.flags, s.links) AS `links.flags`,
    arrayMap(m -> wrm_cut_map(m, lim), ln_attrs) AS `links.attributes`,
    arrayMap(l -> l.dropped_attributes_count, s.links) AS `links.dropped_attributes_count`,
    s.dropped_links_count AS dropped_links_count,
    arrayConcat(
        wrm_long_keys(r_attrs, lim, 'resource'),
        wrm_long_keys(sc_attrs, lim, 'scope'),
        wrm_long_keys(sp_attrs, lim, 'span'),
        arrayFlatten(arrayMap((m, i) -> wrm_long_keys(m, lim, concat('event[', toString(i - 1), ']')),
                              ev_attrs, arrayEnumerate(ev_attrs))),
        arrayFlatten(arrayMap((m, i) -> wrm_long_keys(m, lim, concat('link[', toString(i - 1), ']')),
                              ln_attrs, arrayEnumerate(ln_attrs)))) AS truncated,
    retention_days,
    fromUnixTimestamp64Milli(ingested_at_ms, 'UTC') AS ingested_at
FROM otlp_landing
ARRAY JOIN request.resource_spans AS rs
ARRAY JOIN rs.scope_spans AS ss
ARRAY JOIN ss.spans AS s;
