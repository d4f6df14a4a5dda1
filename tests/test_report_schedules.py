"""Scheduled reports (issue 16, item 6): a real `wrm serve` with a `* * * * *` schedule and a daily
one, fed with synthetic runs, writes a report within a minute under reports_dir/<name>/, lists it
at /v1/reports with a download link that returns the same bytes, and announces it as a signed
`report.ready` webhook; another tenant sees nothing of it; a record pointing outside reports_dir
is refused and a deleted file is a 410. The scheduler class with a fixed clock: a schedule
missed while the server was down runs once at start-up, a restart after a run does not repeat
it, a failure is recorded and the thread goes on. Cron in a time zone across DST, and the
settings that refuse a bad entry."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from analytics.reports.content import ReportData
from analytics.reports.request import ReportRequest
from analytics.reports.schedule import ReportSchedule
from analytics.reports.scheduler import ReportScheduler, file_name, latest_fire, next_fire
from analytics.reports.store import FAILED, READY, Report, ReportFile, report_id
from tests.conftest import module_server, settle
from tests.indicator_data import VersionPlan, plan, send
from tests.webhook_receiver import Receiver
from warehouse import Warehouse
from wrm.cli import main
from wrm.server import WrmServer
from wrm.settings import SettingsError, load_settings

ADMIN_KEY = "platform-admin-" + "r" * 40
RUNS = plan([VersionPlan("v1", range(3, 0, -1), 4, 2, 1, 5, (100, 10), 2, 0.7)])  # 12 runs
DAILY_HOUR = (datetime.now(UTC).hour + 12) % 24  # never due while this module runs
SCHEDULES = [
    {"name": "minutely", "workflow": "triage", "tenant": "acme", "schedule": "* * * * *", "period": "7d",
     "formats": ["html", "md"]},
    {"name": "daily", "workflow": "triage", "tenant": "acme", "schedule": f"0 {DAILY_HOUR} * * *",
     "timezone": "Europe/Paris", "formats": ["pdf"]},
]  # fmt: skip


@dataclass
class Env:
    server: WrmServer
    url: str
    reports_dir: Path
    receiver: Receiver
    secret: str
    keys: dict[str, str]  # acme viewer, globex viewer

    def client(self, who: str = "acme") -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {self.keys[who]}"}
        )

    @property
    def scheduler(self) -> ReportScheduler:
        assert self.server.notifications is not None
        return self.server.notifications.reports


@pytest.fixture(scope="module")
def env(engine_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    reports_dir = tmp_path_factory.mktemp("reports")
    receiver = Receiver()
    overrides: dict[str, Any] = {
        "auth": "required", "admin_key": ADMIN_KEY, "reports_dir": reports_dir, "reports": SCHEDULES,
        "webhooks_allow_private": True, "webhooks_first_retry_s": 0.2, "webhooks_poll_ms": 50,
    }  # fmt: skip
    with module_server(engine_dir, **overrides) as srv:
        keys = {t: srv.create_key(t, "viewer", f"{t}-viewer") for t in ("acme", "globex")}
        send(srv.otlp_address, RUNS, "triage", key=srv.create_key("acme", "ingest", "acme-ingest"))
        settle(srv)
        admin = srv.create_key("acme", "admin", "acme-admin")
        with httpx.Client(base_url=f"http://{srv.http_address}", timeout=30) as c:
            made = c.post(
                "/v1/webhooks",
                json={"url": receiver.url("/reports"), "events": ["report.*"]},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert made.status_code == 201, made.text
        yield Env(srv, f"http://{srv.http_address}", reports_dir, receiver, made.json()["secret"], keys)
    receiver.close()


def _seed(env: Env, name: str, tenant: str = "acme", formats: tuple[str, ...] = ("html", "md")) -> Report:
    """A report through the scheduler's own write-record-announce path, without gathering."""
    schedule = ReportSchedule(name=name, workflow="triage", tenant=tenant, schedule="0 3 * * *")
    fire = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    rendered = {fmt: f"<p>{name} {fmt}</p>".encode() for fmt in formats}
    files = env.scheduler.deliver_files(name, fire, rendered)
    return env.scheduler.record(schedule, fire, report_id(tenant, name, fire), READY, "", files)


# the served reports


def test_a_recorded_report_is_announced_signed_with_its_links(env: Env) -> None:
    seeded = _seed(env, "announced", formats=("md", "html"))

    def mine() -> list[dict[str, Any]]:
        got = [r.verify(env.secret) for r in env.receiver.on("/reports")]
        return [p for p in got if p["data"]["report_id"] == seeded.report_id]

    env.receiver.wait_for(lambda: bool(mine()))
    event = mine()[0]
    assert event["type"] == "report.ready"
    assert event["data"] == {
        "report_id": seeded.report_id, "name": "announced", "workflow": "triage", "environment": "",
        "since": "2025-12-29", "until": "2026-01-04", "compare": "previous",
        "scheduled_for": "2026-01-05T03:00:00Z",
        "files": [
            {"format": "md", "bytes": 19, "download": f"/v1/reports/{seeded.report_id}/md"},
            {"format": "html", "bytes": 21, "download": f"/v1/reports/{seeded.report_id}/html"},
        ],
    }  # fmt: skip
    # recorded again (a restart re-offering it): one event
    env.scheduler.record(*_again(seeded))
    time.sleep(0.5)
    assert len(mine()) == 1


def _again(r: Report) -> tuple[ReportSchedule, datetime, str, str, str, tuple[ReportFile, ...]]:
    schedule = ReportSchedule(name=r.name, workflow=r.workflow, tenant=r.tenant_id, schedule="0 3 * * *")
    return schedule, r.scheduled_for, r.report_id, r.status, r.error, r.files


def test_another_tenant_lists_nothing_and_gets_404(env: Env) -> None:
    mine = _seed(env, "isolated")
    with env.client("globex") as c:
        assert c.get("/v1/reports").json() == {"reports": [], "next_cursor": None}
        assert c.get("/v1/reports", params={"name": "isolated"}).json()["reports"] == []
        assert c.get(f"/v1/reports/{mine.report_id}").status_code == 404
        assert c.get(f"/v1/reports/{mine.report_id}/html").status_code == 404
    with env.client() as c:
        assert c.get(f"/v1/reports/{mine.report_id}").status_code == 200
        assert c.get(f"/v1/reports/{mine.report_id}/pdf").status_code == 404  # no such format made
        assert c.get(f"/v1/reports/{mine.report_id}/exe").status_code == 422
        assert c.get("/v1/reports/rep_unknown").status_code == 404
        assert c.get("/v1/reports", params={"cursor": "bm9wZQ"}).status_code == 400


def test_paging_newest_first_and_filters(env: Env) -> None:
    schedule = ReportSchedule(name="paged", workflow="other-flow", tenant="acme", schedule="0 3 * * *")
    fires = [datetime(2026, 2, d, 3, 0, tzinfo=UTC) for d in (1, 2, 3)]
    for fire in fires:
        env.scheduler.record(schedule, fire, report_id("acme", "paged", fire), FAILED, "boom", ())
    with env.client() as c:
        first = c.get("/v1/reports", params={"workflow": "other-flow", "limit": 2}).json()
        second = c.get("/v1/reports", params={"workflow": "other-flow", "limit": 2,
                                              "cursor": first["next_cursor"]}).json()  # fmt: skip
        got = [r["scheduled_for"][:10] for r in first["reports"] + second["reports"]]
        assert got == ["2026-02-03", "2026-02-02", "2026-02-01"] and second["next_cursor"] is None
        assert {r["status"] for r in first["reports"]} == {"failed"} and first["reports"][0]["files"] == []


def test_a_record_pointing_outside_reports_dir_is_refused(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "secret.html"
    secret.write_bytes(b"outside")
    (env.reports_dir / "linked").mkdir(exist_ok=True)
    (env.reports_dir / "linked" / "x.html").symlink_to(secret)
    outside = [f"../{secret.parent.name}/secret.html", str(secret), "linked/x.html", "tampered/../../x.html"]
    ids = []
    for i, path in enumerate(outside):
        fire = datetime(2026, 3, 1, i, 0, tzinfo=UTC)
        rid = report_id("acme", "tampered", fire)
        env.scheduler.store.record(Report(
            "acme", rid, "tampered", "triage", "", date(2026, 3, 1), date(2026, 3, 1), "previous", fire,
            datetime.now(UTC), READY, "", (ReportFile("html", path, 7, ""),),
        ))  # fmt: skip
        ids.append(rid)
    with caplog.at_level(logging.ERROR, logger="analytics.api.reports_api"), env.client() as c:
        for rid in ids:
            got = c.get(f"/v1/reports/{rid}/html")
            assert got.status_code == 404 and b"outside" not in got.content, (rid, got.text)
    assert sum("leads outside reports_dir" in r.getMessage() for r in caplog.records) == len(ids)


def test_a_deleted_file_is_gone(env: Env) -> None:
    seeded = _seed(env, "deleted")
    (env.reports_dir / seeded.files[0].path).unlink()
    with env.client() as c:
        got = c.get(f"/v1/reports/{seeded.report_id}/html")
        assert got.status_code == 410 and got.headers["content-type"] == "application/problem+json"
        assert "deleted" in got.json()["detail"]
        assert c.get(f"/v1/reports/{seeded.report_id}/md").status_code == 200  # the other stays


# the scheduler with a fixed clock


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _fires(wh: Warehouse, tenant: str) -> list[tuple[str, str]]:
    rows = wh.rows(
        "SELECT scheduled_for, status FROM reports FINAL WHERE tenant_id = {t:String} ORDER BY scheduled_for",
        {"t": tenant},
    )
    return [(at.strftime("%m-%d %H:%M"), status) for at, status in rows]


def _gathered(client: object, request: ReportRequest, source: str = "") -> ReportData:
    """A stand-in for gathering: these tests are about when the scheduler runs, not the figures."""
    return cast("ReportData", SimpleNamespace(request=request))


def _md_only(data: ReportData, fmt: str) -> bytes:
    return f"# {data.request.workflow} {data.request.since}..{data.request.until}\n".encode()


def test_a_missed_fire_runs_once_at_start_and_never_twice(env: Env) -> None:
    assert env.server.warehouse is not None and env.server.notifications is not None
    wh, outbox = env.server.warehouse, env.server.notifications.outbox
    daily = ReportSchedule(
        name="missed", workflow="triage", tenant="clock", schedule="0 6 * * *", formats=["md"]
    )
    clock = Clock(datetime(2026, 3, 10, 5, 0, tzinfo=UTC))

    def scheduler() -> ReportScheduler:
        return ReportScheduler(
            wh, outbox, [daily], env.reports_dir, now=clock, build=_gathered, render=_md_only
        )

    first = scheduler()
    assert first.tick() == []  # never ran: nothing missed, the 6:00 fire has not come
    clock.at = datetime(2026, 3, 10, 6, 0, 30, tzinfo=UTC)
    assert [r.status for r in first.tick()] == [READY] and first.tick() == []
    clock.at += timedelta(seconds=40)
    assert scheduler().tick() == []  # a restart right after the run does not repeat it
    clock.at = datetime(2026, 3, 13, 7, 0, tzinfo=UTC)  # down over the 11th, 12th and 13th
    again = scheduler()
    assert [r.scheduled_for.day for r in again.tick()] == [13] and again.tick() == []
    assert _fires(wh, "clock") == [("03-10 06:00", "ready"), ("03-13 06:00", "ready")]
    assert (
        env.reports_dir / "missed" / "missed_2026-03-13T0600Z.md"
    ).read_bytes() == b"# triage 2026-03-06..2026-03-12\n"
    removed = ReportScheduler(wh, outbox, [], env.reports_dir, now=clock)
    clock.at = datetime(2026, 3, 20, 7, 0, tzinfo=UTC)
    assert removed.tick() == [] and len(_fires(wh, "clock")) == 2  # an entry removed stops; its files stay


def test_a_failure_is_recorded_and_the_thread_goes_on(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    assert env.server.warehouse is not None and env.server.notifications is not None
    wh, outbox = env.server.warehouse, env.server.notifications.outbox
    s = ReportSchedule(
        name="flaky", workflow="triage", tenant="flaky", schedule="*/5 * * * *", formats=["md"]
    )
    clock = Clock(datetime(2026, 4, 1, 9, 1, tzinfo=UTC))
    broken = {"yes": True}

    def render(data: ReportData, fmt: str) -> bytes:
        if broken["yes"]:
            raise RuntimeError("password=hunter2 in the renderer")
        return b"ok"

    sched = ReportScheduler(
        wh, outbox, [s], env.reports_dir, now=clock, build=_gathered, render=render, tick_s=0.05
    )
    assert sched.tick() == []  # loaded at 9:01: the thread then sees each fire come
    sched.start()
    try:
        with caplog.at_level(logging.ERROR, logger="analytics.reports.scheduler"):
            clock.at = datetime(2026, 4, 1, 9, 5, 10, tzinfo=UTC)
            _wait(lambda: len(_fires(wh, "flaky")) == 1)
        broken["yes"] = False
        clock.at = datetime(2026, 4, 1, 9, 10, 5, tzinfo=UTC)
        _wait(lambda: len(_fires(wh, "flaky")) == 2)
    finally:
        sched.stop()
    assert _fires(wh, "flaky") == [("04-01 09:05", "failed"), ("04-01 09:10", "ready")]
    failed = sched.store.latest("flaky", "flaky")
    assert failed is not None and failed.status == READY
    error = wh.rows("SELECT error FROM reports FINAL WHERE tenant_id = 'flaky' AND status = 'failed'")[0][0]
    assert error == "RuntimeError while building or rendering the report"
    assert any("flaky" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


def test_wrm_report_with_a_tenant_key_reads_that_tenant(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the server with acme's viewer key: acme's runs, time to benefit included, whatever
    --tenant says; the report names the key's tenant, not one it was not given."""
    monkeypatch.setenv("WRM_KEY", env.keys["acme"])
    out = tmp_path / "acme.md"
    where = ["--http", env.server.http_address, "--database", env.server.settings.database]
    argv = ["report", "--workflow", "triage", "--since", "7d", "--out", str(out), "--tenant", "globex"]
    argv += where
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "via the running server" in err and "--tenant is ignored" in err
    text = out.read_text()
    assert "the key's own" in text and "globex" not in text
    assert "\n| Runs | 12 |" in text  # acme's 12 runs
    benefits = text.split("## Time to benefit")[1].split("##")[0]
    assert "| v1 |" in benefits, benefits


# last of the server's tests: the others run while its minute comes


def test_a_minutely_schedule_writes_lists_serves_and_announces_a_report(env: Env) -> None:
    deadline = time.monotonic() + 100  # the next minute, then gathering and rendering
    with env.client() as c:
        while True:
            listed = c.get("/v1/reports", params={"name": "minutely"}).json()["reports"]
            if listed or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert listed, "no report within the minute"
        report = listed[0]
        assert report["status"] == "ready", report
        fire = datetime.fromisoformat(report["scheduled_for"].replace("Z", "+00:00"))
        # the 7 whole days before the fire's day
        assert fire.second == 0 and report["until"] == (fire.date() - timedelta(days=1)).isoformat()
        assert date.fromisoformat(report["since"]) == fire.date() - timedelta(days=7)
        assert (report["workflow"], report["compare"], report["environment"]) == ("triage", "previous", "")
        stamp = fire.strftime("%Y-%m-%dT%H%MZ")
        on_disk = sorted(p.name for p in (env.reports_dir / "minutely").iterdir())
        assert f"minutely_{stamp}.html" in on_disk and f"minutely_{stamp}.md" in on_disk, on_disk
        assert not [n for n in on_disk if n.endswith(".tmp")]
        for f in report["files"]:
            got = c.get(f["download"])  # a relative link
            assert got.status_code == 200, got.text
            kept = (env.reports_dir / "minutely" / f"minutely_{stamp}.{f['format']}").read_bytes()
            assert got.content == kept and len(kept) == f["bytes"]
            assert f["sha256"] == hashlib.sha256(kept).hexdigest()
            assert (
                got.headers["content-disposition"] == f'attachment; filename="minutely_{stamp}.{f["format"]}"'
            )
        page = c.get(f"/v1/reports/{report['report_id']}/html")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert (
            page.headers["content-security-policy"]
            == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        )
        assert b"triage" in page.content
        md = c.get(f"/v1/reports/{report['report_id']}/md")
        assert md.headers["content-type"] == "text/markdown; charset=utf-8"
        assert "content-security-policy" not in md.headers
        assert c.get(f"/v1/reports/{report['report_id']}").json() == report
        # the daily schedule never ran: nothing was missed, its hour has not come
        assert c.get("/v1/reports", params={"name": "daily"}).json()["reports"] == []

    def announced() -> list[dict[str, Any]]:
        return [r.verify(env.secret) for r in env.receiver.on("/reports")]

    env.receiver.wait_for(lambda: any(p["data"]["report_id"] == report["report_id"] for p in announced()))
    event = next(p for p in announced() if p["data"]["report_id"] == report["report_id"])
    assert event["type"] == "report.ready"
    data = event["data"]
    assert (data["name"], data["workflow"], data["since"], data["until"]) == (
        "minutely", "triage", report["since"], report["until"],
    )  # fmt: skip
    assert [(f["format"], f["bytes"], f["download"]) for f in data["files"]] == [
        (f["format"], f["bytes"], f["download"]) for f in report["files"]
    ]


def _wait(check: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# cron, time zones, names


def test_cron_in_europe_paris_across_both_dst_changes() -> None:
    paris, at = "Europe/Paris", datetime
    # 09:00 in Paris is 08:00Z in winter, 07:00Z from the spring change (29 March 2026)
    assert next_fire("0 9 * * *", paris, at(2026, 3, 27, 12, tzinfo=UTC)) == at(2026, 3, 28, 8, tzinfo=UTC)
    assert next_fire("0 9 * * *", paris, at(2026, 3, 28, 12, tzinfo=UTC)) == at(2026, 3, 29, 7, tzinfo=UTC)
    # 02:30 happens twice on 25 October: it fires at the first, not again an hour later
    first = next_fire("30 2 * * *", paris, at(2026, 10, 24, 12, tzinfo=UTC))
    assert first == at(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_fire("30 2 * * *", paris, first) == at(2026, 10, 26, 1, 30, tzinfo=UTC)
    assert latest_fire("30 2 * * *", paris, at(2026, 10, 25, 1, 45, tzinfo=UTC)) == first
    assert latest_fire("0 9 * * *", "UTC", at(2026, 5, 1, 9, tzinfo=UTC)) == at(2026, 5, 1, 9, tzinfo=UTC)
    assert file_name("weekly", first, "pdf") == "weekly_2026-10-25T0030Z.pdf"


@pytest.mark.parametrize(
    ("entries", "named"),
    [
        ([{"schedule": "61 * * * *"}], ["reports[0].schedule", "'61 * * * *'", "cron"]),
        ([{"schedule": "* * * *"}], ["reports[0].schedule", "5 fields"]),
        ([{"timezone": "Mars/Olympus"}], ["reports[0].timezone", "'Mars/Olympus'"]),
        ([{"formats": ["html", "docx"]}], ["reports[0].formats", "'docx'", "html, pdf, md"]),
        ([{}, {"name": "weekly"}], ["reports", "'weekly' is used twice"]),
        ([{"name": "../up"}], ["reports[0].name", "'../up'"]),
        ([{"period": "0d"}], ["reports[0].period"]),
    ],
)
def test_settings_refuse_a_bad_entry_naming_it(entries: list[dict[str, Any]], named: list[str]) -> None:
    base = {"name": "weekly", "workflow": "triage", "schedule": "0 7 * * 1"}
    with pytest.raises(SettingsError) as err:
        load_settings(reports=[{**base, **e} for e in entries])
    for part in named:
        assert part in str(err.value), str(err.value)
