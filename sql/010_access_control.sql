-- Access control (spec 9): API keys, when each was last used, and the audit trail.
--
-- api_keys: one row per key state; a revocation writes the key's row again with a greater
-- `version`, so `FINAL` (or argMax by version) reads the current state. Only the SHA-256 digest
-- of a key is stored; the key itself is shown once, at creation.
CREATE TABLE IF NOT EXISTS api_keys
(
    key_id String,
    tenant_id String,
    role LowCardinality(String),
    name String,
    key_digest String,
    created_at DateTime64(3, 'UTC'),
    created_by String,
    revoked_at Nullable(DateTime64(3, 'UTC')),
    revoked_by String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY key_id;

-- Last use per key, written at most once a minute per key and process (never on the request path).
CREATE TABLE IF NOT EXISTS api_key_uses
(
    key_id String,
    last_used_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(last_used_at)
ORDER BY key_id;

-- Who did what: actions, annotations, tags and key changes, with the key that did it. Kept until
-- deleted: an audit trail that expires is not one.
CREATE TABLE IF NOT EXISTS audit_log
(
    tenant_id LowCardinality(String),
    at DateTime64(6, 'UTC'),
    event_id String,
    actor_key_id String,
    actor_name String,
    action LowCardinality(String),
    target String,
    detail String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, at, event_id);
