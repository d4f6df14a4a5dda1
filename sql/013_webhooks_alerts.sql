-- Lifecycle events, webhook subscriptions and their delivery log, alert rules and their states
-- (spec 8). Every table has tenant_id first in its sort key.

-- The durable outbox: one row per lifecycle event, written in the assembly cycle that derives
-- the transition (statements/emit_run_events.sql) or by the API (action.requested, webhook.test)
-- and the alert evaluator (alert.firing, alert.resolved). event_id is stable (a hash of what the
-- event is about: a trace and a span, an action, a rule's transition), so a re-assembly, a
-- re-delivered span or a restart finds the event already there and writes nothing. emitted_ms orders events across cycles (warehouse/outbox.py hands
-- out increasing stamps); occurred_at, then rank, orders the events of one run inside a cycle.
-- webhook_id is '' for an event every matching subscription receives, or the one subscription a
-- test event is for. trace_id is the trace a run or step event is about (the run's own trace, the
-- step's or marker's), '' for the others: a run's id can change as its spans arrive (a
-- wrm.run.id on the run span, parts joined), its traces do not. Sorted by it, for the emission's
-- check of what the cycle's traces already have; the projection by_emitted keeps a copy in
-- outbox order, which each webhook queue reads.
CREATE TABLE IF NOT EXISTS lifecycle_events
(
    tenant_id LowCardinality(String),
    trace_id String,
    event_id String,
    run_id String,
    type LowCardinality(String),
    step_id String,
    webhook_id String,
    workflow_name LowCardinality(String),
    environment LowCardinality(String),
    status LowCardinality(String),
    occurred_at DateTime64(9, 'UTC'),
    rank UInt8,
    emitted_ms Int64,
    data String CODEC(ZSTD(1)),
    INDEX idx_event event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    -- the dispatcher's reads: a tenant's events after a cursor, in outbox order
    PROJECTION by_emitted (SELECT * ORDER BY tenant_id, emitted_ms, occurred_at, rank, event_id)
)
ENGINE = MergeTree
ORDER BY (tenant_id, trace_id, event_id)
TTL toDateTime(intDiv(emitted_ms, 1000)) + INTERVAL 30 DAY;

-- Subscriptions: the newest row of a webhook id wins; a deleted one is an is_deleted row. The
-- signing secret is kept here (it must be usable to sign), which is why no tenant key reads this
-- table through the SQL port (analytics/sql/tenant_space.py INTERNAL). previous_secret signs too
-- until previous_until, after a rotation.
CREATE TABLE IF NOT EXISTS webhooks
(
    tenant_id LowCardinality(String),
    webhook_id String,
    url String,
    events Array(String),
    workflows Array(String),
    environments Array(String),
    statuses Array(String),
    description String,
    enabled UInt8,
    disabled_reason String,
    secret String,
    previous_secret String,
    previous_until DateTime64(3, 'UTC'),
    created_at DateTime64(3, 'UTC'),
    created_ms Int64,
    created_by String,
    updated_at DateTime64(6, 'UTC'),
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(updated_at, is_deleted)
ORDER BY (tenant_id, webhook_id);

-- Every delivery attempt of an event to a subscription, and the requests for one (a manual
-- retry writes outcome 'requested'). The latest attempt of (webhook, event) says where it
-- stands: delivered, retrying (next_at), failed, refused (a private address), disabled (410) or
-- requested.
CREATE TABLE IF NOT EXISTS webhook_attempts
(
    tenant_id LowCardinality(String),
    webhook_id String,
    event_id String,
    event_type LowCardinality(String),
    attempt UInt32,
    at DateTime64(6, 'UTC'),
    outcome LowCardinality(String),
    http_status UInt16,
    latency_ms Float64,
    error String,
    response_excerpt String,
    next_at Nullable(DateTime64(3, 'UTC'))
)
ENGINE = MergeTree
ORDER BY (tenant_id, webhook_id, event_id, attempt, at)
TTL toDateTime(at) + INTERVAL 30 DAY;

-- How far each subscription's queue has been taken (the last event handed to delivery, in
-- outbox order): a restart resumes after it and skips what webhook_attempts already holds.
CREATE TABLE IF NOT EXISTS webhook_cursors
(
    tenant_id LowCardinality(String),
    webhook_id String,
    emitted_ms Int64,
    occurred_ns Int64,
    rank UInt8,
    event_id String,
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant_id, webhook_id);

-- Alert rules over the runs of a scope (analytics/alerts): a metric of the runs that started in
-- the last window_s seconds, compared with threshold every interval_s seconds; the newest row of
-- a rule id wins, a deletion is an is_deleted row. recover_threshold NULL: the threshold.
-- wait_s: how long a run must have waited for a person to count (metric waiting_human; 0 else).
CREATE TABLE IF NOT EXISTS alert_rules
(
    tenant_id LowCardinality(String),
    rule_id String,
    name String,
    metric LowCardinality(String),
    comparison LowCardinality(String),
    threshold Float64,
    recover_threshold Nullable(Float64),
    window_s UInt32,
    wait_s UInt32,
    min_samples UInt32,
    interval_s UInt32,
    workflow String,
    version String,
    environment String,
    enabled UInt8,
    created_at DateTime64(3, 'UTC'),
    created_by String,
    updated_at DateTime64(6, 'UTC'),
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(updated_at, is_deleted)
ORDER BY (tenant_id, rule_id);

-- Every change of a rule's state: `firing` or `resolved`, numbered per rule from 1 (transition;
-- the same number stored twice is one row). The row with a rule's greatest transition is its
-- current state, so a restarted evaluator neither fires a firing rule again nor forgets one.
-- event_id is the outbox event the transition goes out as, written after this row under an id
-- derived from the rule and the number: a restart offers the newest transition's event again and
-- the outbox skips an id it holds, so a crash between the two writes neither loses nor repeats
-- it. value and samples are what the rule measured; threshold is the bound crossed (the recover
-- threshold for a resolution).
CREATE TABLE IF NOT EXISTS alert_history
(
    tenant_id LowCardinality(String),
    rule_id String,
    transition UInt32,
    at DateTime64(6, 'UTC'),
    state LowCardinality(String),
    value Nullable(Float64),
    samples UInt64,
    threshold Float64,
    event_id String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, rule_id, transition)
TTL toDateTime(at) + INTERVAL 400 DAY;
