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
from analytics.runs import operations
from analytics.runs.detail import as_tree, find_run, run_detail, steps_of
from analytics.runs.export import MEDIA_TYPES
from analytics.runs.listing import MAX_LIMIT, RunFilter, list_runs
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
        action, created = operations.request(wh, book, outbox, who, run_id, kind, reason, context, key)
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
        return operations.annotate(wh, book, who, run_id, body)

    @router.post("/runs/{run_id}/tags", response_model=Tags, tags=["actions"])
    def tags(who: Operator, run_id: str, body: TagsRequest) -> Tags:
        return operations.change_tags(wh, book, who, run_id, body)

    return router
