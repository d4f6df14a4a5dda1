"""At `wrm serve` start-up, the redaction policies in the settings that differ from the ones last
recorded go to the audit trail (action `redaction.policy`, actor `settings`), so a change made by
editing the settings is on record like one made through the API: the global policy under tenant
'' and target `global` (the platform admin sees it), each tenant's under its tenant."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from access import audit as audit_log
from analytics.api.redaction_api import POLICY_ACTION, policy_json
from redaction.policy import Policy
from warehouse import Warehouse

SETTINGS_ACTOR = audit_log.Actor("", "settings")
GLOBAL_TARGET = "global"


def record_settings_changes(
    wh: Warehouse, global_policy: Policy, tenant_policies: Mapping[str, Policy]
) -> int:
    """Append an entry for each settings policy that changed since the last one recorded (a
    tenant's removed from the settings too); how many were appended. Nothing recorded yet counts
    as the built-in defaults for the global policy and as none for a tenant."""
    rows = wh.rows(
        "SELECT tenant_id, target, argMax(detail, (at, event_id)) FROM audit_log "
        "WHERE action = {a:String} AND actor_key_id = '' AND actor_name = {n:String} "
        "GROUP BY tenant_id, target",
        {"a": POLICY_ACTION, "n": SETTINGS_ACTOR.name},
    )
    last: dict[tuple[str, str], Any] = {
        (t, target): json.loads(d or "{}").get("after") for t, target, d in rows
    }
    now: dict[tuple[str, str], Any] = {("", GLOBAL_TARGET): policy_json(global_policy)}
    now.update({(t, t): policy_json(p) for t, p in tenant_policies.items()})
    now.update({place: None for place in last if place not in now})
    written = 0
    for (tenant, target), after in sorted(now.items()):
        before = last.get((tenant, target), {} if target == GLOBAL_TARGET and not tenant else None)
        if before == after:
            continue
        audit_log.record(
            wh, tenant, SETTINGS_ACTOR, POLICY_ACTION, target, source="settings", before=before, after=after
        )
        written += 1
    return written
