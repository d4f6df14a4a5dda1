-- Scheduled indicator reports (issue 16): one row per run of a `[[reports]]` entry, ready or
-- failed. report_id is a hash of the tenant, the schedule's name and the fire time it ran for, so
-- a fire is recorded once however often it is written (ReplacingMergeTree keeps the newest). The
-- files are listed by format with their path relative to the `reports_dir` setting (never an
-- absolute one: the API resolves it under reports_dir and refuses anything outside), their size
-- and SHA-256. No tenant key reads this table through the SQL port (tenant_space INTERNAL): the
-- paths are the server's business; /v1/reports shows the rest.
CREATE TABLE IF NOT EXISTS reports
(
    tenant_id LowCardinality(String),
    report_id String,
    name String,
    workflow String,
    environment String,
    since Date,
    until Date,
    compare String,
    scheduled_for DateTime64(3, 'UTC'),
    created_at DateTime64(6, 'UTC'),
    status LowCardinality(String),
    error String,
    file_formats Array(String),
    file_paths Array(String),
    file_bytes Array(UInt64),
    file_sha256 Array(String)
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tenant_id, report_id);
