"""What an operator does to a run, whichever door they came through (`POST /v1/runs/...` or the
console's confirm pages): the text they write is redacted with the tenant's policy before it is
stored, the action is recorded, audited and, for re-run and cancel, announced as
`action.requested`. One place, so the API and the console cannot drift apart.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from access import audit as audit_log
from analytics.api.caller import Caller, scrubbed
from analytics.runs import actions as acts
from analytics.runs.detail import find_run
from analytics.runs.errors import InvalidInput
from analytics.runs.listing import tags_of
from analytics.runs.schemas import Action, ActionKind, Annotation, AnnotationRequest, Tags, TagsRequest
from analytics.webhooks.app_events import action_requested
from redaction.book import PolicyBook
from warehouse import Warehouse
from warehouse.outbox import Outbox


def _redacted(tally: Counter[str]) -> dict[str, dict[str, int]]:
    """What an audit entry adds when redaction changed the request: rule names and counts."""
    return {"redacted": dict(sorted(tally.items()))} if tally else {}


def request(
    wh: Warehouse,
    book: PolicyBook,
    outbox: Outbox | None,
    who: Caller,
    run_id: str,
    kind: ActionKind,
    reason: str,
    context: dict[str, Any],
    key: str,
    key_name: str = "the Idempotency-Key header",
) -> tuple[Action, bool]:
    """A re-run or cancel request, idempotent by `key` (`key_name` says where it came from);
    (the action, whether it is new)."""
    who = scrubbed(who, book)
    redactor, tally = book.redactor(who.tenant), Counter[str]()
    if redactor.text(key, tally) != key:  # stored as given (an opaque client id), or refused
        raise InvalidInput(
            f"{key_name} matches redaction rules ({', '.join(sorted(tally))}); "
            "use a key no rule changes, such as a random UUID"
        )
    run = find_run(wh, who.tenant, run_id)  # a part's trace id finds its run
    reason = redactor.text(reason, tally)
    context = redactor.mapping(context, tally)
    action, created = acts.request_action(
        wh, who.tenant, run.run_id, run.status, kind,
        reason=reason, context=context, requested_by=who.actor.label, idempotency_key=key,
    )  # fmt: skip
    if created:
        audit_log.record(
            wh, who.tenant, who.actor, f"run.{kind}", run.run_id,
            action_id=action.action_id, reason=reason, **_redacted(tally),
        )  # fmt: skip
    if outbox is not None:  # a repeat finds its event by the action's id and writes nothing
        outbox.append([action_requested(who.tenant, action, run.workflow_name, run.environment)])
    return action, created


def annotate(
    wh: Warehouse, book: PolicyBook, who: Caller, run_id: str, body: AnnotationRequest
) -> Annotation:
    """With a key the author is the key (name and id); without one (auth off), `body.author`."""
    who = scrubbed(who, book)
    run = find_run(wh, who.tenant, run_id)
    redactor, tally = book.redactor(who.tenant), Counter[str]()
    author = who.actor.label if who.principal is not None else redactor.text(body.author, tally)
    body = body.model_copy(
        update={"text": redactor.text(body.text, tally), "label": redactor.text(body.label, tally)}
    )
    note = acts.annotate(wh, who.tenant, run.run_id, body, author or who.actor.label)
    audit_log.record(
        wh, who.tenant, who.actor, "run.annotate", run.run_id,
        annotation_id=note.annotation_id, **_redacted(tally),
    )  # fmt: skip
    return note


def change_tags(wh: Warehouse, book: PolicyBook, who: Caller, run_id: str, body: TagsRequest) -> Tags:
    """Add and remove tags; a tag a redaction rule would change is refused, never stored altered."""
    who = scrubbed(who, book)
    run_id = find_run(wh, who.tenant, run_id).run_id
    redactor, tally = book.redactor(who.tenant), Counter[str]()
    matched = [f"add[{i}]" for i, t in enumerate(body.add) if redactor.text(t, tally) != t]
    if matched:
        raise InvalidInput(
            f"{', '.join(matched)}: tag(s) that match redaction rules ({', '.join(sorted(tally))}); "
            "a tag is stored as given or not at all"
        )
    # A tag stored before a rule matched it can still be removed (the audit entry names it
    # redacted); one the run has not is refused, as an add is: its removal would store it.
    guarded = [t for t in dict.fromkeys(body.remove) if redactor.text(t) != t]
    absent = set(guarded) - acts.tags_present(wh, who.tenant, run_id, guarded)
    if absent:
        places = [f"remove[{i}]" for i, t in enumerate(body.remove) if t in absent]
        for t in absent:
            redactor.text(t, tally)
        raise InvalidInput(
            f"{', '.join(places)}: tag(s) the run does not have that match redaction rules "
            f"({', '.join(sorted(tally))}); a tag is stored as given or not at all, its removal too"
        )
    add, removed = acts.change_tags(wh, who.tenant, run_id, body, who.actor.label)
    if add or removed:
        removed = [redactor.text(t) for t in removed]
        audit_log.record(wh, who.tenant, who.actor, "run.tag", run_id, add=add, remove=removed)
    return Tags(run_id=run_id, tags=tags_of(wh.reader, who.tenant, [run_id]).get(run_id, []))
