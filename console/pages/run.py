"""One run at /ui/runs/{run_id}: its facts, timeline, step tree, lineage and notes, read as
`GET /v1/runs/{id}` and `GET /v1/runs/{id}/steps` read them; and, for operators and admins, the
actions re-run, cancel, annotate and tag. Each action is confirmed on a page of its own
(`GET .../confirm/{action}`, no script needed) that says what will happen and holds the form;
its POST does what the API route does and sends the browser back to the run with a notice of
the resulting state. A viewer sees no action and a viewer's POST is refused (403), as is a form
without the console's CSRF token (400): nothing is done in either case."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from access import Forbidden
from analytics import figures
from analytics.runs.detail import as_tree, run_detail, run_detail_and_steps
from analytics.runs.errors import UnknownItem
from analytics.runs.schemas import RunDetail, Step, TimelineEvent
from console import session
from console.base import HEADERS, Console
from console.pages.run_actions import ACTIONS, Done, FormProblem, perform, read
from console.session import Visitor
from warehouse.statuses import LIVE_RUN_STATUSES

FAILED_KINDS = ("step.failed", "run.failed")


def label(e: TimelineEvent) -> str:
    """A timeline event as a person reads it."""
    attempt = f" (attempt {e.attempt})" if e.attempt > 1 else ""
    match e.kind:
        case "run.started":
            return "Run started"
        case "step.started":
            return f"Step {e.name} started{attempt}"
        case "step.retried":
            return f"Retry: step {e.name}, attempt {e.attempt}"
        case "step.completed":
            return f"Step {e.name} completed{attempt}"
        case "step.failed":
            return f"Step failed: {e.name}{attempt}"
        case "human.waiting":
            return "Waiting for a person"
        case "human.decided":
            by = f" by {e.actor}" if e.actor else ""
            wait = f" after {figures.duration(e.wait_ms / 1000)}" if e.wait_ms else ""
            return f"Decision: {e.detail}{by}{wait}"
        case "run.completed" | "run.failed" | "run.canceled":
            return "Run " + e.kind.split(".")[1]
        case "action.requested":
            return f"Action requested by {e.actor}" if e.actor else "Action requested"
        case "action.acknowledged":
            return f"Engine answered ({e.actor})" if e.actor else "Engine answered"
        case _:  # "annotation"
            return f"Note by {e.actor}" if e.actor else "Note"


def tenant_query(who: Visitor) -> str:
    """`tenant=...` for a platform caller looking at another tenant, as the run list links."""
    return urlencode({"tenant": who.tenant}) if who.platform and who.tenant != "default" else ""


def run_link(who: Visitor, run_id: str, suffix: str = "", **query: str) -> str:
    parts = [p for p in (tenant_query(who), urlencode(query) if query else "") if p]
    return f"/ui/runs/{quote(run_id, safe='')}{suffix}" + ("?" + "&".join(parts) if parts else "")


def notice(detail: RunDetail, done: str, item: str) -> tuple[str, str] | None:
    """(title, state) of what the operator just did, read from the run as it is now."""
    if done in ("rerun", "cancel"):
        a = next((a for a in detail.actions if a.action_id == item), None)
        if a is None:
            return None
        what = "Re-run requested" if done == "rerun" else "Cancel requested"
        status = detail.status.replace("_", " ")
        return what, f"action {a.action_id[:8]} is {a.state}; the run now reads {status}"
    if done == "annotate" and any(n.annotation_id == item for n in detail.annotations):
        return "Note added", f"the run has {len(detail.annotations)} note(s)"
    if done == "tag":
        return "Tags changed", "tags now: " + (", ".join(detail.tags) or "none")
    return None


def cancel_blocked(detail: RunDetail) -> str:
    """Why the run cannot be canceled now ('' when it can)."""
    if detail.status == "cancel_requested":
        return "A cancel is already pending: the engine has not answered yet."
    if detail.status not in LIVE_RUN_STATUSES:
        status = detail.status.replace("_", " ")
        return f"Cannot be canceled: the run is {status}; only a running or waiting run can be."
    return ""


def _load(console: Console, tenant: str, run_id: str) -> tuple[RunDetail, list[Step]]:
    detail, steps = run_detail_and_steps(console.wh, tenant, run_id)
    return detail, as_tree(steps)


def add_routes(router: APIRouter, console: Console) -> None:
    def page(request: Request, who: Visitor, template: str, status: int = 200, **context: Any) -> Response:
        return console.render(
            request, who, template, status, tq=tenant_query(who), run_link=run_link,
            score=figures.score, **context,
        )  # fmt: skip

    @router.get("/runs/{run_id}", include_in_schema=False)
    @console.page_route
    async def run_page(request: Request, run_id: str) -> Response:
        who = await console.visitor(request)
        detail, steps = await run_in_threadpool(_load, console, who.tenant, run_id)
        q = request.query_params
        shown = notice(detail, q.get("done", ""), q.get("id", ""))
        events = [(e, label(e), e.kind in FAILED_KINDS) for e in detail.timeline]
        return page(
            request, who, "run.html.j2", run=detail, steps=steps, events=events, notice=shown,
            cancel_blocked=cancel_blocked(detail),
        )  # fmt: skip

    def confirm(
        request: Request, who: Visitor, detail: RunDetail, action: str, status: int = 200, **form: Any
    ) -> Response:
        values = {"key": str(uuid.uuid4()), "reason": "", "context": "{}", "text": "", "label": ""}
        values |= {"score": "", "tag": request.query_params.get("remove", ""), "change": "add"}
        if request.query_params.get("remove"):
            values["change"] = "remove"
        values |= form.get("values", {})
        return page(
            request, who, "confirm.html.j2", status, run=detail, action=action, values=values,
            errors=form.get("errors", {}), cancel_blocked=cancel_blocked(detail),
        )  # fmt: skip

    @router.get("/runs/{run_id}/confirm/{action}", include_in_schema=False)
    @console.page_route
    async def confirm_page(request: Request, run_id: str, action: str) -> Response:
        who = await console.visitor(request)
        if action not in ACTIONS:
            raise UnknownItem(f"no action {action[:40]!r}: re-run, cancel, annotate or tag")
        if not who.may_act:
            raise Forbidden("a viewer may look at runs but not act on them")
        detail = await run_in_threadpool(run_detail, console.wh, who.tenant, run_id)
        return confirm(request, who, detail, action)

    @router.post("/runs/{run_id}/{action}", include_in_schema=False)
    @console.page_route
    async def act(request: Request, run_id: str, action: str) -> Response:
        who = await console.visitor(request)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        session.check_form(request, form.get(session.CSRF_FIELD, ""))
        if action not in ACTIONS:
            raise UnknownItem(f"no action {action[:40]!r}: re-run, cancel, annotate or tag")
        if not who.may_act:
            raise Forbidden("a viewer may look at runs but not act on them")
        try:
            body = read(action, form)
            done: Done = await run_in_threadpool(
                perform, console, who.caller, run_id, action, body, form.get("key", "")
            )
        except FormProblem as exc:
            detail = await run_in_threadpool(run_detail, console.wh, who.tenant, run_id)
            values = exc.values or {k: v for k, v in form.items() if k != session.CSRF_FIELD}
            return confirm(request, who, detail, action, 400, values=values, errors=exc.errors)
        back = run_link(who, run_id, done=done.action, id=done.item_id)
        return RedirectResponse(back, status_code=303, headers=HEADERS)
