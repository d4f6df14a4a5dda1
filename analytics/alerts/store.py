"""Alert rules and their transitions in the warehouse (tables alert_rules and alert_history,
sql/013). A rule's newest row wins and a deletion is an is_deleted row; a rule's transition with
the greatest number is its current state. Every read and write of the API names the caller's
tenant; the evaluator reads every tenant's enabled rules."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from analytics.alerts.rules import FIELDS, Rule
from analytics.alerts.states import Transition
from analytics.runs.errors import StateConflict, UnknownItem
from warehouse import Warehouse

MAX_PER_TENANT = 200
_RULE_COLUMNS = (*FIELDS, "tenant_id", "rule_id", "created_at", "created_by", "updated_at", "is_deleted")
_HISTORY_COLUMNS = (
    "tenant_id", "rule_id", "transition", "at", "state", "value", "samples", "threshold", "event_id",
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One transition of a rule, as alert_history keeps it."""

    tenant_id: str
    rule_id: str
    transition: int  # 1, 2, … per rule
    at: datetime
    state: Transition
    value: float | None
    samples: int
    threshold: float  # the bound crossed: the threshold to fire, the recover threshold to resolve
    event_id: str


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _rule(r: tuple[Any, ...]) -> Rule:
    v = dict(zip(_RULE_COLUMNS, r, strict=False))
    return Rule(
        tenant_id=v["tenant_id"], rule_id=v["rule_id"], name=v["name"], metric=v["metric"],
        comparison=v["comparison"], threshold=float(v["threshold"]),
        recover_threshold=None if v["recover_threshold"] is None else float(v["recover_threshold"]),
        window_s=int(v["window_s"]), wait_s=int(v["wait_s"]), min_samples=int(v["min_samples"]),
        interval_s=int(v["interval_s"]), workflow=v["workflow"], version=v["version"],
        environment=v["environment"], enabled=bool(v["enabled"]), created_at=_utc(v["created_at"]),
        created_by=v["created_by"], updated_at=_utc(v["updated_at"]),
    )  # fmt: skip


def _change(r: tuple[Any, ...]) -> Change:
    return Change(
        tenant_id=r[0], rule_id=r[1], transition=int(r[2]), at=_utc(r[3]), state=cast("Transition", r[4]),
        value=None if r[5] is None else float(r[5]), samples=int(r[6]), threshold=float(r[7]), event_id=r[8],
    )  # fmt: skip


class RuleStore:
    """Rules and transitions on `wh` (a handle of the caller's own)."""

    def __init__(self, wh: Warehouse) -> None:
        self._wh = wh
        self._lock = threading.Lock()
        self._last_version = datetime.min.replace(tzinfo=UTC)

    # rules

    def _select(self, where: str, params: Mapping[str, Any]) -> list[Rule]:
        rows = self._wh.rows(
            f"SELECT {', '.join(_RULE_COLUMNS[:-1])} FROM alert_rules FINAL WHERE {where} "
            "ORDER BY tenant_id, created_at, rule_id",
            params,
        )
        return [_rule(r) for r in rows]

    def of_tenant(self, tenant: str) -> list[Rule]:
        return self._select("tenant_id = {t:String}", {"t": tenant})

    def enabled(self) -> list[Rule]:
        """Every tenant's enabled rules."""
        return self._select("enabled = 1", {})

    def get(self, tenant: str, rule_id: str) -> Rule:
        found = self._select("tenant_id = {t:String} AND rule_id = {r:String}", {"t": tenant, "r": rule_id})
        if not found:
            raise UnknownItem(f"no alert rule {rule_id[:80]!r}")  # another tenant's does not exist here
        return found[0]

    def find(self, rule_id: str) -> Rule | None:
        """The rule `rule_id` of whichever tenant (the evaluator's; the API always names one)."""
        found = self._select("rule_id = {r:String}", {"r": rule_id})
        return found[0] if found else None

    def create(self, tenant: str, values: Mapping[str, Any], created_by: str) -> Rule:
        """A new rule from `values`, every field of rules.FIELDS, complete and checked."""
        with self._lock:
            if len(self.of_tenant(tenant)) >= MAX_PER_TENANT:
                raise StateConflict(f"a tenant has at most {MAX_PER_TENANT} alert rules; delete one first")
            now = datetime.now(UTC)
            rule = Rule(
                tenant_id=tenant,
                rule_id="al_" + uuid.uuid4().hex,
                created_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
                created_by=created_by,
                updated_at=now,
                **{k: values[k] for k in FIELDS},
            )
            return self._write(rule)

    def update(self, tenant: str, rule_id: str, values: Mapping[str, Any]) -> Rule:
        with self._lock:
            rule = self.get(tenant, rule_id)
            return self._write(replace(rule, **{k: values[k] for k in FIELDS}))

    def delete(self, tenant: str, rule_id: str) -> Rule:
        with self._lock:
            rule = self.get(tenant, rule_id)
            self._write(rule, deleted=True)
            return rule

    def _write(self, rule: Rule, deleted: bool = False) -> Rule:
        # the version: strictly increasing, so a change right after another always wins
        version = max(datetime.now(UTC), self._last_version + timedelta(microseconds=1))
        self._last_version = version
        rule = replace(rule, updated_at=version)
        row = {**rule.__dict__, "enabled": int(rule.enabled), "is_deleted": int(deleted)}
        self._wh.insert_columns("alert_rules", _RULE_COLUMNS, [[row[c]] for c in _RULE_COLUMNS])
        return rule

    # transitions

    def latest(self, tenant: str = "", rule_id: str = "") -> dict[tuple[str, str], Change]:
        """The newest transition of each rule (of `tenant`, and `rule_id`, when given)."""
        conds = ["1"]
        if tenant:
            conds.append("tenant_id = {t:String}")
        if rule_id:
            conds.append("rule_id = {r:String}")
        rows = self._wh.rows(
            f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM alert_history FINAL WHERE {' AND '.join(conds)} "
            "ORDER BY tenant_id, rule_id, transition DESC LIMIT 1 BY tenant_id, rule_id",
            {"t": tenant, "r": rule_id},
        )
        return {(c.tenant_id, c.rule_id): c for c in map(_change, rows)}

    def history(self, tenant: str, rule_id: str, limit: int = 100) -> list[Change]:
        """The rule's transitions, newest first."""
        rows = self._wh.rows(
            f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM alert_history FINAL "
            "WHERE tenant_id = {t:String} AND rule_id = {r:String} ORDER BY transition DESC LIMIT {n:UInt32}",
            {"t": tenant, "r": rule_id, "n": limit},
        )
        return [_change(r) for r in rows]

    def record(self, change: Change) -> None:
        """Store a transition; storing the same number again replaces it (never a second one)."""
        row = change.__dict__
        self._wh.insert_columns("alert_history", _HISTORY_COLUMNS, [[row[c]] for c in _HISTORY_COLUMNS])
