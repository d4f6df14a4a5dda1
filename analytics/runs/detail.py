"""One run: its row, its parts, its steps (as a tree or flat), its timeline, its re-run lineage,
and what redaction took out of its spans (rule names and counts from each span's `wrm.redacted`,
never values)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from clickhouse_connect.driver.client import Client

from analytics.runs import actions as acts
from analytics.runs.errors import UnknownItem
from analytics.runs.listing import shown_status, tags_of
from analytics.runs.schemas import (
    Action,
    Annotation,
    Lineage,
    RunDetail,
    RunPart,
    Step,
    TimelineEvent,
    TimelineKind,
)
from warehouse import Warehouse
from warehouse.statuses import FINISHED_RUN_STATUSES, LIVE_RUN_STATUSES


@dataclass(frozen=True)
class RunRow:
    """A run's current row in runs_store, as `find_run` reads it: the stored status, before
    cancel actions are taken into account (see `shown_status`)."""

    run_id: str
    trace_id: str
    trace_ids: list[str]
    workflow_name: str
    workflow_version: str
    environment: str
    status: str
    start_time: datetime
    end_time: datetime | None
    duration_ns: int | None
    step_count: int
    retries: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    first_pass: int
    failure_kind: str
    failure_reason: str
    failed_step: str
    human_decisions: int
    human_wait_ms: int
    validations_passed: int
    validations_failed: int
    quality_mean: float | None
    user_id: str
    session_id: str
    service_name: str
    rerun_of: str


_RUN_FIELDS = tuple(f.name for f in fields(RunRow))
_STEP_COLUMNS = ", ".join((
    "step_id", "parent_step_id", "name", "type", "attempt", "status", "start_time", "end_time", "duration_ns",
    "model", "input_tokens", "output_tokens", "cost_usd", "validation_name", "validation_passed",
    "quality_score", "human_decision", "human_actor", "human_wait_ms", "error_type", "error_message",
    "attributes['wrm.redacted']",
))  # fmt: skip


def find_run(wh: Warehouse, tenant: str, run_id: str) -> RunRow:
    """The run's current row; UnknownItem when the tenant has no such run.

    `run_id` may also be the trace id of any of the run's parts (spec 4.3). Read without FINAL,
    which merges whole granules: the run's versions by primary key, newest first, which is the row
    FINAL would keep (unless it is a deletion)."""
    row = _current(wh, tenant, run_id)
    if row is None:
        found = wh.rows(
            "SELECT argMax(run_id, resolved) FROM trace_runs "
            "WHERE tenant_id = {t:String} AND trace_id = {tr:String}",
            {"t": tenant, "tr": run_id},
        )
        if found and found[0][0] and found[0][0] != run_id:
            row = _current(wh, tenant, str(found[0][0]))
    if row is None:
        raise UnknownItem(f"no run {run_id!r}")
    return row


def _current(wh: Warehouse, tenant: str, run_id: str) -> RunRow | None:
    rows = wh.rows(
        f"SELECT {', '.join(_RUN_FIELDS)}, is_deleted FROM runs_store WHERE tenant_id = {{t:String}} "
        "AND run_id = {r:String} ORDER BY assembled_at DESC LIMIT 1",
        {"t": tenant, "r": run_id},
    )
    if not rows or rows[0][-1]:
        return None
    return RunRow(*rows[0][:-1])


def steps_of(wh: Warehouse, tenant: str, run: RunRow) -> list[Step]:
    """The steps of every part of the run, in start order."""
    return _in_start_order(steps_by_trace(wh.reader, tenant, run.trace_ids))


def _in_start_order(by_trace: dict[str, list[Step]]) -> list[Step]:
    return sorted((s for steps in by_trace.values() for s in steps), key=lambda s: (s.start_time, s.step_id))


def steps_by_trace(client: Client, tenant: str, trace_ids: list[str]) -> dict[str, list[Step]]:
    """Steps of several traces at once, each list in start order.

    Without FINAL (which merges whole granules of every column): all versions by primary key,
    newest first per step, and the newest kept unless it marks the span as no longer a step."""
    if not trace_ids:
        return {}
    rows = client.query(
        f"SELECT trace_id, {_STEP_COLUMNS}, is_deleted FROM steps_store "
        "WHERE tenant_id = {t:String} AND trace_id IN {trs:Array(String)} "
        "ORDER BY trace_id, step_id, assembled_at DESC",
        parameters={"t": tenant, "trs": trace_ids},
    ).result_rows
    out: dict[str, list[Step]] = {}
    last: tuple[str, str] | None = None
    for trace, *r, deleted in rows:
        if (trace, r[0]) == last:
            continue  # an older version of the step just taken
        last = (trace, r[0])
        if not deleted:
            out.setdefault(trace, []).append(_step(trace, r))
    for steps in out.values():
        steps.sort(key=lambda s: (s.start_time, s.step_id))
    return out


def _step(trace_id: str, r: list[Any]) -> Step:
    return Step(
        step_id=r[0],
        trace_id=trace_id,
        parent_step_id=r[1],
        name=r[2],
        type=r[3],
        attempt=r[4],
        status=r[5],
        start_time=r[6],
        end_time=r[7],
        duration_ms=r[8] / 1e6,
        model=r[9],
        input_tokens=r[10],
        output_tokens=r[11],
        cost_usd=r[12],
        validation_name=r[13],
        validation_passed=None if r[14] is None else bool(r[14]),
        quality_score=r[15],
        human_decision=r[16],
        human_actor=r[17],
        human_wait_ms=r[18],
        last_error=": ".join(p for p in (r[19], r[20]) if p) if r[5] == "failed" else "",
        redactions=_counts(r[21]),
    )


def _counts(recorded: str) -> dict[str, int]:
    """A span's `wrm.redacted` (rule → count, written by ingest), or {} when it has none."""
    if not recorded:
        return {}
    try:
        found = json.loads(recorded)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, int) and not isinstance(v, bool)}


def as_tree(steps: list[Step]) -> list[Step]:
    """Nest each step under its parent step; steps whose parent is not a step are roots."""
    by_id = {s.step_id: s.model_copy(update={"children": []}) for s in steps}
    roots: list[Step] = []
    for s in steps:
        node = by_id[s.step_id]
        parent = by_id.get(s.parent_step_id)
        (parent.children if parent is not None else roots).append(node)
    return roots


class SpanNotes(NamedTuple):
    waits: list[datetime]
    redactions: dict[str, int]


def _span_notes(wh: Warehouse, tenant: str, trace_ids: list[str]) -> SpanNotes:
    """In one read of the run's spans (span_facts, kept as long as the spans are): when the run
    started waiting for a person, in any part (wrm.hitl.state=requested markers), and what
    redaction took out of its spans, every span's `wrm.redacted` summed (steps or not)."""
    rows = wh.rows(
        "SELECT arraySort(groupArrayIf(start_time, is_marker = 1)), "
        "sumMap(JSONExtract(attributes['wrm.redacted'], 'Map(String, UInt64)')) FROM span_facts FINAL "
        "WHERE tenant_id = {t:String} AND trace_id IN {trs:Array(String)}",
        {"t": tenant, "trs": trace_ids},
    )
    if not rows:
        return SpanNotes([], {})
    waits, redactions = rows[0]
    return SpanNotes(list(waits), {str(k): int(v) for k, v in sorted(redactions.items()) if v})


_RUN_ENDED: dict[str, TimelineKind] = {
    "completed": "run.completed",
    "failed": "run.failed",
    "canceled": "run.canceled",
}


def timeline(
    run: RunRow,
    steps: list[Step],
    waits: list[datetime],
    actions: list[Action],
    notes: list[Annotation],
) -> list[TimelineEvent]:
    """What happened, in time order (ties keep this order: run, steps, people, actions, notes)."""
    ev: list[TimelineEvent] = [TimelineEvent(at=run.start_time, kind="run.started", name=run.workflow_name)]
    for s in steps:
        if s.attempt > 1:
            ev.append(
                TimelineEvent(
                    at=s.start_time, kind="step.retried", step_id=s.step_id, name=s.name, attempt=s.attempt
                )
            )
        ev.append(
            TimelineEvent(
                at=s.start_time, kind="step.started", step_id=s.step_id, name=s.name, attempt=s.attempt
            )
        )
        if s.human_decision:
            ev.append(
                TimelineEvent(
                    at=s.end_time,
                    kind="human.decided",
                    step_id=s.step_id,
                    name=s.name,
                    detail=s.human_decision,
                    actor=s.human_actor,
                    wait_ms=s.human_wait_ms,
                )
            )
        done: TimelineKind = "step.failed" if s.status == "failed" else "step.completed"
        ev.append(
            TimelineEvent(
                at=s.end_time,
                kind=done,
                step_id=s.step_id,
                name=s.name,
                attempt=s.attempt,
                detail=s.last_error,
            )
        )
    ev += [TimelineEvent(at=w, kind="human.waiting") for w in waits]
    if run.end_time is not None and run.status in FINISHED_RUN_STATUSES:
        ev.append(TimelineEvent(at=run.end_time, kind=_RUN_ENDED[run.status], detail=run.failure_reason))
    for a in actions:
        ev.append(
            TimelineEvent(
                at=a.requested_at,
                kind="action.requested",
                detail=f"{a.kind}: {a.reason}".rstrip(": "),
                actor=a.requested_by,
                action_id=a.action_id,
            )
        )
        if a.acked_at is not None:
            text = f"{a.kind} {a.state}" + (f": {a.outcome_message}" if a.outcome_message else "")
            if a.new_run_id:
                text += f" (new run {a.new_run_id})"
            ev.append(
                TimelineEvent(
                    at=a.acked_at,
                    kind="action.acknowledged",
                    detail=text,
                    actor=a.acked_by,
                    action_id=a.action_id,
                )
            )
            if a.kind == "cancel" and a.state == "done" and run.status in LIVE_RUN_STATUSES:
                ev.append(TimelineEvent(at=a.acked_at, kind="run.canceled", detail="canceled by the engine"))
    ev += [TimelineEvent(at=n.created_at, kind="annotation", detail=n.text, actor=n.author) for n in notes]
    order = {id(e): i for i, e in enumerate(ev)}
    return sorted(ev, key=lambda e: (e.at, order[id(e)]))


def lineage(wh: Warehouse, tenant: str, run: RunRow, actions: list[Action]) -> Lineage:
    """Re-run links from both sources: spans carrying wrm.rerun.of, and acknowledged re-runs."""
    run_id = run.run_id
    rerun_of = run.rerun_of
    if not rerun_of:
        rows = wh.rows(
            "SELECT run_id FROM run_actions FINAL WHERE tenant_id = {t:String} AND kind = 'rerun' "
            "AND new_run_id = {r:String} LIMIT 1",
            {"t": tenant, "r": run_id},
        )
        rerun_of = str(rows[0][0]) if rows else ""
    # Candidates without FINAL (a scan of one column: ~4 ms at 1M runs, where FINAL over the
    # whole table took ~110 ms), then FINAL over those few only: a run that no longer exists
    # (its parts joined another run) is not a re-run.
    candidates = [
        str(r[0])
        for r in wh.rows(
            "SELECT DISTINCT run_id FROM runs_by_time WHERE tenant_id = {t:String} AND rerun_of = {r:String}",
            {"t": tenant, "r": run_id},
        )
    ]
    by_spans = (
        wh.rows(
            "SELECT DISTINCT run_id FROM runs_by_time FINAL WHERE tenant_id = {t:String} "
            "AND rerun_of = {r:String} AND run_id IN {ids:Array(String)}",
            {"t": tenant, "r": run_id, "ids": candidates},
        )
        if candidates
        else []
    )
    reruns = {str(r[0]) for r in by_spans} | {
        a.new_run_id for a in actions if a.kind == "rerun" and a.new_run_id
    }
    return Lineage(rerun_of=rerun_of, reruns=sorted(reruns))


def run_detail(wh: Warehouse, tenant: str, run_id: str) -> RunDetail:
    return run_detail_and_steps(wh, tenant, run_id)[0]


def run_detail_and_steps(wh: Warehouse, tenant: str, run_id: str) -> tuple[RunDetail, list[Step]]:
    """The run and its steps in start order, each read once (a page shows both)."""
    run = find_run(wh, tenant, run_id)
    run_id = run.run_id  # when asked by a part's trace id
    by_trace = steps_by_trace(wh.reader, tenant, run.trace_ids)
    steps = _in_start_order(by_trace)
    actions = acts.actions_for_run(wh, tenant, run_id)
    notes = acts.annotations_for_run(wh, tenant, run_id)
    cancels = {a.state for a in actions if a.kind == "cancel"}
    spans = _span_notes(wh, tenant, run.trace_ids)
    detail = RunDetail(
        run_id=run_id,
        trace_id=run.trace_id,
        trace_ids=run.trace_ids,
        parts=_parts(wh, tenant, run, by_trace),
        workflow=run.workflow_name,
        version=run.workflow_version,
        environment=run.environment,
        status=shown_status(run.status, cancels),
        start_time=run.start_time,
        end_time=run.end_time,
        duration_ms=None if run.duration_ns is None else run.duration_ns / 1e6,
        step_count=run.step_count,
        retries=run.retries,
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
        cost_usd=run.cost_usd,
        first_pass=bool(run.first_pass),
        tags=tags_of(wh.reader, tenant, [run_id]).get(run_id, []),
        failure_kind=run.failure_kind,
        failure_reason=run.failure_reason,
        failed_step=run.failed_step,
        human_decisions=run.human_decisions,
        human_wait_ms=run.human_wait_ms,
        validations_passed=run.validations_passed,
        validations_failed=run.validations_failed,
        quality_mean=run.quality_mean,
        user_id=run.user_id,
        session_id=run.session_id,
        service_name=run.service_name,
        timeline=timeline(run, steps, spans.waits, actions, notes),
        annotations=notes,
        actions=actions,
        lineage=lineage(wh, tenant, run, actions),
        redactions=spans.redactions,
    )
    return detail, steps


def _parts(wh: Warehouse, tenant: str, run: RunRow, steps: dict[str, list[Step]]) -> list[RunPart]:
    """Each trace of the run with its start (trace_runs) and its number of steps."""
    rows = wh.rows(
        "SELECT trace_id, argMax(start_time, resolved) FROM trace_runs WHERE tenant_id = {t:String} "
        "AND trace_id IN {trs:Array(String)} GROUP BY trace_id",
        {"t": tenant, "trs": run.trace_ids},
    )
    starts = {str(r[0]): r[1] for r in rows}
    return [
        RunPart(trace_id=t, start_time=starts.get(t, run.start_time), step_count=len(steps.get(t, [])))
        for t in run.trace_ids
    ]
