"""The report scheduler of `wrm serve`: a daemon thread that runs each `[[reports]]` entry on its
cron schedule, in its time zone, writes the files under `reports_dir/<name>/`, records the report
(table `reports`) and announces it as a `report.ready` event.

A fire is identified by its scheduled time (UTC). At each tick a schedule runs when its latest
fire due (at or before now) is later than the last one it ran for, read from the warehouse once
at start: so a server that was down over one or many fires runs the schedule once at start-up
for the latest of them, a restart right after a run does not repeat it, and a schedule that
never ran waits for its first fire after start (nothing was missed). A run's failure (warehouse,
rendering, disk) is logged with the schedule's name and recorded as failed for that fire; the
thread goes on and the next fire comes as usual.

The period is the `period` whole UTC days ending the day before the fire's UTC date, so a fire
run late at start-up covers the days it would have covered on time. Where a time zone repeats an
hour (the autumn change), a wall time matching the schedule fires once, at its first occurrence.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from croniter import croniter

from analytics.reports.content import ReportData
from analytics.reports.gather import build as build_data
from analytics.reports.render import render as render_document
from analytics.reports.request import Comparison, ReportRequest, RequestError, parse_since
from analytics.reports.schedule import ReportSchedule
from analytics.reports.store import FAILED, READY, Report, ReportFile, ReportStore, report_id
from warehouse import Warehouse, WarehouseError, classify
from warehouse.outbox import Outbox, OutboxEvent, event_id

log = logging.getLogger(__name__)

Build = Callable[..., ReportData]
Render = Callable[[ReportData, str], bytes]
EXTENSIONS = {"html": "html", "pdf": "pdf", "md": "md"}


def last_whole_day(fire: datetime) -> date:
    """The last UTC day a fire reports on: the day before the fire's UTC date, the last one that
    is over (a Monday 07:00 weekly report covers Monday to Sunday, not a few hours of Monday)."""
    return fire.astimezone(UTC).date() - timedelta(days=1)


def latest_fire(cron: str, zone: str, now: datetime) -> datetime:
    """The schedule's latest fire time at or before `now`, in UTC. A wall time the zone repeats
    (autumn) is its first occurrence, so it fires once."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz) + timedelta(seconds=1)  # `now` itself counts as due
    fire: datetime = croniter(cron, local).get_prev(datetime)
    return _first_occurrence(fire, tz).astimezone(UTC)


def next_fire(cron: str, zone: str, after: datetime) -> datetime:
    """The schedule's first fire time after `after`, in UTC (a repeated wall time fires once)."""
    tz = ZoneInfo(zone)
    it = croniter(cron, after.astimezone(tz))
    while True:
        fire: datetime = it.get_next(datetime)
        first = _first_occurrence(fire, tz)
        if first.astimezone(UTC) > after.astimezone(UTC):
            return first.astimezone(UTC)


def _first_occurrence(fire: datetime, tz: ZoneInfo) -> datetime:
    wall = fire.astimezone(tz).replace(tzinfo=None)
    earlier = wall.replace(fold=0, tzinfo=tz)
    return earlier if earlier.utcoffset() != wall.replace(fold=1, tzinfo=tz).utcoffset() else fire


def file_name(name: str, fire: datetime, fmt: str) -> str:
    """`<name>_<YYYY-MM-DD>T<HHMM>Z.<ext>`: the fire time in UTC."""
    return f"{name}_{fire.astimezone(UTC).strftime('%Y-%m-%dT%H%MZ')}.{EXTENSIONS[fmt]}"


def download_link(rid: str, fmt: str) -> str:
    return f"/v1/reports/{rid}/{fmt}"


def write_atomically(path: Path, data: bytes) -> None:
    """A temporary file in the same folder, flushed to disk, then renamed over `path`: a reader
    sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes it 0600; a report is a document to share: the file it replaces keeps its
        # mode, a new one gets 0644
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def ready_event(report: Report) -> OutboxEvent:
    """The `report.ready` event of a stored report; the same report always makes the same event."""
    data = {
        "report_id": report.report_id, "name": report.name, "workflow": report.workflow,
        "environment": report.environment, "since": report.since.isoformat(),
        "until": report.until.isoformat(), "compare": report.compare,
        "scheduled_for": report.scheduled_for.isoformat().replace("+00:00", "Z"),
        "files": [
            {"format": f.format, "bytes": f.bytes, "download": download_link(report.report_id, f.format)}
            for f in report.files
        ],
    }  # fmt: skip
    return OutboxEvent(
        tenant_id=report.tenant_id,
        event_id=event_id(report.tenant_id, report.name, "report.ready", report.report_id),
        type="report.ready",
        occurred_at=report.created_at,
        data=json.dumps(data, separators=(",", ":")),
        workflow=report.workflow,
        environment=report.environment,
        status=READY,
    )


def _what(exc: BaseException) -> str:
    """What may be recorded and logged of a failure: never an engine message (it can quote SQL
    and data), nor a path or secret from elsewhere."""
    if isinstance(exc, (ClickHouseError, WarehouseError)):
        return classify(exc).summary()
    if isinstance(exc, RequestError):
        return str(exc)[:200]
    if isinstance(exc, OSError):
        return f"cannot write the file ({exc.strerror or type(exc).__name__})"
    return f"{type(exc).__name__} while building or rendering the report"


class ReportScheduler:
    """Runs `schedules` on `warehouse` (a handle of its own: gathering reads on its reader), into
    `reports_dir`, announcing to `outbox`. `now` is the clock (tests fix it); `build` and
    `render` default to analytics.reports'."""

    def __init__(
        self,
        warehouse: Warehouse,
        outbox: Outbox,
        schedules: Sequence[ReportSchedule],
        reports_dir: Path,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        build: Build | None = None,
        render: Render | None = None,
        tick_s: float = 1.0,
    ) -> None:
        self._wh = warehouse
        self.store = ReportStore(warehouse)
        self._outbox = outbox
        self.schedules = list(schedules)
        self.reports_dir = reports_dir
        self._now = now
        self._build = build
        self._render = render
        self.tick_s = tick_s
        self._done: dict[tuple[str, str], datetime] | None = None  # (tenant, name) → last fire run
        self._unsent: dict[str, OutboxEvent] = {}
        self._ticking = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error = ""

    def start(self) -> None:
        if self._thread is None and self.schedules:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="wrm-reports", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the run in progress, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_error = ""
            except Exception as exc:  # the thread outlives every failure; the next tick retries
                self.last_error = _what(exc)
                log.warning("report scheduler: %s; retrying next tick", self.last_error)
            self._stop.wait(self.tick_s)

    def _load(self) -> dict[tuple[str, str], datetime]:
        """The last fire each schedule ran for; one that never ran counts from now (it missed
        nothing). The newest report of each is offered to the outbox again (it skips an id it
        holds): a crash between the record and its event loses no event."""
        if self._done is None:
            known = self.store.last_fires()
            now = self._now()
            done: dict[tuple[str, str], datetime] = {}
            for s in self.schedules:
                key = (s.tenant, s.name)
                due = self._due(s)
                done[key] = known.get(key, due or now)
                if key in known:
                    newest = self.store.latest(s.tenant, s.name)
                    if newest is not None and newest.status == READY:
                        self._unsent[newest.report_id] = ready_event(newest)
            self._done = done
        return self._done

    def tick(self) -> list[Report]:
        """Run every schedule whose latest due fire it has not run yet; the reports made."""
        with self._ticking:
            done = self._load()
            self._send_unsent()
            made = []
            for s in self.schedules:
                if self._stop.is_set():
                    break
                due = self._due(s)
                if due is not None and due > done[(s.tenant, s.name)]:
                    made.append(self.run(s, due))
                    done[(s.tenant, s.name)] = due
            return made

    def _due(self, s: ReportSchedule) -> datetime | None:
        """The latest fire due; None for a cron line with no date to fire on (e.g. 30 February)."""
        try:
            return latest_fire(s.schedule, s.timezone, self._now())
        except (ValueError, KeyError, ArithmeticError) as exc:  # croniter's errors are ValueErrors
            log.error("report %s: no fire time for %r (%s)", s.name, s.schedule, type(exc).__name__)
            return None

    def _send_unsent(self) -> None:
        pending = list(self._unsent.values())
        if pending:
            self._outbox.append(pending)
            for e in pending:
                self._unsent.pop(e.event_id, None)

    def run(self, s: ReportSchedule, fire: datetime) -> Report:
        """Build, render, write, record and announce the report of fire time `fire`; a failure
        is recorded as a failed report (and raised only if even that record fails)."""
        until = last_whole_day(fire)
        rid = report_id(s.tenant, s.name, fire)
        try:
            request = ReportRequest(
                workflow=s.workflow, tenant=s.tenant, since=parse_since(s.period, until=until), until=until,
                environment=s.environment, compare=Comparison.parse(s.compare),
            )  # fmt: skip
            rendered = self._make(request, s.formats)
            files = self.deliver_files(s.name, fire, rendered)
            status, error = READY, ""
        except Exception as exc:
            status, error, files = FAILED, _what(exc), ()
            log.error(
                "report %s (tenant %s, fire %s): failed: %s", s.name, s.tenant, fire.isoformat(), error,
                exc_info=not isinstance(exc, (ClickHouseError, WarehouseError, RequestError, OSError)),
            )  # fmt: skip
        return self.record(s, fire, rid, status, error, files)

    def _make(self, request: ReportRequest, formats: Sequence[str]) -> dict[str, bytes]:
        build, render = self._build or build_data, self._render or render_document
        reader: Client = self._wh.reader
        data = build(reader, request, source="scheduled report")
        return {fmt: render(data, fmt) for fmt in formats}

    def deliver_files(
        self, name: str, fire: datetime, rendered: Mapping[str, bytes]
    ) -> tuple[ReportFile, ...]:
        """Write each format's bytes under `reports_dir/<name>/`; what the record lists."""
        files = []
        for fmt, data in rendered.items():
            relative = f"{name}/{file_name(name, fire, fmt)}"
            write_atomically(self.reports_dir / relative, data)
            files.append(ReportFile(fmt, relative, len(data), hashlib.sha256(data).hexdigest()))
        return tuple(files)

    def record(
        self,
        s: ReportSchedule,
        fire: datetime,
        rid: str,
        status: str,
        error: str,
        files: Sequence[ReportFile],
    ) -> Report:
        """Store the report, then offer its `report.ready` event (a failed one sends nothing)."""
        until = last_whole_day(fire)
        try:
            since = parse_since(s.period, until=until)
        except RequestError:
            since = until
        report = Report(
            tenant_id=s.tenant, report_id=rid, name=s.name, workflow=s.workflow, environment=s.environment,
            since=since, until=until, compare=s.compare, scheduled_for=fire, created_at=datetime.now(UTC),
            status=status, error=error, files=tuple(files),
        )  # fmt: skip
        self.store.record(report)
        if status == READY:
            self._unsent[ready_event(report).event_id] = ready_event(report)
            try:
                self._send_unsent()
            except Exception as exc:  # stored: the next tick offers it again
                log.warning(
                    "report %s: event not yet in the outbox (%s); retrying next tick", s.name, _what(exc)
                )
        log.info("report %s (tenant %s): %s for %s", s.name, s.tenant, status, fire.isoformat())
        return report
