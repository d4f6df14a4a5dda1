"""The alert state machine, the checks across a rule's fields, and the evaluator thread through
warehouse errors: no engine, no server."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytest

from analytics.alerts import AlertEvaluator, RuleStore
from analytics.alerts.rules import complete
from analytics.alerts.states import State, Verdict, decide
from warehouse import Warehouse, WarehouseRejected, WarehouseUnavailable
from warehouse.outbox import Outbox, OutboxEvent


def _walk(comparison: str, threshold: float, recover: float, values: list[float]) -> list[Verdict]:
    """The verdicts of a rule measuring `values` one after the other, from ok (10 samples each)."""
    state: State = "ok"
    out = []
    for v in values:
        verdict = decide(state, comparison, threshold, recover, v, 10, 5)  # type: ignore[arg-type]
        out.append(verdict)
        state = verdict.state
    return out


def test_below_fires_once_and_resolves_once() -> None:
    verdicts = _walk("below", 0.8, 0.8, [0.9, 0.8, 0.7, 0.5, 0.79, 0.8, 0.95, 0.85])
    assert [v.state for v in verdicts] == ["ok", "ok", "firing", "firing", "firing", "ok", "ok", "ok"]
    assert [v.transition for v in verdicts] == [None, None, "firing", None, None, "resolved", None, None]


def test_above_fires_over_the_threshold_not_at_it() -> None:
    verdicts = _walk("above", 3, 3, [3, 4, 3.5, 3, 2])
    assert [v.transition for v in verdicts] == [None, "firing", None, "resolved", None]


def test_hysteresis_keeps_a_firing_rule_firing_until_past_the_recover_threshold() -> None:
    # fires under 0.5, resolves only at 0.7 or above: 0.6 keeps it firing, and does not fire an ok rule
    verdicts = _walk("below", 0.5, 0.7, [0.6, 0.4, 0.6, 0.69, 0.7, 0.6, 0.45])
    assert [v.state for v in verdicts] == ["ok", "firing", "firing", "firing", "ok", "ok", "firing"]
    assert [v.transition for v in verdicts] == [None, "firing", None, None, "resolved", None, "firing"]
    assert verdicts[2].note == "hysteresis: resolves at 0.7 or above; 0.6 now"
    above = _walk("above", 10, 4, [12, 8, 5, 4])
    assert [v.transition for v in above] == ["firing", None, None, "resolved"]
    assert above[1].note == "hysteresis: resolves at 4 or below; 8 now"


def test_too_few_samples_never_fire_and_leave_a_firing_rule_firing() -> None:
    low = decide("ok", "below", 0.8, 0.8, 0.0, 4, 5)
    assert low == Verdict("ok", None, "insufficient samples: 4 of 5 runs")
    # a firing rule whose runs dry up stays firing: too few samples are no evidence of recovery
    assert decide("firing", "below", 0.8, 0.8, 1.0, 2, 5) == Verdict(
        "firing", None, "insufficient samples: 2 of 5 runs"
    )
    assert decide("ok", "below", 0.8, 0.8, 0.0, 5, 5).transition == "firing"  # exactly enough
    assert decide("ok", "below", 0.8, 0.8, None, 5, 0).transition is None  # nothing to measure
    assert decide("ok", "below", 1, 1, 0, 0, 0).transition == "firing"  # a count needs no samples


def _problems(**given: Any) -> dict[str, str]:
    return dict(complete(given)[1])


def test_defaults_follow_the_metric() -> None:
    values, problems = complete({"name": "n", "metric": "failure_rate", "threshold": 0.2})
    assert not problems
    assert (values["comparison"], values["recover_threshold"], values["wait_s"]) == ("above", None, 0)
    assert (values["window_s"], values["min_samples"], values["interval_s"]) == (3600, 10, 60)
    waiting, problems = complete({"name": "n", "metric": "waiting_human"})
    assert not problems
    assert (waiting["threshold"], waiting["wait_s"], waiting["comparison"]) == (0, 3600, "above")
    dead, problems = complete({"name": "n", "metric": "no_runs", "window_s": 600})
    assert not problems and (dead["threshold"], dead["comparison"], dead["window_s"]) == (1, "below", 600)


def test_checks_across_fields_name_the_field() -> None:
    missing = _problems(name="n", metric="first_pass_rate")
    assert missing == {"threshold": "required for metric first_pass_rate"}
    assert "between 0 and 1" in _problems(name="n", metric="success_rate", threshold=1.5)["threshold"]
    rec = _problems(name="n", metric="success_rate", threshold=0.5, recover_threshold=2)
    assert set(rec) == {"recover_threshold"}
    below = _problems(name="n", metric="first_pass_rate", threshold=0.8, recover_threshold=0.7)
    assert below["recover_threshold"].startswith("must be at or above the threshold")
    above = _problems(name="n", metric="p95_duration_s", threshold=30, recover_threshold=40)
    assert above["recover_threshold"].startswith("must be at or below the threshold")
    assert not _problems(name="n", metric="p95_duration_s", threshold=30, recover_threshold=20)
    assert _problems(name="n", metric="failure_count", threshold=3, wait_s=60) == {
        "wait_s": "applies only to metric waiting_human"
    }
    assert set(_problems(name="n", metric="no_runs", comparison="above")) == {"comparison"}
    assert set(_problems(name="n", metric="latency")) == {"metric"}


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_rates_take_their_whole_range(value: float) -> None:
    assert not _problems(name="n", metric="first_pass_rate", threshold=value)


class _Tables:
    """A stand-in warehouse for the evaluator: rules and transitions kept in lists, every run
    query answering "no run", and the first `failing` queries (that name `on`) refused with
    `error`."""

    def __init__(self, error: Exception, on: str) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {"alert_rules": [], "alert_history": []}
        self.failing = 0
        self.error = error
        self.on = on
        self.queries = 0

    def insert_columns(self, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
        self.tables[table] += [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]

    def rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if self.on in sql:
            self.queries += 1
            if self.queries <= self.failing:
                raise self.error
        table = next((t for t in self.tables if f"FROM {t}" in sql), None)
        if table is None:
            return [(0, 0)]  # a metric: no runs
        names = sql.removeprefix("SELECT ").split(" FROM ")[0].split(", ")
        found = sorted(self.tables[table], key=lambda r: -r.get("transition", 0))
        return [tuple(r[n] for n in names) for r in found if not r.get("is_deleted")]


class _Outbox:
    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def append(self, events: Sequence[OutboxEvent]) -> int:
        self.events += [e for e in events if e.event_id not in {k.event_id for k in self.events}]
        return 0


@pytest.mark.parametrize(
    ("error", "on", "level"),
    [(WarehouseUnavailable("Code: 241. memory limit (password=hunter2)", 241), "", "WARNING"),
     (WarehouseRejected("Code: 47. unknown column (password=hunter2)", 47), "", "ERROR"),
     (WarehouseUnavailable("Code: 159. timeout (password=hunter2)", 159), "runs_by_time", "WARNING")],
)  # fmt: skip
def test_the_evaluator_thread_outlives_warehouse_errors(
    error: Exception, on: str, level: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any query failing (the state's load, retried next tick), or the rule's metric (a transient
    error retried next tick)."""
    tables = _Tables(error, on)
    wh = cast("Warehouse", tables)
    rule = RuleStore(wh).create(
        "acme", complete({"name": "dead", "metric": "no_runs", "interval_s": 1})[0], "t"
    )
    tables.failing = tables.queries + 3  # the evaluator's first three queries
    outbox = _Outbox()
    evaluator = AlertEvaluator(wh, cast("Outbox", outbox), tick_s=0.01)
    with caplog.at_level(logging.WARNING, logger="analytics.alerts.evaluator"):
        evaluator.start()
        deadline = time.monotonic() + 10
        while not outbox.events and time.monotonic() < deadline:
            time.sleep(0.01)
        assert evaluator._thread is not None and evaluator._thread.is_alive()
        evaluator.stop()
    assert [e.type for e in outbox.events] == ["alert.firing"]
    assert [(h["rule_id"], h["state"], h["transition"]) for h in tables.tables["alert_history"]] == [
        (rule.rule_id, "firing", 1)
    ]
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(logged) == 3 and {lv for lv, _ in logged} == {level}, logged
    assert all(f"{type(error).__name__}: ClickHouse code" in m for _, m in logged), logged
    assert not any("hunter2" in m for _, m in logged)  # the engine's message is never logged
