"""The run page's operator actions, read from a form and done by analytics.runs.operations, as
`POST /v1/runs/{id}/...` does them: the same records, redaction, audit entries and
`action.requested` announcement."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from analytics.api.caller import Caller
from analytics.runs import operations
from analytics.runs.errors import InvalidInput
from analytics.runs.schemas import ActionKind, AnnotationRequest, CancelRequest, RerunRequest, TagsRequest
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
    """Do `action` on the run exactly as the API route does (analytics.runs.operations)."""
    wh, book = console.wh, console.policies
    if action in ("rerun", "cancel"):
        context = body.context if isinstance(body, RerunRequest) else {}
        kind: ActionKind = "rerun" if action == "rerun" else "cancel"
        done, _ = operations.request(
            wh, book, console.outbox, caller, run_id, kind, body.reason, context, key,
            key_name="this form's request id",
        )  # fmt: skip
        return Done(action, done.action_id)
    if action == "annotate":
        return Done("annotate", operations.annotate(wh, book, caller, run_id, body).annotation_id)
    try:
        operations.change_tags(wh, book, caller, run_id, body)
    except InvalidInput as exc:
        raise FormProblem({"tag": _tag_problem(str(exc))}) from exc
    return Done("tag")


def _tag_problem(message: str) -> str:
    """The API's message names `add[0]`; the form has one field."""
    if "redaction rules" in message:
        return message.split(": ", 1)[-1]
    return "1-64 letters, digits, and _ . : / -"
