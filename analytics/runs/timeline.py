"""A run's timeline: what happened, in time order, from its row, steps, waits, actions and notes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from analytics.runs.schemas import Action, Annotation, Step, TimelineEvent, TimelineKind
from warehouse.statuses import FINISHED_RUN_STATUSES, LIVE_RUN_STATUSES

if TYPE_CHECKING:
    from analytics.runs.detail import RunRow

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
