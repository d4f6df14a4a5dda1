"""/v1: runs, steps, actions, annotations and tags. Handlers only bind HTTP to analytics.runs;
errors are raised as analytics.runs.errors and rendered by analytics.api.problems.

What operators and engines write (annotation text, label and author, tags, action reasons,
re-run context, acknowledgement messages) is redacted with the tenant's policy before it is
stored or audited, as spans are: a tag a rule would change is refused rather than stored altered
(removing one the run has is allowed), and so is such an Idempotency-Key.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse

from access import audit as audit_log
from analytics.api.caller import Caller, Operator, Viewer, scrubbed
from analytics.api.export_stream import Exports
from analytics.runs import actions as acts
from analytics.runs.detail import as_tree, find_run, run_detail, steps_of
from analytics.runs.errors import InvalidInput
from analytics.runs.export import MEDIA_TYPES
from analytics.runs.listing import MAX_LIMIT, RunFilter, list_runs, tags_of
from analytics.runs.schemas import (
    AckRequest,
    Action,
    ActionKind,
    Annotation,
    AnnotationRequest,
    CancelRequest,
    RerunRequest,
    RunDetail,
    RunPage,
    StepList,
    Tags,
    TagsRequest,
)
from analytics.webhooks.app_events import action_requested
from redaction.book import PolicyBook
from redaction.policy import Policy
from warehouse import Warehouse
from warehouse.outbox import Outbox


def run_filter(
    workflow: Annotated[str, Query(max_length=200)] = "",
    version: Annotated[str, Query(max_length=200)] = "",
    environment: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[list[str] | None, Query(description="repeat for several")] = None,
    tag: Annotated[str, Query(max_length=64)] = "",
    since: datetime | None = None,
    until: datetime | None = None,
    min_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    has_human_decisions: bool | None = None,
    failure_text: Annotated[str, Query(max_length=500, description="text in the failure reason")] = "",
    failure_kind: Annotated[
        Literal["", "error", "timeout", "validation", "rejected_by_human", "abandoned"],
        Query(description="why a failed run failed; `abandoned`: no span came for its stale_run_after"),
    ] = "",
) -> RunFilter:
    return RunFilter(
        workflow=workflow,
        version=version,
        environment=environment,
        statuses=tuple(status or ()),
        tag=tag,
        since=since,
        until=until,
        min_duration_ms=min_duration_ms,
        has_human_decisions=has_human_decisions,
        failure_text=failure_text,
        failure_kind=failure_kind,
    )


Filter = Annotated[RunFilter, Depends(run_filter)]


def _redacted(tally: Counter[str]) -> dict[str, dict[str, int]]:
    """What an audit entry adds when redaction changed the request: rule names and counts."""
    return {"redacted": dict(sorted(tally.items()))} if tally else {}


def build_router(
    wh: Warehouse,
    max_exports: int = 2,
    policies: PolicyBook | None = None,
    outbox: Outbox | None = None,
    shared_exports: Exports | None = None,
) -> APIRouter:
    """`wh`: a handle of the API's own (reads on its reader, writes on its client);
    `max_exports`: exports streaming at once (`shared_exports`: slots shared with the console),
    each on an engine handle of its own; one more is answered 429 with Retry-After.
    Viewers read, operators act.
    `policies`: the redaction policies (None: the built-in defaults alone); `outbox`: where a new
    re-run or cancel is announced as an action.requested event (None: not announced)."""
    router = APIRouter(prefix="/v1", tags=["runs"])
    book = policies or PolicyBook(Policy(), {}, b"")

    def _scrubbed(who: Caller) -> Caller:
        return scrubbed(who, book)

    exports = shared_exports or Exports(wh, max_exports)

    @router.get("/runs", response_model=RunPage)
    def get_runs(
        who: Viewer,
        flt: Filter,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
        sort: Literal["start", "duration"] = "start",
    ) -> RunPage:
        """Runs, newest first (or longest first), a page at a time."""
        page = list_runs(wh.reader, who.tenant, flt, limit=limit, cursor=cursor, sort=sort)
        return RunPage(runs=page.runs, next_cursor=page.next_cursor)

    @router.get(
        "/runs/export",
        response_class=StreamingResponse,
        responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
    )
    def export(
        who: Viewer,
        flt: Filter,
        format: Literal["csv", "jsonl", "parquet"] = "csv",
        steps: bool = False,
    ) -> StreamingResponse:
        """Every run matching the list's filters, newest first, streamed (memory stays flat);
        `steps=true` adds each run's steps. `X-WRM-Run-Count` says how many runs follow."""
        return exports.response(who.tenant, flt, format, steps)

    @router.get("/runs/{run_id}", response_model=RunDetail)
    def get_run(who: Viewer, run_id: str) -> RunDetail:
        """The run with its timeline, annotations, actions and re-run lineage."""
        return run_detail(wh, who.tenant, run_id)

    @router.get("/runs/{run_id}/steps", response_model=StepList)
    def get_steps(who: Viewer, run_id: str, view: Literal["tree", "flat"] = "tree") -> StepList:
        """Steps with usage, validation and last error: nested by parent step, or flat in start order."""
        run = find_run(wh, who.tenant, run_id)
        steps = steps_of(wh, who.tenant, run)
        return StepList(run_id=run.run_id, view=view, steps=as_tree(steps) if view == "tree" else steps)

    def _act(
        who: Caller,
        run_id: str,
        kind: ActionKind,
        reason: str,
        context: dict[str, object],
        key: str,
        response: Response,
    ) -> Action:
        who = _scrubbed(who)
        redactor, tally = book.redactor(who.tenant), Counter[str]()
        if redactor.text(key, tally) != key:  # stored as given (an opaque client id), or refused
            raise InvalidInput(
                f"the Idempotency-Key header matches redaction rules ({', '.join(sorted(tally))}); "
                "use a key no rule changes, such as a random UUID"
            )
        run = find_run(wh, who.tenant, run_id)  # a part's trace id finds its run
        reason = redactor.text(reason, tally)
        context = redactor.mapping(context, tally)
        action, created = acts.request_action(
            wh,
            who.tenant,
            run.run_id,
            run.status,
            kind,
            reason=reason,
            context=context,
            requested_by=who.actor.label,
            idempotency_key=key,
        )
        if created:
            audit_log.record(
                wh,
                who.tenant,
                who.actor,
                f"run.{kind}",
                run.run_id,
                action_id=action.action_id,
                reason=reason,
                **_redacted(tally),
            )
        if outbox is not None:  # a repeat finds its event by the action's id and writes nothing
            outbox.append([action_requested(who.tenant, action, run.workflow_name, run.environment)])
        response.status_code = 201 if created else 200
        return action

    @router.post("/runs/{run_id}/rerun", response_model=Action, status_code=201, tags=["actions"])
    def rerun(
        who: Operator,
        run_id: str,
        body: RerunRequest,
        response: Response,
        idempotency_key: Annotated[str, Header(max_length=200)] = "",
    ) -> Action:
        """Ask the engine to run this again with `context`. 201 when recorded, 200 for a repeat
        of an earlier Idempotency-Key."""
        return _act(who, run_id, "rerun", body.reason, body.context, idempotency_key, response)

    @router.post("/runs/{run_id}/cancel", response_model=Action, status_code=201, tags=["actions"])
    def cancel(
        who: Operator,
        run_id: str,
        body: CancelRequest,
        response: Response,
        idempotency_key: Annotated[str, Header(max_length=200)] = "",
    ) -> Action:
        """Ask the engine to cancel the run; it shows `cancel_requested` until the engine
        acknowledges. 409 when the run already finished."""
        return _act(who, run_id, "cancel", body.reason, {}, idempotency_key, response)

    @router.get("/actions", response_model=list[Action], tags=["actions"])
    def get_actions(
        who: Operator,
        state: Literal["", "pending", "done", "failed", "rejected"] = "",
        kind: Literal["", "rerun", "cancel"] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    ) -> list[Action]:
        """The feed engines poll: `?state=pending` gives what they have still to do, oldest first."""
        return acts.list_actions(wh, who.tenant, state, kind, limit)

    @router.post("/actions/{action_id}/ack", response_model=Action, tags=["actions"])
    def ack(who: Operator, action_id: str, body: AckRequest) -> Action:
        """The engine reports the outcome; a re-run may name the run it started."""
        who, tally = _scrubbed(who), Counter[str]()
        body = body.model_copy(update={"message": book.redactor(who.tenant).text(body.message, tally)})
        done, changed = acts.acknowledge(wh, who.tenant, action_id, body, who.actor.label)
        if changed:
            audit_log.record(
                wh, who.tenant, who.actor, "action.ack", action_id,
                run_id=done.run_id, outcome=done.state, **_redacted(tally),
            )  # fmt: skip
        return done

    @router.post("/runs/{run_id}/annotations", response_model=Annotation, status_code=201, tags=["actions"])
    def annotate(who: Operator, run_id: str, body: AnnotationRequest) -> Annotation:
        """With a key the author is the key (name and id); without one (auth off), `author`."""
        who = _scrubbed(who)
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

    @router.post("/runs/{run_id}/tags", response_model=Tags, tags=["actions"])
    def tags(who: Operator, run_id: str, body: TagsRequest) -> Tags:
        who = _scrubbed(who)
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

    return router
