-- Raw tier: every OTLP span as received, one row per (tenant, span).
--
-- Sort key (tenant_id, service_name, start_time): every read is scoped to one tenant, and the
-- second common read, "spans of one service in a time range", is a contiguous range of the
-- primary index. Partitioning by day keeps parts small and lets a day be dropped cheaply; TTL
-- deletes rows by merge because retention_days differs between tenants within one day.
--
-- "All spans of one trace" cannot also be a prefix of the sort key, so two structures serve it:
--   * idx_trace_id, a bloom filter over trace_id, lets a scan skip granules without the trace;
--   * span_facts (002), sorted by (tenant_id, trace_id), gives a trace's time bounds with a
--     primary-key lookup, so a trace read can then scan only the partitions of those days.
-- Attribute maps hold every value as a string: strings as is, bools/ints/doubles in their
-- canonical text, bytes as base64, arrays and key-value lists as JSON (docs/conventions.md).
-- retention_days is read per row by the TTL expression, so a tenant's retention can differ.
-- ReplacingMergeTree with trace_id, span_id closing the sort key: a span delivered twice (an
-- exporter retrying after a lost acknowledgement) collapses to one row when parts merge; read
-- with FINAL where an exact count matters before that.
CREATE TABLE IF NOT EXISTS spans
(
    tenant_id LowCardinality(String),
    service_name LowCardinality(String),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    trace_state String CODEC(ZSTD(1)),
    flags UInt32,
    name LowCardinality(String),
    kind LowCardinality(String),
    start_time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    end_time DateTime64(9, 'UTC') CODEC(Delta, ZSTD(1)),
    duration_ns UInt64,
    status_code LowCardinality(String),
    status_message String CODEC(ZSTD(1)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    resource_schema_url LowCardinality(String),
    resource_dropped_attributes_count UInt32,
    scope_name LowCardinality(String),
    scope_version LowCardinality(String),
    scope_attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    scope_schema_url LowCardinality(String),
    scope_dropped_attributes_count UInt32,
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    dropped_attributes_count UInt32,
    `events.time` Array(DateTime64(9, 'UTC')) CODEC(ZSTD(1)),
    `events.name` Array(LowCardinality(String)) CODEC(ZSTD(1)),
    `events.attributes` Array(Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    `events.dropped_attributes_count` Array(UInt32),
    dropped_events_count UInt32,
    `links.trace_id` Array(String) CODEC(ZSTD(1)),
    `links.span_id` Array(String) CODEC(ZSTD(1)),
    `links.trace_state` Array(String) CODEC(ZSTD(1)),
    `links.flags` Array(UInt32),
    `links.attributes` Array(Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    `links.dropped_attributes_count` Array(UInt32),
    dropped_links_count UInt32,
    -- keys whose values were cut to the attribute size limit, as "span:KEY", "resource:KEY",
    -- "scope:KEY", "event[N]:KEY" or "link[N]:KEY"; the cut value ends with a marker too
    truncated Array(String),
    retention_days UInt16 DEFAULT 30,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_span_name name TYPE set(1000) GRANULARITY 4,
    INDEX idx_duration duration_ns TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(start_time)
ORDER BY (tenant_id, service_name, start_time, trace_id, span_id)
TTL toDateTime(start_time) + toIntervalDay(retention_days)
SETTINGS index_granularity = 8192;
