-- Ingest authentication (spec 9): a span sent with a tenant's API key is that tenant's, whatever
-- its resource's wrm.tenant.id claims. The receiver puts the key's tenant in each envelope
-- (sql/schemas/otlp_envelope.proto, field 6 key_tenant; empty when no key fixes the tenant: auth
-- off and no key, or the platform admin's key), and the view reads it first.
--
-- The view's query is replaced in place (MODIFY QUERY) rather than dropped and created again, so
-- no insert into otlp_landing, from another process on a shared ClickHouse server, meets a
-- moment without the view (a Null table would drop its rows, acknowledged). Both statements can
-- be run again: the column is added only when missing, and the query is set to the same text.
-- The query is 004's with only tenant_id changed.
ALTER TABLE otlp_landing ADD COLUMN IF NOT EXISTS key_tenant String;

ALTER TABLE spans_from_otlp_mv MODIFY QUERY
WITH
    max_attribute_bytes AS lim,
    wrm_map(rs.resource.attributes) AS r_attrs,
    wrm_map(ss.scope.attributes) AS sc_attrs,
    wrm_map(s.attributes) AS sp_attrs,
    arrayMap(e -> wrm_map(e.attributes), s.events) AS ev_attrs,
    arrayMap(l -> wrm_map(l.attributes), s.links) AS ln_attrs
SELECT
    if(key_tenant != '', key_tenant, if(r_attrs['wrm.tenant.id'] != '', r_attrs['wrm.tenant.id'], default_tenant))
        AS tenant_id,
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
