"""The alert evaluator: a daemon thread that wakes every tick and evaluates each enabled rule
whose interval has passed since its last evaluation; the API evaluates a rule on demand.

A transition is stored in alert_history first, then sent to the outbox as `alert.firing` or
`alert.resolved`, with an id derived from the rule and the transition's number: history is what
the state is, and the event follows from it. An event the outbox did not take is retried every
tick; after a restart the newest transition of every rule is offered to the outbox again, which
skips an id it holds, so a crash between the two writes neither loses the event nor sends it
twice. On restart each rule's state is its newest transition, so a firing rule is not fired again.

Warehouse errors are classified: a transient one is retried at the next tick, a permanent one at
the rule's next interval; neither stops the thread. Logs name the rule and the error's class and
code, never the engine's message (it can quote SQL and data).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.exceptions import ClickHouseError

from analytics.alerts.metrics import measure
from analytics.alerts.rules import Rule
from analytics.alerts.states import State, Transition, Verdict, decide
from analytics.alerts.store import Change, RuleStore
from warehouse import Warehouse, WarehouseError, classify, is_transient
from warehouse.outbox import Outbox, OutboxEvent, event_id

log = logging.getLogger(__name__)

RESEND_WITHIN = timedelta(days=29)  # the outbox keeps events 30 days: an older one is not offered again


@dataclass(frozen=True)
class Evaluation:
    rule_id: str
    evaluated_at: datetime
    previous: State
    state: State
    transition: Transition | None  # None: no change
    value: float | None
    samples: int
    note: str  # e.g. insufficient samples, hysteresis; '' when the value says it all
    event_id: str | None  # the transition's outbox event


@dataclass(frozen=True)
class RuleStatus:
    """What the evaluator knows of a rule: its state since its last transition, and its last
    evaluation (in this process; none yet after a restart)."""

    state: State
    since: datetime | None  # the last transition; None: never fired
    transitions: int
    last: Evaluation | None = None
    error: str = ""  # why the last evaluation failed ('' when it did not)


def _status(change: Change | None) -> RuleStatus:
    if change is None:
        return RuleStatus("ok", None, 0)
    return RuleStatus("firing" if change.state == "firing" else "ok", change.at, change.transition)


@dataclass(frozen=True)
class _Problem:
    transient: bool
    what: str  # what may be logged: a warehouse error's class and code, or an exception's type
    unexpected: bool  # not a warehouse error: a bug, logged with its traceback


def _problem(exc: Exception) -> _Problem:
    if isinstance(exc, (ClickHouseError, WarehouseError, OSError)):
        error = classify(exc)
        return _Problem(is_transient(error), error.summary(), False)
    return _Problem(False, type(exc).__name__, True)


def outbox_event(rule: Rule, change: Change) -> OutboxEvent:
    """The event a transition goes out as; the same transition always makes the same event."""
    kind = f"alert.{change.state}"
    data = {
        "tenant_id": rule.tenant_id, "rule_id": rule.rule_id, "name": rule.name, "metric": rule.metric,
        "comparison": rule.comparison, "threshold": rule.threshold, "recover_threshold": rule.recover,
        "value": change.value, "samples": change.samples, "min_samples": rule.min_samples,
        "window_s": rule.window_s, "wait_s": rule.wait_s,
        "scope": {"workflow": rule.workflow, "version": rule.version, "environment": rule.environment},
        "state": change.state, "transition": change.transition, "since": change.at.isoformat(),
        "evaluated_at": change.at.isoformat(),
    }  # fmt: skip
    return OutboxEvent(
        tenant_id=rule.tenant_id,
        event_id=change.event_id,
        type=kind,
        occurred_at=change.at,
        data=json.dumps(data, separators=(",", ":")),
        workflow=rule.workflow,
        environment=rule.environment,
        status=change.state,
    )


class AlertEvaluator:
    """Evaluates alert rules on `warehouse` (a handle of its own) and writes their transitions to
    `outbox`; wakes every `tick_s` seconds once started."""

    def __init__(self, warehouse: Warehouse, outbox: Outbox, tick_s: float = 1.0) -> None:
        self.store = RuleStore(warehouse)
        self._wh = warehouse
        self._outbox = outbox
        self.tick_s = tick_s
        self._evaluating = threading.Lock()  # one evaluation at a time: the thread's or the API's
        self._ticking = threading.Lock()
        self._state_lock = threading.Lock()  # guards the dictionaries below
        self._known: dict[tuple[str, str], RuleStatus] = {}
        self._loaded = False
        self._last_run: dict[tuple[str, str], float] = {}  # monotonic time of the last evaluation
        self._unsent: dict[str, OutboxEvent] = {}  # events of stored transitions the outbox did not take
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.consecutive_failures = 0
        self.last_error = ""

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="wrm-alerts", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
                self.consecutive_failures, self.last_error = 0, ""
            except Exception as exc:  # the thread outlives every failure; the next tick retries
                p = _problem(exc)
                self.consecutive_failures += 1
                self.last_error = p.what
                log.log(
                    logging.WARNING if p.transient else logging.ERROR,
                    "alert evaluation failed (%s); retrying next tick",
                    p.what,
                    exc_info=p.unexpected,
                )

    # state

    def _load(self) -> None:
        """Every rule's newest transition (once), and re-offer recent ones to the outbox."""
        if self._loaded:
            return
        latest = self.store.latest()
        rules = {(r.tenant_id, r.rule_id): r for r in self.store.enabled()}
        recent = datetime.now(UTC) - RESEND_WITHIN
        with self._state_lock:
            for key, change in latest.items():
                self._known.setdefault(key, _status(change))
                if key in rules and change.at > recent:
                    self._unsent.setdefault(change.event_id, outbox_event(rules[key], change))
            self._loaded = True

    def status(self, rule: Rule) -> RuleStatus:
        key = (rule.tenant_id, rule.rule_id)
        self._load()
        with self._state_lock:
            found = self._known.get(key)
        if found is None:  # made after the load: its transitions, if any
            found = _status(self.store.latest(rule.tenant_id, rule.rule_id).get(key))
            with self._state_lock:
                found = self._known.setdefault(key, found)
        return found

    def _send_unsent(self) -> None:
        with self._state_lock:
            pending = list(self._unsent.values())
        if pending:
            self._outbox.append(pending)
            with self._state_lock:
                for e in pending:
                    self._unsent.pop(e.event_id, None)

    # evaluation

    def tick(self) -> list[Evaluation]:
        """Evaluate every enabled rule whose interval has passed; returns the evaluations made."""
        with self._ticking:
            return self._tick()

    def _tick(self) -> list[Evaluation]:
        self._load()
        self._send_unsent()
        rules = self.store.enabled()
        keys = {(r.tenant_id, r.rule_id) for r in rules}
        for gone in [k for k in self._last_run if k not in keys]:  # deleted or disabled
            del self._last_run[gone]
        done: list[Evaluation] = []
        for rule in rules:
            if self._stop.is_set():
                break
            key = (rule.tenant_id, rule.rule_id)
            now = time.monotonic()
            last = self._last_run.get(key)
            if last is not None and now - last < rule.interval_s:
                continue
            try:
                done.append(self.evaluate_rule(rule))
                self._last_run[key] = now
            except Exception as exc:
                p = _problem(exc)
                self._note_error(key, p.what)
                if not p.transient:  # the same statement would fail again: wait for the interval
                    self._last_run[key] = now
                log.log(
                    logging.WARNING if p.transient else logging.ERROR,
                    "alert rule %s (tenant %s): evaluation failed (%s); retrying %s",
                    rule.rule_id, rule.tenant_id, p.what,
                    "next tick" if p.transient else "after its interval", exc_info=p.unexpected,
                )  # fmt: skip
        return done

    def _note_error(self, key: tuple[str, str], what: str) -> None:
        with self._state_lock:
            if key in self._known:
                self._known[key] = replace(self._known[key], error=what)

    def evaluate(self, rule_id: str | None = None) -> list[Evaluation]:
        """Evaluate now, whatever the intervals: every enabled rule, or the rule `rule_id` (of any
        tenant; none if there is no such rule)."""
        if rule_id is None:
            return [self.evaluate_rule(r) for r in self.store.enabled()]
        found = self.store.find(rule_id)
        return [] if found is None else [self.evaluate_rule(found)]

    def evaluate_rule(self, rule: Rule) -> Evaluation:
        """Measure the rule, decide its state and store a transition. A disabled rule is measured
        and its state left as it is."""
        with self._evaluating:
            current = self.status(rule)
            before = current.state
            at = datetime.now(UTC)
            measured = measure(self._wh, rule, at)
            sampled = rule.min_samples if rule.info.sampled else 0
            verdict = decide(
                current.state, rule.comparison, rule.threshold, rule.recover, measured.value,
                measured.samples, sampled,
            )  # fmt: skip
            if not rule.enabled:
                verdict = Verdict(current.state, None, "disabled: measured, state unchanged")
            sent = None
            if verdict.transition is not None:
                number = current.transitions + 1
                sent = event_id(rule.tenant_id, rule.rule_id, f"alert.{verdict.transition}", str(number))
                change = Change(
                    tenant_id=rule.tenant_id, rule_id=rule.rule_id, transition=number, at=at,
                    state=verdict.transition, value=measured.value, samples=measured.samples,
                    threshold=rule.threshold if verdict.transition == "firing" else rule.recover,
                    event_id=sent,
                )  # fmt: skip
                self.store.record(change)  # the state changes once this is stored
                current = RuleStatus(verdict.state, at, number)
                with self._state_lock:
                    self._unsent[sent] = outbox_event(rule, change)
                log.info(
                    "alert rule %s (tenant %s): %s at %s over %d runs",
                    rule.rule_id, rule.tenant_id, verdict.transition, measured.value, measured.samples,
                )  # fmt: skip
            result = Evaluation(
                rule_id=rule.rule_id, evaluated_at=at, previous=before, state=verdict.state,
                transition=verdict.transition, value=measured.value, samples=measured.samples,
                note=verdict.note, event_id=sent,
            )  # fmt: skip
            with self._state_lock:
                self._known[(rule.tenant_id, rule.rule_id)] = replace(current, last=result, error="")
        try:
            self._send_unsent()
        except Exception as exc:  # stored: the next tick offers it again
            p = _problem(exc)
            log.warning(
                "alert event not yet in the outbox (%s); retrying next tick", p.what, exc_info=p.unexpected
            )
        return result
