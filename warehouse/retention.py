"""Retention tiers: how long each tier keeps a tenant's rows, and bringing stored rows in line.

Every tier table carries a per-row `retention_days` that its TTL reads, set when the row is
written from the policy in force. A policy change therefore only reaches new rows until
`apply_retention` rewrites `retention_days` on the existing ones (an `ALTER TABLE … UPDATE`
per tier and tenant group, which also recomputes the TTL of the parts it touches); rows then
past their retention go at the next merge, or at once with `purge=True`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from warehouse.client import Warehouse

TIERS = ("spans", "steps", "runs", "summaries")
# The tables of each tier. span_facts and trace_links are derived from spans and expire with them;
# trace_runs (which run each trace is part of) is kept as long as the runs.
TIER_TABLES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "spans": ("spans", "span_facts", "trace_links"),
        "steps": ("steps_store",),
        "runs": ("runs_store", "runs_by_time", "trace_runs"),
        "summaries": ("runs_daily_store",),
    }
)
DEFAULT_TENANT = "*"  # how the default is stored in retention_policies


@dataclass(frozen=True)
class TierDays:
    """Days one tier keeps rows: a default, and overrides by tenant id."""

    default: int
    by_tenant: Mapping[str, int] = field(default_factory=dict)

    def days(self, tenant: str) -> int:
        return self.by_tenant.get(tenant, self.default)

    def params(self, prefix: str) -> dict[str, Any]:
        """Bound parameters for SQL's `transform(tenant_id, {p_tenants}, {p_days}, {p_default})`."""
        tenants = sorted(self.by_tenant)
        return {
            f"{prefix}_tenants": tenants,
            f"{prefix}_days": [self.by_tenant[t] for t in tenants],
            f"{prefix}_default": self.default,
        }


class PolicyRow(NamedTuple):
    """One tenant's days per tier, as `retention_policies` stores it (DEFAULT_TENANT for the
    default). A tuple, so a stored policy and the settings' compare with `==`."""

    tenant: str
    spans_days: int
    steps_days: int
    runs_days: int
    summaries_days: int


@dataclass(frozen=True)
class RetentionPolicy:
    spans: TierDays
    steps: TierDays
    runs: TierDays
    summaries: TierDays

    def tier(self, name: str) -> TierDays:
        if name not in TIERS:
            raise ValueError(f"unknown retention tier {name!r}; tiers are {', '.join(TIERS)}")
        tier: TierDays = getattr(self, name)
        return tier

    def tenants(self) -> list[str]:
        return sorted({t for name in TIERS for t in self.tier(name).by_tenant})

    def rows(self) -> list[PolicyRow]:
        """Days per tier by tenant: the default first, then each tenant with an override."""
        default = PolicyRow(
            DEFAULT_TENANT, self.spans.default, self.steps.default, self.runs.default, self.summaries.default
        )
        return [default] + [
            PolicyRow(
                tenant,
                self.spans.days(tenant),
                self.steps.days(tenant),
                self.runs.days(tenant),
                self.summaries.days(tenant),
            )
            for tenant in self.tenants()
        ]


@dataclass(frozen=True)
class RetentionChange:
    """Rows of one table and tenant group whose retention_days was rewritten."""

    table: str
    tenants: str  # a tenant id, or "others" for everyone without an override
    days: int
    rows: int


def stored_policy_rows(wh: Warehouse) -> list[PolicyRow]:
    """The policy recorded by the last `store_policy`, in `RetentionPolicy.rows()` form."""
    rows = wh.rows(
        "SELECT tenant_id, spans_days, steps_days, runs_days, summaries_days "
        "FROM retention_policies FINAL ORDER BY tenant_id = '*' DESC, tenant_id"
    )
    return [PolicyRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]


def store_policy(wh: Warehouse, policy: RetentionPolicy) -> None:
    """Record the policy as applied. Call it after `apply_retention`, so a failure in between
    leaves the old record and the next start-up applies again."""
    before = {r.tenant for r in stored_policy_rows(wh)}
    now = policy.rows()
    gone = before - {r.tenant for r in now}
    rows = [[*r, 0] for r in now] + [[t, 0, 0, 0, 0, 1] for t in sorted(gone)]
    wh.insert_columns(
        "retention_policies",
        ["tenant_id", "spans_days", "steps_days", "runs_days", "summaries_days", "is_deleted"],
        [list(col) for col in zip(*rows, strict=True)],
    )


def apply_retention(
    wh: Warehouse, policy: RetentionPolicy, *, wait: bool = True, purge: bool = False
) -> list[RetentionChange]:
    """Set `retention_days` on stored rows to what the policy says for their tenant.

    `wait` makes each update finish before returning (otherwise the engine runs them in the
    background); `purge` then merges each changed table so expired rows are gone at once.
    """
    changes: list[RetentionChange] = []
    sync = {"mutations_sync": 2 if wait else 0}
    for name in TIERS:
        tier = policy.tier(name)
        overridden = sorted(tier.by_tenant)
        groups: list[tuple[str, int, str, dict[str, Any]]] = [
            (t, d, "tenant_id = {t:String}", {"t": t}) for t, d in sorted(tier.by_tenant.items())
        ]
        groups.append(("others", tier.default, "tenant_id NOT IN {ts:Array(String)}", {"ts": overridden}))
        for table in TIER_TABLES[name]:
            touched = False
            for label, days, where, params in groups:
                cond = f"{where} AND retention_days != {{days:UInt16}}"
                bound = {**params, "days": days}
                count = int(wh.rows(f"SELECT count() FROM {table} WHERE {cond}", bound)[0][0])
                if count == 0:
                    continue
                wh.command(
                    f"ALTER TABLE {table} UPDATE retention_days = {{days:UInt16}} WHERE {cond} "
                    f"SETTINGS mutations_sync = {sync['mutations_sync']}",
                    bound,
                )
                changes.append(RetentionChange(table, label, days, count))
                touched = True
            if touched and purge:
                wh.command(f"OPTIMIZE TABLE {table} FINAL")
    return changes
