"""/v1/alerts: alert rules of the caller's tenant. Admins create, change, delete and evaluate
them; viewers and up read them, their state and their history. Another tenant's rule does not
exist here (404). A problem with the fields is a 422 naming the field; a name the tenant's
redaction rules would change is refused (it goes out in every alert event), not stored altered.
Creating, changing and deleting a rule is audited (alert.create, alert.update, alert.delete)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError

from access import audit as audit_log
from analytics.alerts.evaluator import AlertEvaluator, Evaluation
from analytics.alerts.rules import FIELDS, METRIC_SPECIFIC, Problem, Rule, complete
from analytics.alerts.schemas import (
    Alert,
    AlertCreate,
    AlertEvaluation,
    AlertHistory,
    AlertList,
    AlertTransition,
    AlertUpdate,
)
from analytics.alerts.store import RuleStore
from analytics.api.caller import Admin, Caller, Viewer, scrubbed
from redaction.book import PolicyBook
from redaction.policy import Policy
from warehouse import Warehouse

MAX_HISTORY = 1000


def _refuse(problems: Sequence[Problem]) -> None:
    if problems:
        raise RequestValidationError(
            [{"loc": ("body", field), "msg": msg, "type": "value_error"} for field, msg in problems]
        )


def _evaluation(e: Evaluation) -> AlertEvaluation:
    return AlertEvaluation(
        rule_id=e.rule_id, evaluated_at=e.evaluated_at, previous_state=e.previous, state=e.state,
        transition=e.transition, value=e.value, samples=e.samples, note=e.note, event_id=e.event_id,
    )  # fmt: skip


def build_router(
    warehouse: Warehouse, evaluator: AlertEvaluator, policies: PolicyBook | None = None
) -> APIRouter:
    """`warehouse`: the API's handle (rules are read and written on it); `evaluator`: the
    running evaluator, which knows each rule's state and evaluates on demand; `policies`: the
    redaction policies rule names are checked with (None: the built-in defaults)."""
    router = APIRouter(prefix="/v1", tags=["alerts"])
    store = RuleStore(warehouse)
    book = policies or PolicyBook(Policy(), {}, b"")

    def _scrubbed(who: Caller) -> Caller:
        return scrubbed(who, book)

    def _name_problems(tenant: str, name: str | None) -> list[Problem]:
        tally = Counter[str]()
        if name is None or book.redactor(tenant).text(name, tally) == name:
            return []
        rules = ", ".join(sorted(tally))
        return [
            ("name", f"matches redaction rules ({rules}); alert events carry it: choose one no rule changes")
        ]

    def _shown(rule: Rule) -> Alert:
        status = evaluator.status(rule)
        last = status.last
        note = f"last evaluation failed: {status.error}" if status.error else (last.note if last else "")
        return Alert(
            rule_id=rule.rule_id, name=rule.name, metric=rule.metric, comparison=rule.comparison,
            threshold=rule.threshold, recover_threshold=rule.recover, window_s=rule.window_s,
            wait_s=rule.wait_s, min_samples=rule.min_samples, interval_s=rule.interval_s,
            workflow=rule.workflow, version=rule.version, environment=rule.environment, enabled=rule.enabled,
            created_at=rule.created_at, created_by=rule.created_by, updated_at=rule.updated_at,
            state=status.state, since=status.since, transitions=status.transitions,
            value=last.value if last else None, samples=last.samples if last else 0,
            evaluated_at=last.evaluated_at if last else None, note=note,
        )  # fmt: skip

    def _audit(who: Caller, action: str, rule: Rule, **detail: Any) -> None:
        audit_log.record(warehouse, rule.tenant_id, who.actor, action, rule.rule_id, name=rule.name, **detail)

    @router.post("/alerts", response_model=Alert, status_code=201)
    def create_alert(who: Admin, body: AlertCreate) -> Alert:
        """A rule over the runs of a scope; it is evaluated within a tick of being made."""
        who = _scrubbed(who)
        values, problems = complete(body.model_dump())
        _refuse([*problems, *_name_problems(who.tenant, body.name)])
        rule = store.create(who.tenant, values, who.actor.label)
        _audit(who, "alert.create", rule, metric=rule.metric, threshold=rule.threshold)
        return _shown(rule)

    @router.get("/alerts", response_model=AlertList)
    def list_alerts(who: Viewer) -> AlertList:
        """The tenant's rules, oldest first, each with its state and last evaluation."""
        return AlertList(alerts=[_shown(r) for r in store.of_tenant(who.tenant)])

    @router.get("/alerts/{rule_id}", response_model=Alert)
    def get_alert(who: Viewer, rule_id: str) -> Alert:
        """The rule: ok or firing, since when, and its last value, samples and evaluation."""
        return _shown(store.get(who.tenant, rule_id))

    @router.patch("/alerts/{rule_id}", response_model=Alert)
    def update_alert(who: Admin, rule_id: str, body: AlertUpdate) -> Alert:
        """Change some fields; the rule keeps its state (the next evaluation applies the change)."""
        who = _scrubbed(who)
        rule = store.get(who.tenant, rule_id)
        given = body.model_dump(exclude_unset=True)
        base: dict[str, Any] = {k: getattr(rule, k) for k in FIELDS}
        base["wait_s"] = base["wait_s"] or None  # 0: not waiting_human
        if given.get("metric") not in (None, rule.metric):
            for name in METRIC_SPECIFIC:
                base[name] = None
        for name, value in given.items():
            if value is not None or name in ("recover_threshold", "wait_s"):
                base[name] = value
        values, problems = complete(base)
        _refuse([*problems, *_name_problems(who.tenant, given.get("name"))])
        changed = store.update(who.tenant, rule_id, values)
        _audit(
            who, "alert.update", changed, changed=sorted(k for k in FIELDS if values[k] != getattr(rule, k))
        )
        return _shown(changed)

    @router.delete("/alerts/{rule_id}", status_code=204)
    def delete_alert(who: Admin, rule_id: str) -> Response:
        """Delete the rule (it is evaluated no more; a firing rule sends no resolution). 204, no body."""
        who = _scrubbed(who)
        rule = store.delete(who.tenant, rule_id)
        _audit(who, "alert.delete", rule)
        return Response(status_code=204)

    @router.get("/alerts/{rule_id}/history", response_model=AlertHistory)
    def alert_history(
        who: Viewer, rule_id: str, limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 100
    ) -> AlertHistory:
        """The rule's transitions (firing, resolved), newest first."""
        rule = store.get(who.tenant, rule_id)
        changes = store.history(rule.tenant_id, rule.rule_id, limit)
        return AlertHistory(
            rule_id=rule.rule_id,
            transitions=[
                AlertTransition(
                    transition=c.transition,
                    at=c.at,
                    state=c.state,
                    value=c.value,
                    samples=c.samples,
                    threshold=c.threshold,
                    event_id=c.event_id,
                )
                for c in changes
            ],
        )

    @router.post("/alerts/{rule_id}/evaluate", response_model=AlertEvaluation)
    def evaluate_alert(who: Admin, rule_id: str) -> AlertEvaluation:
        """Evaluate the rule now, whatever its interval, and store a transition if there is one
        (a disabled rule is measured and its state left as it is)."""
        return _evaluation(evaluator.evaluate_rule(store.get(who.tenant, rule_id)))

    return router
