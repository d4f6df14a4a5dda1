"""The run list: filters turned into a WHERE clause with bound parameters, keyset cursors, and
the page query over runs_by_time (sql/007), newest first or longest first.

A cursor is the sort key of the last run on a page (start time or duration, then run id),
base64url-encoded JSON tagged with the sort it belongs to; the next page continues strictly
after it, so runs arriving meanwhile never shift or repeat a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, cast

from clickhouse_connect.driver.client import Client

from analytics.runs.errors import InvalidInput
from analytics.runs.schemas import RunSummary
from warehouse.statuses import LIVE_RUN_STATUSES, RUN_STATUSES, RunStatus

MAX_LIMIT = 500
STATUSES = RUN_STATUSES  # the statuses a filter may ask for: every status the API shows
Sort = Literal["start", "duration"]

_CANCELS = (
    "(SELECT run_id FROM run_actions FINAL WHERE tenant_id = {tenant:String} AND kind = 'cancel' "
    "AND state = '%s')"
)
_PENDING, _DONE = _CANCELS % "pending", _CANCELS % "done"
_LIVE = f"status IN ({', '.join(repr(s) for s in LIVE_RUN_STATUSES)})"
# How each status the API shows is found: an engine's acknowledged cancel makes a live run
# canceled, a pending one makes it cancel_requested (see `shown_status`).
_STATUS_SQL: Mapping[str, str] = {
    "running": f"(status = 'running' AND run_id NOT IN {_PENDING} AND run_id NOT IN {_DONE})",
    "waiting_human": f"(status = 'waiting_human' AND run_id NOT IN {_PENDING} AND run_id NOT IN {_DONE})",
    "completed": "status = 'completed'",
    "failed": "status = 'failed'",
    "canceled": f"(status = 'canceled' OR ({_LIVE} AND run_id IN {_DONE}))",
    "cancel_requested": f"({_LIVE} AND run_id IN {_PENDING} AND run_id NOT IN {_DONE})",
}
COLUMNS = (
    "run_id, trace_id, workflow_name, workflow_version, environment, status, start_time, end_time, "
    "duration_ns, step_count, retries, input_tokens, output_tokens, cost_usd, first_pass, trace_ids"
)

# the columns a filter reads besides COLUMNS (`RunFilter.where`)
_FILTERED = "tenant_id, human_decisions, failure_kind, failure_reason"


@dataclass(frozen=True)
class RunFilter:
    workflow: str = ""
    version: str = ""
    environment: str = ""
    statuses: tuple[str, ...] = ()
    tag: str = ""
    since: datetime | None = None
    until: datetime | None = None
    min_duration_ms: float | None = None
    has_human_decisions: bool | None = None
    failure_text: str = ""
    failure_kind: str = ""
    tagged: tuple[str, ...] | None = None

    def with_tagged(self, client: Client, tenant: str) -> RunFilter:
        """The tag filter as the list of its run ids: a constant list lets the run_id bloom
        filter skip granules, which a subquery does not (a rare tag took ~380 ms at 1M runs)."""
        if not self.tag or self.tagged is not None:
            return self
        rows = client.query(
            "SELECT run_id FROM run_tags FINAL WHERE tenant_id = {tenant:String} AND tag = {tag:String} "
            "AND present = 1",
            parameters={"tenant": tenant, "tag": self.tag},
        ).result_rows
        return replace(self, tagged=tuple(str(r[0]) for r in rows))

    def where(self, tenant: str) -> tuple[str, dict[str, Any]]:
        """The WHERE clause (bound parameters only) and its parameters."""
        parts = ["tenant_id = {tenant:String}"]
        params: dict[str, Any] = {"tenant": tenant}
        for name, column in (
            ("workflow", "workflow_name"),
            ("version", "workflow_version"),
            ("environment", "environment"),
        ):
            value = getattr(self, name)
            if value:
                parts.append(f"{column} = {{{name}:String}}")
                params[name] = value
        bad = [s for s in self.statuses if s not in STATUSES]
        if bad:
            raise InvalidInput(f"unknown status {bad[0]!r}; statuses are {', '.join(STATUSES)}")
        if self.statuses:
            parts.append("(" + " OR ".join(_STATUS_SQL[s] for s in dict.fromkeys(self.statuses)) + ")")
        if self.tagged is not None:  # the tag's runs, looked up already (see `with_tagged`)
            parts.append("run_id IN {tagged:Array(String)}")
            params["tagged"] = list(self.tagged)
        elif self.tag:
            parts.append(
                "run_id IN (SELECT run_id FROM run_tags FINAL WHERE tenant_id = {tenant:String} "
                "AND tag = {tag:String} AND present = 1)"
            )
            params["tag"] = self.tag
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not _FIRST <= _naive_utc(value.replace(tzinfo=None)) <= _LAST:
                raise InvalidInput(f"`{name}` must be between {_FIRST:%Y-%m-%d} and {_LAST:%Y-%m-%d}")
        if self.since is not None:
            parts.append("start_time >= {since:DateTime64(6, 'UTC')}")
            params["since"] = _naive_utc(self.since)
        if self.until is not None:
            parts.append("start_time < {until:DateTime64(6, 'UTC')}")
            params["until"] = _naive_utc(self.until)
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidInput("`until` must be after `since`")
        if self.min_duration_ms is not None:
            if not 0 <= self.min_duration_ms <= _MAX_DURATION_MS:
                raise InvalidInput(f"`min_duration_ms` must be between 0 and {_MAX_DURATION_MS:.0f}")
            parts.append("duration_ns >= {min_ns:UInt64}")
            params["min_ns"] = int(self.min_duration_ms * 1_000_000)
        if self.has_human_decisions is not None:
            parts.append("human_decisions > 0" if self.has_human_decisions else "human_decisions = 0")
        if self.failure_kind:
            parts.append("failure_kind = {failure_kind:String}")
            params["failure_kind"] = self.failure_kind
        if self.failure_text:
            parts.append("positionCaseInsensitiveUTF8(failure_reason, {failure_text:String}) > 0")
            params["failure_text"] = self.failure_text
        return " AND ".join(parts), params


# What start times can hold (DateTime64(9): nanoseconds in an Int64), and durations (UInt64 ns)
_FIRST, _LAST = datetime(1900, 1, 1), datetime(2262, 4, 11)
_MAX_DURATION_MS = (2**63 - 1) / 1e6


def _naive_utc(value: datetime) -> datetime:
    """A time without a zone is UTC; one with a zone is converted to UTC."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Cursor:
    sort: Sort
    key: int
    run_id: str

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.key, self.run_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: Sort) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            got_sort, key, run_id = json.loads(raw)
            if not isinstance(key, int) or not isinstance(run_id, str):
                raise ValueError
        except (ValueError, TypeError, binascii.Error):
            raise InvalidInput("`cursor` is not a cursor this API returned") from None
        if got_sort != sort:
            raise InvalidInput(f"`cursor` belongs to sort={got_sort!r}, not sort={sort!r}")
        return cls(sort, key, run_id)


@dataclass
class Page:
    runs: list[RunSummary]
    next_cursor: str | None
    trace_ids: dict[str, list[str]] = field(default_factory=dict)  # run id: its parts


def shown_status(stored: str, cancel_states: Collection[str]) -> RunStatus:
    """The status the API shows, given the stored one and the states of the run's cancel actions."""
    if stored in LIVE_RUN_STATUSES:
        if "done" in cancel_states:
            return "canceled"
        if "pending" in cancel_states:
            return "cancel_requested"
    # A stored status (runs.status); the API models check it against RunStatus when built.
    return cast("RunStatus", stored)


def list_runs(
    client: Client,
    tenant: str,
    flt: RunFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
    sort: Sort = "start",
) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"`limit` must be between 1 and {MAX_LIMIT}")
    return _page(client, tenant, flt, limit, cursor, sort)


def _page(client: Client, tenant: str, flt: RunFilter, limit: int, cursor: str | None, sort: Sort) -> Page:
    if sort not in ("start", "duration"):
        raise InvalidInput("`sort` must be 'start' or 'duration'")
    where, params = flt.with_tagged(client, tenant).where(tenant)
    after = Cursor.decode(cursor, sort) if cursor else None
    rows = _ordered(client, where, params, limit + 1, after, sort)
    more = len(rows) > limit
    rows = rows[:limit]
    run_ids = [r[0] for r in rows]
    tags, cancels = marks_of(client, tenant, run_ids)
    runs = [_summary(r, tags.get(r[0], []), cancels.get(r[0], set())) for r in rows]
    next_cursor = Cursor(sort, int(rows[-1][-1]), rows[-1][0]).encode() if more and rows else None
    return Page(runs, next_cursor, {r[0]: list(r[15]) for r in rows})


_KEY = "toUnixTimestamp64Nano(start_time)"
# Each sort: the key expression a cursor holds, and how the candidates are ordered. Longest
# first reads runs_by_time's projection `by_duration` (sql/016), sorted by that key.
_SORT_KEY: Mapping[str, str] = {"start": _KEY, "duration": "ifNull(duration_ns, 0)"}
_ORDER: Mapping[str, str] = {
    "start": "start_time DESC, run_id DESC",
    "duration": "ifNull(duration_ns, 0) DESC, run_id DESC",
}
_AFTER: Mapping[str, str] = {
    "start": "(start_time, run_id) < (fromUnixTimestamp64Nano({s_key:Int64}, 'UTC'), {s_run:String})",
    "duration": "(ifNull(duration_ns, 0), run_id) < ({s_key:Int64}, {s_run:String})",
}


def _ordered(
    client: Client, where: str, params: dict[str, Any], want: int, after: Cursor | None, sort: Sort
) -> list[Any]:
    """The first `want` runs in `sort` order, without FINAL over the whole list.

    FINAL on runs_by_time costs 40-110 ms at a million runs whatever the page size, and a sort by
    duration with FINAL sorts every run (~170 ms). So: candidates are read in sort order without
    FINAL (older versions and hiding rows included, a short read in reverse key order of the
    table or of its projection by duration), then checked with FINAL on just their keys' start
    times (a set the primary key finds, however far apart the candidates are), which applies the
    filter to each run's current version. A candidate whose current version no longer matches, or
    sorts elsewhere (a run whose duration changed), drops out: its current version, when it
    matches, is a candidate of its own at its own place. The scan goes on until the page is full.
    """
    out: list[Any] = []
    seen: set[str] = set()
    scan_key, scan_run = (after.key, after.run_id) if after else (None, None)
    batch = max(want + want // 8 + 2, 16)
    while len(out) < want:
        cond = f"{where} AND is_deleted = 0"
        bound = dict(params)
        if scan_key is not None:
            cond += " AND " + _AFTER[sort]
            bound.update(s_key=scan_key, s_run=scan_run)
        candidates = client.query(
            f"SELECT {_SORT_KEY[sort]}, {_KEY}, run_id FROM runs_by_time WHERE {cond} "
            f"ORDER BY {_ORDER[sort]} LIMIT {{batch:UInt32}}",
            parameters={**bound, "batch": batch},
        ).result_rows
        keys = list(dict.fromkeys((int(k), int(s), str(r)) for k, s, r in candidates))
        placed = {(r, k) for k, _, r in keys}  # (run, sort key) of each candidate
        fresh = list(dict.fromkeys(r for _, _, r in keys if r not in seen))
        if fresh:
            current = (_current_by_start if sort == "start" else _current_by_duration)(
                client, where, params, keys, fresh
            )
            for row in current:
                at = (int(row[-1]), row[0])
                if (
                    row[0] not in seen
                    and (row[0], at[0]) in placed
                    and (after is None or at < (after.key, after.run_id))
                ):
                    seen.add(row[0])
                    out.append(row)
        if len(candidates) < batch:
            break
        scan_key, _, scan_run = keys[-1]
        batch = min(batch * 4, 20_000)
    out.sort(key=lambda r: (int(r[-1]), r[0]), reverse=True)
    return out[:want]


def _current_by_start(
    client: Client, where: str, params: dict[str, Any], keys: list[tuple[int, int, str]], fresh: list[str]
) -> list[Any]:
    """The current version of each candidate run, where it matches: FINAL on the candidates' keys."""
    return list(
        client.query(
            f"SELECT {COLUMNS}, {_KEY} AS sort_key FROM runs_by_time FINAL WHERE {where} "
            "AND start_time IN (SELECT fromUnixTimestamp64Nano(arrayJoin({starts:Array(Int64)}), 'UTC')) "
            "AND run_id IN {runs:Array(String)}",
            parameters={**params, "starts": sorted({s for _, s, _ in keys}), "runs": fresh},
        ).result_rows
    )


def _current_by_duration(
    client: Client, where: str, params: dict[str, Any], keys: list[tuple[int, int, str]], fresh: list[str]
) -> list[Any]:
    """The same for the longest-first candidates, read from the projection by duration where they
    lie together (at their start-time keys they are scattered over the whole table: ~100 ms for a
    page's worth at 1M runs): the newest row at each candidate's (duration, run id), unless it
    hides the run. That is the run's current version, as FINAL on runs_by_time would give it,
    because a run's duration only changes when it is assembled again, and the assembler first
    writes an is_deleted copy of its current row (statements/unlist_runs.sql), which shares that
    row's duration; the writers that skip that step (abandon_frozen_runs, drop_empty_runs) keep
    the duration and the start time."""
    unseen = set(fresh)
    wanted = [(k, r) for k, _, r in keys if r in unseen]
    return list(
        client.query(
            f"SELECT {COLUMNS}, sort_key FROM ("
            f"SELECT {COLUMNS}, {_FILTERED}, is_deleted, ifNull(duration_ns, 0) AS sort_key "
            "FROM runs_by_time WHERE tenant_id = {tenant:String} "
            "AND (ifNull(duration_ns, 0), run_id) IN {keys:Array(Tuple(UInt64, String))} "
            "ORDER BY sort_key DESC, run_id DESC, assembled_at DESC LIMIT 1 BY sort_key, run_id"
            f") WHERE is_deleted = 0 AND {where}",
            parameters={**params, "keys": wanted},
        ).result_rows
    )


def iter_runs(client: Client, tenant: str, flt: RunFilter, batch: int = 5_000) -> Iterator[Page]:
    """Every matching run, newest first, `batch` at a time (memory bounded by the batch)."""
    cursor: str | None = None
    while True:
        page = _page(client, tenant, flt, batch, cursor, "start")
        if page.runs:
            yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def count_runs(client: Client, tenant: str, flt: RunFilter) -> int:
    where, params = flt.where(tenant)
    return int(
        client.query(f"SELECT count() FROM runs_by_time FINAL WHERE {where}", parameters=params).result_rows[
            0
        ][0]
    )


def tags_of(client: Client, tenant: str, run_ids: list[str]) -> dict[str, list[str]]:
    if not run_ids:
        return {}
    rows = client.query(
        "SELECT run_id, arraySort(groupArray(tag)) FROM run_tags FINAL WHERE tenant_id = {tenant:String} "
        "AND run_id IN {ids:Array(String)} AND present = 1 GROUP BY run_id",
        parameters={"tenant": tenant, "ids": run_ids},
    ).result_rows
    return {str(r[0]): list(r[1]) for r in rows}


_TAGS = (
    "SELECT run_id, 'tag', arraySort(groupArray(tag)) FROM run_tags FINAL WHERE tenant_id = {tenant:String} "
    "AND run_id IN {ids:Array(String)} AND present = 1 GROUP BY run_id"
)
_CANCEL_STATES = (
    "SELECT run_id, 'cancel', groupUniqArray(state) FROM run_actions FINAL WHERE tenant_id = {tenant:String} "
    "AND kind = 'cancel' AND run_id IN {ids:Array(String)} GROUP BY run_id"
)


def marks_of(
    client: Client, tenant: str, run_ids: list[str]
) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """`tags_of` and `cancel_states` in one statement (every statement costs 2-4 ms of its own)."""
    tags: dict[str, list[str]] = {}
    cancels: dict[str, set[str]] = {}
    if not run_ids:
        return tags, cancels
    rows = client.query(
        f"{_TAGS} UNION ALL {_CANCEL_STATES}", parameters={"tenant": tenant, "ids": run_ids}
    ).result_rows
    for run_id, kind, values in rows:
        if kind == "tag":
            tags[str(run_id)] = list(values)
        else:
            cancels[str(run_id)] = set(values)
    return tags, cancels


def cancel_states(client: Client, tenant: str, run_ids: list[str]) -> dict[str, set[str]]:
    if not run_ids:
        return {}
    rows = client.query(
        "SELECT run_id, groupUniqArray(state) FROM run_actions FINAL WHERE tenant_id = {tenant:String} "
        "AND kind = 'cancel' AND run_id IN {ids:Array(String)} GROUP BY run_id",
        parameters={"tenant": tenant, "ids": run_ids},
    ).result_rows
    return {str(r[0]): set(r[1]) for r in rows}


def _summary(r: tuple[Any, ...], tags: list[str], cancels: set[str]) -> RunSummary:
    return RunSummary(
        run_id=r[0],
        trace_id=r[1],
        workflow=r[2],
        version=r[3],
        environment=r[4],
        status=shown_status(r[5], cancels),
        start_time=r[6],
        end_time=r[7],
        duration_ms=None if r[8] is None else r[8] / 1e6,
        step_count=r[9],
        retries=r[10],
        input_tokens=r[11],
        output_tokens=r[12],
        cost_usd=r[13],
        first_pass=bool(r[14]),
        tags=tags,
    )
