"""The run page's operator actions, read from a form and done as `POST /v1/runs/{id}/...` does
them: the same analytics.runs.actions calls, the same redaction of what operators write (the
tenant's policy), the same audit entries and `action.requested` announcement.

Kept in step with analytics/api/runs_api.py by hand: its handlers are closures there.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from access import audit as audit_log
from analytics.api.caller import Caller, scrubbed
from analytics.runs import actions as acts
from analytics.runs.detail import find_run
from analytics.runs.errors import InvalidInput
from analytics.runs.schemas import AnnotationRequest, CancelRequest, RerunRequest, TagsRequest
from analytics.webhooks.app_events import action_requested
from console.base import Console

ACTIONS = ("rerun", "cancel", "annotate", "tag")
# the idempotency key a confirm page carries: a UUID, which no redaction rule is meant to change
_KEY_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class FormProblem(Exception):
    """What the operator typed cannot be used: shown by its field on the confirm page again."""

    errors: dict[str, str]
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """What an action left behind, for the notice on the run page: `done=<action>&id=<id>`."""

    action: str
    item_id: str = ""


def _redacted(tally: Counter[str]) -> dict[str, dict[str, int]]:
    return {"redacted": dict(sorted(tally.items()))} if tally else {}


def _pydantic_errors(exc: ValidationError, names: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        where = str(err["loc"][0]) if err["loc"] else ""
        out.setdefault(names.get(where, where), err["msg"])
    return out


def read(action: str, form: dict[str, str]) -> Any:
    """The request model of `action` from the form's fields; FormProblem when one is wrong."""
    values = {k: v for k, v in form.items() if k not in ("csrf",)}
    errors: dict[str, str] = {}
    try:
        if action in ("rerun", "cancel"):
            if not _KEY_RE.match(form.get("key", "")):
                raise InvalidInput("this form has lost its request id: open the confirm page again")
            if action == "cancel":
                return CancelRequest(reason=form.get("reason", ""))
            text = form.get("context", "").strip() or "{}"
            context: Any = None
            try:
                context = json.loads(text)
            except json.JSONDecodeError as exc:
                errors["context"] = f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            else:
                if not isinstance(context, dict):
                    errors["context"] = 'a JSON object, such as {"retries": 2}'
            if errors:
                raise FormProblem(errors, values)
            return RerunRequest(reason=form.get("reason", ""), context=context)
        if action == "annotate":
            raw = form.get("score", "").strip()
            score: float | None = None
            if raw:
                try:
                    score = float(raw)
                except ValueError:
                    errors["score"] = "a number, such as 0.8, or nothing"
                else:
                    if score != score or score in (float("inf"), float("-inf")):
                        errors["score"] = "a finite number"
            if not form.get("text", "").strip():
                errors["text"] = "write the note"
            if errors:
                raise FormProblem(errors, values)
            return AnnotationRequest(text=form.get("text", ""), label=form.get("label", ""), score=score)
        tag = form.get("tag", "").strip()
        if not tag:
            raise FormProblem({"tag": "name the tag"}, values)
        change = form.get("change", "add")
        return TagsRequest(add=[tag] if change == "add" else [], remove=[tag] if change == "remove" else [])
    except ValidationError as exc:
        raise FormProblem(_pydantic_errors(exc, {}), values) from exc


def perform(console: Console, caller: Caller, run_id: str, action: str, body: Any, key: str) -> Done:
    """Do `action` on the run as the API route does; the run's own id in what is returned."""
    if action in ("rerun", "cancel"):
        context = body.context if isinstance(body, RerunRequest) else {}
        return _request(console, caller, run_id, action, body.reason, context, key)
    if action == "annotate":
        return _annotate(console, caller, run_id, body)
    return _tags(console, caller, run_id, body)


def _request(
    console: Console, who: Caller, run_id: str, kind: str, reason: str, context: dict[str, Any], key: str
) -> Done:
    """runs_api `_act`: a re-run or cancel request, idempotent by the confirm page's key."""
    wh, book = console.wh, console.policies
    who = scrubbed(who, book)
    redactor, tally = book.redactor(who.tenant), Counter[str]()
    if redactor.text(key, tally) != key:
        raise InvalidInput("this form's request id matches a redaction rule: open the confirm page again")
    run = find_run(wh, who.tenant, run_id)
    reason = redactor.text(reason, tally)
    context = redactor.mapping(context, tally)
    action, created = acts.request_action(
        wh,
        who.tenant,
        run.run_id,
        run.status,
        "rerun" if kind == "rerun" else "cancel",
        reason=reason,
        context=context,
        requested_by=who.actor.label,
        idempotency_key=key,
    )
    if created:
        audit_log.record(
            wh, who.tenant, who.actor, f"run.{kind}", run.run_id,
            action_id=action.action_id, reason=reason, **_redacted(tally),
        )  # fmt: skip
    if console.outbox is not None:  # a repeat finds its event by the action's id and writes nothing
        console.outbox.append([action_requested(who.tenant, action, run.workflow_name, run.environment)])
    return Done(kind, action.action_id)


def _annotate(console: Console, who: Caller, run_id: str, body: AnnotationRequest) -> Done:
    wh, book = console.wh, console.policies
    who = scrubbed(who, book)
    run = find_run(wh, who.tenant, run_id)
    redactor, tally = book.redactor(who.tenant), Counter[str]()
    body = body.model_copy(
        update={"text": redactor.text(body.text, tally), "label": redactor.text(body.label, tally)}
    )
    note = acts.annotate(wh, who.tenant, run.run_id, body, who.actor.label)
    audit_log.record(
        wh, who.tenant, who.actor, "run.annotate", run.run_id,
        annotation_id=note.annotation_id, **_redacted(tally),
    )  # fmt: skip
    return Done("annotate", note.annotation_id)


def _tags(console: Console, who: Caller, run_id: str, body: TagsRequest) -> Done:
    """runs_api `tags`: a tag a redaction rule would change is refused, never stored altered."""
    wh, book = console.wh, console.policies
    who = scrubbed(who, book)
    run_id = find_run(wh, who.tenant, run_id).run_id
    redactor, tally = book.redactor(who.tenant), Counter[str]()
    if any(redactor.text(t, tally) != t for t in body.add):
        rules = ", ".join(sorted(tally))
        raise FormProblem({"tag": f"matches redaction rules ({rules}): stored as given or not at all"})
    guarded = [t for t in dict.fromkeys(body.remove) if redactor.text(t) != t]
    absent = set(guarded) - acts.tags_present(wh, who.tenant, run_id, guarded)
    if absent:
        raise FormProblem({"tag": "the run does not have this tag, and it matches redaction rules"})
    try:
        add, removed = acts.change_tags(wh, who.tenant, run_id, body, who.actor.label)
    except InvalidInput as exc:
        raise FormProblem({"tag": "1-64 letters, digits, and _ . : / -"}) from exc
    if add or removed:
        removed = [redactor.text(t) for t in removed]
        audit_log.record(wh, who.tenant, who.actor, "run.tag", run_id, add=add, remove=removed)
    return Done("tag")
