"""Indicator reports over runs whose truth is known by construction (tests/indicator_data.py),
sent with the real SDK exporter into a running server: the report's figures are the views'
figures, the three formats carry the same strings, a small sample reads "not enough runs", and
`wrm report` / `wrm indicators` / `wrm compare` print figures a person reads without decoding."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from opentelemetry.trace import set_span_in_context

from analytics import figures, reports
from analytics.reports.request import Comparison, ReportRequest
from tests.conftest import module_server, settle
from tests.indicator_data import SEC, TODAY, VersionPlan, plan, send
from tests.otlp import flush, sdk_provider
from wrm.cli import main
from wrm.server import WrmServer

# v1 on the 7 days before the report's, v2 on the report's 7 days (yesterday and the 6 before)
V1 = VersionPlan("v1", range(14, 7, -1), 30, first_pass=18, retries=8, median_s=20, tokens=(1000, 200),
                 human_every=5, quality=0.7, cx=3.5)  # fmt: skip
V2 = VersionPlan("v2", range(7, 0, -1), 30, first_pass=26, retries=2, median_s=12, tokens=(800, 150),
                 human_every=10, quality=0.85, cx=4.25)  # fmt: skip
SINCE, UNTIL = (TODAY - timedelta(days=7)).date(), (TODAY - timedelta(days=1)).date()
TRIAGE = ReportRequest("triage", "default", SINCE, UNTIL)


@pytest.fixture(scope="module")
def fed(engine_dir: Path) -> Iterator[WrmServer]:
    with module_server(engine_dir) as server:
        send(server.otlp_address, plan([V1, V2]), "triage")
        small = plan([VersionPlan("v1", range(3, 2, -1), 10, 6, 2, 5, (10, 1), 5, 0.5),
                      VersionPlan("v2", range(2, 1, -1), 10, 9, 0, 5, (10, 1), 5, 0.5)])  # fmt: skip
        send(server.otlp_address, small, "small")
        _send_unpriced(server.otlp_address)
        settle(server)
        yield server


def _send_unpriced(otlp_address: str) -> None:
    """Workflow `local`, no cost attribute anywhere. Yesterday: 3 runs on gpt-4o (shipped price),
    2 of them also on a local llama; 8 days ago (the days before a 7-day report): 1 llama run."""
    provider = sdk_provider(otlp_address)
    tracer = provider.get_tracer("t")
    t0 = int((TODAY - timedelta(days=1)).timestamp()) * SEC + 3600 * SEC
    llama = "llama-3.1-70b-instruct"
    runs = [(t0, ["gpt-4o", llama]), (t0 + SEC, ["gpt-4o", llama]), (t0 + 2 * SEC, ["gpt-4o"]),
            (t0 - 7 * 86400 * SEC, [llama])]  # fmt: skip
    for start, models in runs:
        root = tracer.start_span("local", start_time=start, attributes={"wrm.workflow.name": "local"})
        for j, model in enumerate(models):
            step = tracer.start_span(
                "answer", context=set_span_in_context(root), start_time=start + j,
                attributes={"gen_ai.request.model": model, "gen_ai.usage.input_tokens": 1_000_000,
                            "gen_ai.usage.output_tokens": 100_000},
            )  # fmt: skip
            step.end(end_time=start + j + 1000)
        root.end(end_time=start + 5000)
    flush(provider)


@pytest.fixture(scope="module")
def triage(fed: WrmServer) -> reports.ReportData:
    return reports.build(_reader(fed), TRIAGE, source="the warehouse")


def _reader(server: WrmServer) -> Client:
    assert server.warehouse is not None
    return server.warehouse.reader


def _query(server: WrmServer, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in _reader(server).query(sql, parameters=params).result_rows]


def test_the_snapshot_is_the_window_comparison_view(fed: WrmServer, triage: reports.ReportData) -> None:
    rows = _query(
        fed,
        "SELECT indicator, baseline, candidate, baseline_n, candidate_n FROM window_comparison("
        "tenant_id = 'default', workflow = 'triage', environment = '', baseline_version = '', "
        "candidate_version = '', baseline_since = {bs:Date}, baseline_until = {bu:Date}, "
        "candidate_since = {cs:Date}, candidate_until = {cu:Date})",
        bs=SINCE - timedelta(days=7), bu=SINCE, cs=SINCE, cu=UNTIL,
    )  # fmt: skip
    view = {r[0]: r[1:] for r in rows}
    shown = {i.key: i for i in triage.snapshot}
    assert set(shown) == set(view) - {"validation_pass_rate"} | {"validation_pass_rate"} & set(shown)
    for key, ind in shown.items():
        assert (ind.before, ind.current, ind.before_n, ind.current_n) == pytest.approx(view[key]), key
    # and the view holds the planned truth
    assert shown["runs"].current == 210 and shown["runs"].before == 210
    assert shown["first_pass_rate"].current == pytest.approx(26 / 30)
    assert shown["first_pass_rate"].before == pytest.approx(18 / 30)
    assert shown["success_rate"].current == pytest.approx(28 / 30)
    assert shown["first_pass_rate"].verdict == "better" and shown["p95_duration_s"].verdict == "better"
    assert shown["cx_score_mean"].current == pytest.approx(4.25)
    assert shown["runs"].verdict == "no test"
    decisions = shown["human_decisions_per_run"]
    assert (decisions.before, decisions.current, decisions.verdict) == (0.2, 0.1, "no test")
    assert "ratio of totals" in decisions.note
    assert triage.current_label == f"{SINCE} – {UNTIL}"
    assert triage.before_label.endswith("(the 7 days before)")


def test_trends_failures_and_retries_are_their_views(fed: WrmServer, triage: reports.ReportData) -> None:
    args = "tenant_id = 'default', workflow = 'triage', environment = '', since = {s:Date}, until = {u:Date}"
    days = _query(fed, f"SELECT day, runs, first_pass_rate, p95_duration_s FROM workflow_days({args})",
                  s=SINCE, u=UNTIL)  # fmt: skip
    assert [(p.day, p.runs, p.first_pass_rate, p.p95_duration_s) for p in triage.trend] == days
    assert len(triage.trend) == 7 and all(p.runs == 30 for p in triage.trend)

    failures = _query(
        fed, f"SELECT failure_reason, failed_step, runs FROM failure_reasons({args})", s=SINCE, u=UNTIL
    )
    assert [(f.reason, f.failed_step, f.runs) for f in triage.failures] == failures[: len(triage.failures)]
    assert sum(f.runs for f in triage.failures) == 7 * 2  # two failed runs a day
    assert all(len(f.example_run_ids) == min(3, f.runs) for f in triage.failures)

    retries = {s.step: s for s in triage.retries}
    assert retries["classify"].retries == 7 * 2  # v2 retries 2 runs a day: a second attempt each
    assert retries["classify"].failed_attempts == 7 * 2 + 7 * 2  # their first attempts, and the failed runs'
    assert retries["classify"].runs == 210 and retries["classify"].attempts == 210 + 14
    rows = _query(
        fed,
        f"SELECT step, retries, failed_attempts FROM step_retries({args}) ORDER BY step",
        s=SINCE,
        u=UNTIL,
    )
    assert sorted((s.step, s.retries, s.failed_attempts) for s in triage.retries) == [
        r for r in rows if r[1] or r[2]
    ]


def test_too_few_runs_read_not_enough_runs(fed: WrmServer) -> None:
    day = SINCE + timedelta(days=5)
    small = reports.build(_reader(fed), ReportRequest("small", "default", day, day))
    rates = [i for i in small.snapshot if i.unit == "rate"]
    assert rates and {i.verdict for i in rates} == {"not enough runs"}
    assert not {"better", "worse"} & {i.verdict for i in small.snapshot}
    md = reports.render(small, "md").decode()
    assert "not enough runs" in md


def test_every_format_carries_the_same_figures(triage: reports.ReportData, tmp_path: Path) -> None:
    html = reports.render(triage, "html").decode()
    md = reports.render(triage, "md").decode()
    pdf = reports.render(triage, "pdf")
    assert pdf.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "page")], check=True
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert 1 <= len(pages) <= 12 and all(p.stat().st_size > 2000 for p in pages)
    text = subprocess.run(["pdftotext", "-raw", str(tmp_path / "r.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    shown = [figures.value(i.unit, v) for i in triage.snapshot for v in (i.current, i.before)]
    shown += ["86.7%", "60.0%", "210", "better"]
    for figure in shown:
        assert figure in html and figure in md and figure in text, figure
    assert not re.search(r"\d\.?\d*e[+-]\d", text), "e-notation in the PDF"
    # self-contained: nothing fetched from elsewhere
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html, re.I)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), {r for r in refs if r[:1] != "#"}
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", html, re.I)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html


def test_wrm_report_reads_through_the_running_server(
    fed: WrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--http", fed.http_address, "--database", fed.settings.database]
    out = tmp_path / "triage.pdf"
    days = ["--since", "7d", "--until", str(UNTIL)]
    assert main(["report", "--workflow", "triage", *days, "--out", str(out), *where]) == 0
    err = capsys.readouterr().err
    assert "via the running server" in err and "effectiveness snapshot" in err and "wrote pdf" in err
    assert out.read_bytes().startswith(b"%PDF")

    cmp_ = ["--compare", "v1..v2", "--since", str(SINCE - timedelta(days=7))]
    assert (
        main(
            [
                "report",
                "--workflow",
                "triage",
                *cmp_,
                "--until",
                str(UNTIL),
                "--format",
                "md",
                "--out",
                "-",
                *where,
            ]
        )
        == 0
    )
    md = capsys.readouterr().out
    assert "version v2" in md and "version v1" in md and "60.0%" in md  # v1..v2: both versions' days

    assert (
        main(["report", "--workflow", "triage", "--since", "7d", "--compare", "v1..v1", "--out", "-", *where])
        == 2
    )
    assert "two different versions" in capsys.readouterr().err
    assert main(["report", "--workflow", "triage", "--since", "2026-02-30", "--out", "-", *where]) == 2
    assert "neither Nd" in capsys.readouterr().err


def test_command_line_tables_read_without_decoding(
    fed: WrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--http", fed.http_address, "--database", fed.settings.database]
    assert main(["indicators", "--workflow", "triage", *where]) == 0
    table = capsys.readouterr().out
    assert main(["compare", "--workflow", "triage", "--baseline", "v1", "--candidate", "v2", *where]) == 0
    table += capsys.readouterr().out
    assert not re.search(r"\d\.?\d*e[+-]\d", table), table
    assert re.search(r"\b\d+(\.\d)? s\b", table) and "$0." in table and "210" in table
    assert "2.1e" not in table


def test_request_parsing() -> None:
    assert Comparison.parse("v1.2..v1.3") == Comparison("versions", "v1.2", "v1.3")
    assert Comparison.parse("previous").kind == "previous" and Comparison.parse("none").kind == "none"
    for bad in ("v1..", "..v2", "v1..v1", "latest", "a b..c"):
        with pytest.raises(reports.RequestError):
            Comparison.parse(bad)
    with pytest.raises(reports.RequestError, match="before it starts"):
        ReportRequest("w", "t", UNTIL, SINCE)
    assert TRIAGE.previous_window() == (SINCE - timedelta(days=7), SINCE - timedelta(days=1))


def test_a_model_without_a_price_makes_the_cost_partial(fed: WrmServer) -> None:
    data = reports.build(_reader(fed), ReportRequest("local", "default", SINCE, UNTIL))
    # gpt-4o at the shipped $2.50 in / $10 out per million tokens: $3.50 a run; llama unpriced
    cost = {i.key: i for i in data.snapshot}["cost_per_run_usd"]
    assert cost.current == pytest.approx(3.5) and cost.current_n == 3
    assert [(g.model, g.steps, g.runs) for g in data.price_gaps] == [("llama-3.1-70b-instruct", 2, 2)]
    assert data.unpriced_runs == 2 and data.before_unpriced_runs == 1
    for fmt in ("html", "md"):
        text = reports.render(data, fmt).decode()
        assert "Cost is partial: 2 runs of these days used models with no price" in text, fmt
        assert "llama-3.1-70b-instruct (2 steps, 2 runs)" in text, fmt
        assert "1 run of the days before as well" in text, fmt
    # and a workflow whose models all have a price says nothing of the kind
    assert "Cost is partial" not in reports.render(reports.build(_reader(fed), TRIAGE), "md").decode()
