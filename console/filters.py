"""The run list's filters read from a page's query string: the same fields as `GET /v1/runs`,
checked here so a bad value is shown next to its field instead of failing the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from analytics.runs.listing import STATUSES, RunFilter

FAILURE_KINDS = ("", "error", "timeout", "validation", "rejected_by_human", "abandoned")
TEXT_FIELDS = {"workflow": 200, "version": 200, "environment": 200, "tag": 64, "failure_text": 500}
SORTS = ("start", "duration")


@dataclass
class ListQuery:
    """What the page was asked for, as the form shows it back, and the filter it makes."""

    values: dict[str, str] = field(default_factory=dict)
    statuses: tuple[str, ...] = ()
    sort: Literal["start", "duration"] = "start"
    cursor: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    filter: RunFilter = field(default_factory=RunFilter)

    def link(self, **changes: str | None) -> str:
        """This page's query string with `changes` (None drops a field): for paging and export."""
        pairs: list[tuple[str, str]] = [(k, v) for k, v in self.values.items() if v]
        pairs += [("status", s) for s in self.statuses]
        if self.sort != "start":
            pairs.append(("sort", self.sort))
        keep = dict.fromkeys(k for k, _ in pairs)
        for name, value in changes.items():
            pairs = [(k, v) for k, v in pairs if k != name]
            if value is not None:
                pairs.append((name, value))
                keep[name] = None
        return urlencode(pairs)

    def filter_link(self) -> str:
        """The filters alone (no paging, no sort): what an export or a refresh takes."""
        pairs = [(k, v) for k, v in self.values.items() if v] + [("status", s) for s in self.statuses]
        return urlencode(pairs)


def _moment(text: str, end: bool) -> datetime:
    """A date (the day's start, or for `until` the next day's start) or an ISO 8601 time."""
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read(params: QueryParams) -> ListQuery:
    q = ListQuery()
    # passed through in every link (paging, refresh, export): the platform's choice of tenant;
    # a tenant key's own tenant wins over it (console.session)
    tenant = params.get("tenant", "").strip()[:64]
    if tenant:
        q.values["tenant"] = tenant
    for name, limit in TEXT_FIELDS.items():
        value = params.get(name, "").strip()
        if len(value) > limit:
            q.errors[name] = f"at most {limit} characters"
            value = value[:limit]
        q.values[name] = value
    wanted = tuple(dict.fromkeys(s for s in params.getlist("status") if s))
    unknown = [s for s in wanted if s not in STATUSES]
    if unknown:
        q.errors["status"] = f"unknown status {unknown[0][:40]!r}"
    q.statuses = tuple(s for s in wanted if s in STATUSES)
    moments: dict[str, datetime | None] = {"since": None, "until": None}
    for name in moments:
        value = params.get(name, "").strip()[:40]
        q.values[name] = value
        if value:
            try:
                moments[name] = _moment(value, end=name == "until")
            except ValueError:
                q.errors[name] = "a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)"
    minimum: float | None = None
    value = params.get("min_duration_s", "").strip()[:20]
    q.values["min_duration_s"] = value
    if value:
        try:
            minimum = float(value)
            if not minimum >= 0:
                raise ValueError
        except ValueError:
            q.errors["min_duration_s"] = "a number of seconds, 0 or more"
            minimum = None
    kind = params.get("failure_kind", "")
    if kind not in FAILURE_KINDS:
        q.errors["failure_kind"] = "unknown failure kind"
        kind = ""
    q.values["failure_kind"] = kind
    human = params.get("human", "")
    q.values["human"] = human if human in ("yes", "no") else ""
    sort = params.get("sort", "start")
    q.sort = "duration" if sort == "duration" else "start"
    cursor = params.get("cursor", "")
    q.cursor = cursor[:1000] or None
    q.filter = RunFilter(
        workflow=q.values["workflow"],
        version=q.values["version"],
        environment=q.values["environment"],
        statuses=q.statuses,
        tag=q.values["tag"],
        since=moments["since"],
        until=moments["until"],
        min_duration_ms=None if minimum is None else minimum * 1000,
        has_human_decisions={"yes": True, "no": False}.get(q.values["human"]),
        failure_text=q.values["failure_text"],
        failure_kind=kind,
    )
    return q
