"""Operator records on runs: re-run and cancel requests (audited, idempotent by key, handed to
the engine through a pending feed it acknowledges), annotations and tags (sql/007).

WRM does not execute workflows; an action is a record of who asked for what, when and why,
and what the engine then reported. Writes go through one lock: the read-then-write of an
idempotency key must not race in this process, which is the only writer.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from analytics.runs.errors import InvalidInput, StateConflict, UnknownItem
from analytics.runs.schemas import AckRequest, Action, ActionKind, Annotation, AnnotationRequest, TagsRequest
from warehouse import Warehouse
from warehouse.statuses import FINISHED_RUN_STATUSES

_TAG_RE = re.compile(r"^[\w.:/\-]{1,64}$", re.UNICODE)
_ACTION_COLUMNS = (
    "action_id, run_id, kind, state, reason, context, requested_by, requested_at, outcome, new_run_id, "
    "acked_by, acked_at"
)
_lock = threading.Lock()


def _now() -> datetime:
    return datetime.now(UTC)


def _action(r: tuple[Any, ...]) -> Action:
    return Action(
        action_id=r[0],
        run_id=r[1],
        kind=r[2],
        state=r[3],
        reason=r[4],
        context=json.loads(r[5] or "{}"),
        requested_by=r[6],
        requested_at=r[7],
        outcome_message=r[8],
        new_run_id=r[9],
        acked_by=r[10],
        acked_at=r[11],
    )


def _write_action(wh: Warehouse, tenant: str, a: Action, key: str) -> None:
    wh.insert_columns(
        "run_actions",
        [
            "tenant_id",
            "action_id",
            "run_id",
            "kind",
            "state",
            "reason",
            "context",
            "requested_by",
            "requested_at",
            "idempotency_key",
            "outcome",
            "new_run_id",
            "acked_by",
            "acked_at",
            "updated_at",
        ],
        [
            [tenant],
            [a.action_id],
            [a.run_id],
            [a.kind],
            [a.state],
            [a.reason],
            [json.dumps(a.context)],
            [a.requested_by],
            [a.requested_at],
            [key],
            [a.outcome_message],
            [a.new_run_id],
            [a.acked_by],
            [a.acked_at],
            [_now()],
        ],
    )


def get_action(wh: Warehouse, tenant: str, action_id: str) -> Action:
    rows = wh.rows(
        f"SELECT {_ACTION_COLUMNS} FROM run_actions FINAL "
        "WHERE tenant_id = {t:String} AND action_id = {a:String}",
        {"t": tenant, "a": action_id},
    )
    if not rows:
        raise UnknownItem(f"no action {action_id!r}")
    return _action(rows[0])


def request_action(
    wh: Warehouse,
    tenant: str,
    run_id: str,
    run_status: str,
    kind: ActionKind,
    *,
    reason: str,
    context: dict[str, Any],
    requested_by: str,
    idempotency_key: str = "",
) -> tuple[Action, bool]:
    """Record a re-run or cancel request; returns the action and whether it was created now.

    A repeated Idempotency-Key returns the action it created, provided it was for the same run
    and kind. A second cancel of a run with one pending returns that one.
    """
    if len(idempotency_key) > 200:
        raise InvalidInput("the Idempotency-Key header is longer than 200 characters")
    with _lock:
        if idempotency_key:
            rows = wh.rows(
                f"SELECT {_ACTION_COLUMNS} FROM run_actions FINAL WHERE tenant_id = {{t:String}} "
                "AND idempotency_key = {k:String} LIMIT 1",
                {"t": tenant, "k": idempotency_key},
            )
            if rows:
                found = _action(rows[0])
                if (found.run_id, found.kind) != (run_id, kind):  # the key is the client's: not quoted
                    raise StateConflict(
                        f"this Idempotency-Key was used for another request (a {found.kind} of run "
                        f"{found.run_id})"
                    )
                return found, False
        if kind == "cancel":
            cancels = [a for a in actions_for_run(wh, tenant, run_id) if a.kind == "cancel"]
            pending = [a for a in cancels if a.state == "pending"]
            if pending:
                return pending[0], False
            if any(a.state == "done" for a in cancels):
                run_status = "canceled"  # the engine reported it canceled
            if run_status in FINISHED_RUN_STATUSES:
                raise StateConflict(f"run {run_id} is already {run_status}; there is nothing to cancel")
        action = Action(
            action_id=str(uuid.uuid4()),
            run_id=run_id,
            kind=kind,
            state="pending",
            reason=reason,
            context=context,
            requested_by=requested_by,
            requested_at=_now(),
        )
        _write_action(wh, tenant, action, idempotency_key)
        return action, True


def list_actions(
    wh: Warehouse, tenant: str, state: str = "", kind: str = "", limit: int = 100
) -> list[Action]:
    rows = wh.rows(
        f"SELECT {_ACTION_COLUMNS} FROM run_actions FINAL WHERE tenant_id = {{t:String}} "
        "AND ({s:String} = '' OR state = {s:String}) AND ({k:String} = '' OR kind = {k:String}) "
        "ORDER BY requested_at, action_id LIMIT {n:UInt32}",
        {"t": tenant, "s": state, "k": kind, "n": limit},
    )
    return [_action(r) for r in rows]


def acknowledge(
    wh: Warehouse, tenant: str, action_id: str, ack: AckRequest, acked_by: str
) -> tuple[Action, bool]:
    """The engine reports what became of an action. Repeating the same acknowledgement is a
    no-op; a different one for an action already acknowledged is a conflict. Returns the action
    and whether this call changed it (decided under the lock, so concurrent repeats agree)."""
    with _lock:
        action = get_action(wh, tenant, action_id)
        if action.state != "pending":
            same = (action.state, action.new_run_id, action.outcome_message) == (
                ack.outcome,
                ack.new_run_id,
                ack.message,
            )
            if same:
                return action, False
            raise StateConflict(f"action {action_id} was already acknowledged as {action.state}")
        if ack.new_run_id and action.kind != "rerun":
            raise InvalidInput("`new_run_id` only applies to a re-run")
        done = action.model_copy(
            update={
                "state": ack.outcome,
                "outcome_message": ack.message,
                "new_run_id": ack.new_run_id,
                "acked_by": acked_by,
                "acked_at": _now(),
            }
        )
        key = wh.rows(
            "SELECT idempotency_key FROM run_actions FINAL "
            "WHERE tenant_id = {t:String} AND action_id = {a:String}",
            {"t": tenant, "a": action_id},
        )[0][0]
        _write_action(wh, tenant, done, str(key))
        return done, True


def actions_for_run(wh: Warehouse, tenant: str, run_id: str) -> list[Action]:
    rows = wh.rows(
        f"SELECT {_ACTION_COLUMNS} FROM run_actions FINAL "
        "WHERE tenant_id = {t:String} AND run_id = {r:String} ORDER BY requested_at, action_id",
        {"t": tenant, "r": run_id},
    )
    return [_action(r) for r in rows]


def annotate(wh: Warehouse, tenant: str, run_id: str, req: AnnotationRequest, author: str) -> Annotation:
    note = Annotation(
        annotation_id=str(uuid.uuid4()),
        run_id=run_id,
        text=req.text,
        label=req.label,
        score=req.score,
        author=author,
        created_at=_now(),
    )
    wh.insert_columns(
        "run_annotations",
        ["tenant_id", "run_id", "annotation_id", "text", "label", "score", "author", "created_at"],
        [
            [tenant],
            [run_id],
            [note.annotation_id],
            [note.text],
            [note.label],
            [note.score],
            [note.author],
            [note.created_at],
        ],
    )
    return note


def annotations_for_run(wh: Warehouse, tenant: str, run_id: str) -> list[Annotation]:
    rows = wh.rows(
        "SELECT annotation_id, run_id, text, label, score, author, created_at FROM run_annotations FINAL "
        "WHERE tenant_id = {t:String} AND run_id = {r:String} ORDER BY created_at, annotation_id",
        {"t": tenant, "r": run_id},
    )
    return [
        Annotation(
            annotation_id=r[0], run_id=r[1], text=r[2], label=r[3], score=r[4], author=r[5], created_at=r[6]
        )
        for r in rows
    ]


def tags_present(wh: Warehouse, tenant: str, run_id: str, tags: list[str]) -> set[str]:
    """Which of `tags` the run has now."""
    if not tags:
        return set()
    rows = wh.rows(
        "SELECT tag FROM run_tags FINAL WHERE tenant_id = {t:String} AND run_id = {r:String} "
        "AND tag IN {tags:Array(String)} AND present = 1",
        {"t": tenant, "r": run_id, "tags": tags},
    )
    return {str(r[0]) for r in rows}


def change_tags(
    wh: Warehouse, tenant: str, run_id: str, req: TagsRequest, changed_by: str
) -> tuple[list[str], list[str]]:
    """Record the changes; (added, removed): both empty when the request changes nothing. Only a
    tag the run has is removed: no row is written for one it has not, so a removal never stores
    text the run did not hold. A refusal names a tag by its place in the request (`add[2]`),
    never by its text: a refused tag may be a secret."""
    for field, given in (("add", req.add), ("remove", req.remove)):
        bad = next((i for i, t in enumerate(given) if not _TAG_RE.match(t)), None)
        if bad is not None:
            raise InvalidInput(f"{field}[{bad}] is not a tag (1-64 letters, digits, and _ . : / -)")
    removing = set(req.remove)
    both = next((i for i, t in enumerate(req.add) if t in removing), None)
    if both is not None:
        raise InvalidInput(f"add[{both}] is also in remove: a tag is either added or removed")
    added = list(dict.fromkeys(req.add))
    with _lock:  # the tags present, then the write: no other change of this process in between
        present = tags_present(wh, tenant, run_id, list(dict.fromkeys(req.remove)))
        removed = [t for t in dict.fromkeys(req.remove) if t in present]
        changes = [(t, 1) for t in added] + [(t, 0) for t in removed]
        if not changes:
            return [], []
        now = _now()
        wh.insert_columns(
            "run_tags",
            ["tenant_id", "run_id", "tag", "present", "changed_by", "changed_at"],
            [
                [tenant] * len(changes),
                [run_id] * len(changes),
                [t for t, _ in changes],
                [p for _, p in changes],
                [changed_by] * len(changes),
                [now] * len(changes),
            ],
        )
    return added, removed


def recent_actions(wh: Warehouse, since: datetime) -> list[tuple[str, Action]]:
    """Every tenant's actions requested since `since`, with their tenant (for announcing them)."""
    rows = wh.rows(
        f"SELECT tenant_id, {_ACTION_COLUMNS} FROM run_actions FINAL "
        "WHERE requested_at >= {s:DateTime64(6, 'UTC')} ORDER BY requested_at",
        {"s": since},
    )
    return [(r[0], _action(r[1:])) for r in rows]
