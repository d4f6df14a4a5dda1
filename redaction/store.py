"""Where tenants' API-set policies and the hashing secret live (sql/012_redaction.sql)."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redaction.policy import Policy
from warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPolicy:
    """A tenant's policy as last set through the API; `policy` None: removed."""

    tenant: str
    policy: Policy | None
    changed_at: datetime
    changed_by: str


def load_policies(wh: Warehouse) -> tuple[dict[str, StoredPolicy], dict[str, str]]:
    """Every tenant's latest API-set policy (removed ones as None), and the tenants whose stored
    policy no longer reads as a policy (a row written by another version), with why."""
    rows = wh.rows(
        "SELECT tenant_id, argMax(policy, version), argMax(changed_at, version), argMax(changed_by, version) "
        "FROM redaction_policies GROUP BY tenant_id"
    )
    found: dict[str, StoredPolicy] = {}
    broken: dict[str, str] = {}
    for tenant, text, at, by in rows:
        try:
            found[tenant] = StoredPolicy(tenant, Policy.model_validate_json(text) if text else None, at, by)
        except ValueError as exc:  # the reason goes to the log only: it may quote the stored text
            log.error("tenant %r's stored redaction policy is not valid: %s", tenant, exc)
            broken[tenant] = "the stored policy is not valid (see the server log); set or remove it"
    return found, broken


def save_policy(wh: Warehouse, tenant: str, policy: Policy | None, changed_by: str) -> StoredPolicy:
    """Set (or, with None, remove) a tenant's API policy; it applies to spans received after."""
    now = datetime.now(UTC)
    text = policy.model_dump_json(exclude_defaults=True) if policy is not None else ""
    wh.insert_columns(
        "redaction_policies",
        ["tenant_id", "policy", "changed_at", "changed_by", "version"],
        [[tenant], [text], [now], [changed_by], [time.time_ns() // 1000]],
    )
    return StoredPolicy(tenant, policy, now, changed_by)


def hashing_secret(wh: Warehouse) -> bytes:
    """The warehouse's hashing secret, made on first use (see sql/012 for two processes at once)."""
    rows = wh.rows("SELECT secret FROM redaction_secrets ORDER BY created_at, secret LIMIT 1")
    if not rows:
        wh.insert_columns(
            "redaction_secrets", ["secret", "created_at"], [[secrets.token_hex(32)], [datetime.now(UTC)]]
        )
        rows = wh.rows("SELECT secret FROM redaction_secrets ORDER BY created_at, secret LIMIT 1")
    return bytes.fromhex(rows[0][0])
