-- Redaction (spec 10): tenants' policies set through the API, and the key that `hash` actions use.
--
-- redaction_policies: one row per change; the greatest `version` of a tenant is its policy. An
-- empty `policy` means the tenant's API policy was removed (its settings policy applies again).
-- Who changed it, when, and the policy before and after are in audit_log too.
CREATE TABLE IF NOT EXISTS redaction_policies
(
    tenant_id String,
    policy String,
    changed_at DateTime64(3, 'UTC'),
    changed_by String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY tenant_id;

-- The secret that keys each tenant's HMAC when the `redaction_secret` setting is not given: made
-- by the first process that needs it. Two that start together each write one and both then use
-- the oldest, so every process hashes alike.
CREATE TABLE IF NOT EXISTS redaction_secrets
(
    secret String,
    created_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY created_at;
