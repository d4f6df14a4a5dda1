"""Indicators over data whose truth is known by construction (tests/indicator_data.py), sent
through the real SDK exporter into a running server: every view returns the planned values, the
comparison calls a real difference significant and a 10-run sample inconclusive, and re-sent or
late spans change exactly what they should."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from analytics import indicators
from analytics.indicators import Sides
from tests.conftest import module_server, settle
from tests.indicator_data import TODAY, VersionPlan, plan, resend, send
from tests.otlp import flush, sdk_provider
from wrm.cli import main
from wrm.server import WrmServer

V1 = VersionPlan("v1", range(21, 11, -1), 50, first_pass=30, retries=15, median_s=20, tokens=(1000, 200),
                 human_every=5, quality=0.7, cx=3.5)  # fmt: skip
V2 = VersionPlan("v2", range(11, 1, -1), 50, first_pass=40, retries=5, median_s=12, tokens=(800, 150),
                 human_every=10, quality=0.85, cx=4.25)  # fmt: skip
RUNS = plan([V1, V2])


def _durations(version: str) -> np.ndarray:
    return np.array([r.duration_ns for r in RUNS if r.version == version], dtype=np.float64)


SENT: list[ReadableSpan] = []


def _feed(server: WrmServer) -> None:
    SENT[:] = send(server.otlp_address, RUNS, "triage")
    small = plan([VersionPlan("v1", range(5, 4, -1), 10, 6, 2, 5, (10, 1), 5, 0.5),
                  VersionPlan("v2", range(4, 3, -1), 10, 8, 1, 5, (10, 1), 5, 0.5)])  # fmt: skip
    send(server.otlp_address, small, "small")
    settle(server)


@pytest.fixture(scope="module")
def fed(engine_dir: Path) -> Iterator[WrmServer]:
    """One fed server for the tests that only read it."""
    with module_server(engine_dir) as server:
        _feed(server)
        yield server


def test_effectiveness_by_version_is_exact(fed: WrmServer) -> None:
    assert fed.warehouse is not None
    frame = indicators.effectiveness(fed.warehouse.reader, "default", "triage").set_index("workflow_version")
    assert list(frame.index) == ["v1", "v2"]
    assert frame["runs"].tolist() == [500, 500] and frame["completed"].tolist() == [450, 450]
    assert frame["failed"].tolist() == [50, 50] and frame["in_progress"].tolist() == [0, 0]
    assert frame["first_pass_rate"].tolist() == [0.6, 0.8]
    assert frame["success_rate"].tolist() == [0.9, 0.9]
    assert frame["validation_pass_rate"].tolist() == [0.9, 0.9]
    assert frame["quality_mean"].tolist() == pytest.approx([0.7, 0.85], rel=1e-12)
    for v in ("v1", "v2"):
        d = _durations(v)
        assert frame.loc[v, "p50_duration_s"] == pytest.approx(np.percentile(d, 50) / 1e9, rel=1e-12)
        assert frame.loc[v, "p95_duration_s"] == pytest.approx(np.percentile(d, 95) / 1e9, rel=1e-12)
    # attempts per day: v1 30 + 15×2 + 5 = 65 for 50 runs; v2 40 + 5×2 + 5 = 55
    assert frame["input_tokens_per_run"].tolist() == [1000 * 65 / 50, 800 * 55 / 50]
    assert frame["output_tokens_per_run"].tolist() == [200 * 65 / 50, 150 * 55 / 50]
    assert frame["cost_per_run_usd"].tolist() == pytest.approx([0.001 * 65 / 50, 0.001 * 55 / 50], rel=1e-12)
    assert frame["human_decisions_per_run"].tolist() == [0.2, 0.1]
    assert frame["human_wait_s_per_run"].tolist() == [12.0, 6.0]
    assert frame["human_share"].tolist() == [0.2, 0.1]
    assert frame["cx_score_mean"].tolist() == [3.5, 4.25]  # every finished run carries one


def test_effectiveness_by_day_and_throughput(fed: WrmServer) -> None:
    assert fed.warehouse is not None
    reader = fed.warehouse.reader
    daily = indicators.effectiveness(reader, "default", "triage", by="day")
    assert len(daily) == 20 and set(daily["runs"]) == {50}
    v1 = daily[daily["workflow_version"] == "v1"]
    assert sorted(pd.to_datetime(v1["day"]).dt.date) == [
        (TODAY - timedelta(days=d)).date() for d in range(21, 11, -1)
    ]
    assert set(v1["first_pass_rate"]) == {0.6}
    since = (TODAY - timedelta(days=15)).date()
    assert len(indicators.effectiveness(reader, "default", "triage", by="day", since=since)) == 14
    tp = indicators.throughput(reader, "default", "triage")
    assert set(tp["runs"]) == {50} and set(tp["peak_hour_runs"]) == {3} and set(tp["active_hours"]) == {24}
    hourly = indicators.throughput(reader, "default", "triage", by="hour")
    assert hourly["runs"].sum() == 1000 and len(hourly) == 20 * 24


def test_comparison_is_significant_and_a_small_sample_is_not(fed: WrmServer) -> None:
    assert fed.warehouse is not None
    reader = fed.warehouse.reader
    cmp_ = indicators.compare(reader, "default", "triage", Sides.versions("v1", "v2")).set_index("indicator")
    fp = cmp_.loc["first_pass_rate"]
    assert (fp.baseline, fp.candidate, fp.baseline_n, fp.candidate_n) == (0.6, 0.8, 500, 500)
    assert fp.delta == pytest.approx(0.2) and fp.relative_delta == pytest.approx(1 / 3)
    assert fp.test == "two-proportion z" and fp.p_value < 1e-10
    assert (fp.verdict, fp.direction) == ("significant", "better")
    assert cmp_.loc["success_rate", "verdict"] == "not significant"
    p50 = cmp_.loc["p50_duration_s"]
    assert p50.baseline == pytest.approx(np.percentile(_durations("v1"), 50) / 1e9, rel=1e-12)
    assert (p50.test, p50.verdict, p50.direction) == ("mann-whitney u", "significant", "better")
    assert cmp_.loc["tokens_per_run", "direction"] == "better"  # fewer tokens per run
    cx = cmp_.loc["cx_score_mean"]
    assert (cx.baseline, cx.candidate, cx.baseline_n, cx.direction) == (3.5, 4.25, 500, "better")
    assert cmp_.loc["runs_per_day", "baseline"] == 50.0 and cmp_.loc["runs_per_day", "candidate"] == 50.0
    # the same difference in rates, on 10 runs a side, is not a conclusion
    small = indicators.compare(reader, "default", "small", Sides.versions("v1", "v2")).set_index("indicator")
    assert (small.loc["first_pass_rate", "baseline"], small.loc["first_pass_rate", "candidate"]) == (0.6, 0.8)
    assert small.loc["first_pass_rate", "verdict"] == "too few samples"
    assert small.loc["p50_duration_s", "verdict"] == "too few samples"
    # before/after a day: the switch from v1 to v2 was 11 days ago
    switch = (TODAY - timedelta(days=11)).date()
    windows = indicators.compare(reader, "default", "triage", Sides.windows(switch)).set_index("indicator")
    assert (
        windows.loc["first_pass_rate", "baseline"] == 0.6
        and windows.loc["first_pass_rate", "candidate"] == 0.8
    )
    with pytest.raises(indicators.NoData, match="baseline, version v9"):
        indicators.compare(reader, "default", "triage", Sides.versions("v9", "v2"))


def test_time_to_benefit(fed: WrmServer) -> None:
    assert fed.warehouse is not None
    ttb = indicators.time_to_benefit(fed.warehouse.reader, "default", "triage").set_index("workflow_version")
    v2 = ttb.loc["v2"]
    assert isinstance(v2, pd.Series)  # one row per version, so a row, not a frame
    first_v2 = min(r.start_ns for r in RUNS if r.version == "v2")
    assert v2.previous_version == "v1"
    assert pd.Timestamp(v2.first_run_at).value == first_v2
    assert pd.Timestamp(v2.first_production_run_at).value == first_v2
    assert v2.baseline_first_pass_rate == 0.6
    assert pd.Timestamp(v2.benefit_day).date() == (TODAY - timedelta(days=11)).date()
    assert v2.rolling_first_pass_rate_at_benefit == 0.8 and v2.days_to_benefit == 0
    assert ttb.loc["v1"].previous_version == "" and pd.isna(ttb.loc["v1"].benefit_day)


def test_command_line_reads_through_the_running_server(
    fed: WrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--http", fed.http_address, "--database", fed.settings.database]
    assert main(["indicators", "--workflow", "triage", "--format", "csv", *where]) == 0
    out, err = capsys.readouterr()
    assert "via the running server" in err
    rows = pd.read_csv(io.StringIO(out)).set_index("workflow_version")
    assert rows.loc["v1", "first_pass_rate"] == 0.6 and rows.loc["v2", "runs"] == 500

    assert main(["compare", "--workflow", "triage", "--baseline", "v1", "--candidate", "v2", *where]) == 0
    table = capsys.readouterr().out
    line = next(x for x in table.splitlines() if x.strip().startswith("first_pass_rate"))
    assert "60.0%" in line and "80.0%" in line and "+20.0 pt" in line and "significant (better)" in line

    assert main(["compare", "--workflow", "small", "--baseline", "v1", "--candidate", "v2", *where]) == 0
    assert "too few samples" in capsys.readouterr().out
    assert main(["compare", "--workflow", "nope", "--baseline", "v1", "--candidate", "v2", *where]) == 1
    assert "no finished runs of 'nope'" in capsys.readouterr().err
    assert main(["compare", "--workflow", "triage", "--baseline", "v1", *where]) == 2
    with pytest.raises(SystemExit, match="2"):  # argparse refuses the date
        main(["compare", "--workflow", "triage", "--before", "2026-13-01", *where])
    assert "'2026-13-01' is neither" in capsys.readouterr().err
    assert main(["indicators", "--workflow", "nope", *where]) == 1


def test_resent_spans_change_nothing_and_a_late_step_changes_one_run(fed: WrmServer) -> None:
    """Last in the module (pytest keeps file order): the one test that changes the fed runs, so
    the tests above read them as planned without a second fed server."""
    assert fed.warehouse is not None
    reader = fed.warehouse.reader
    before = indicators.effectiveness(reader, "default", "triage", by="day")
    resend(fed.otlp_address, SENT)  # every span again, same ids
    settle(fed)
    pd.testing.assert_frame_equal(indicators.effectiveness(reader, "default", "triage", by="day"), before)
    # a late, failed step for one first-pass run of v1: exactly one first-pass run fewer
    [(trace_id, run_span_id, start)] = fed.warehouse.rows(
        "SELECT trace_id, run_span_id, start_time FROM runs "
        "WHERE workflow_name = 'triage' AND workflow_version = 'v1' AND first_pass = 1 LIMIT 1"
    )
    _send_late_failed_step(
        fed.otlp_address, int(trace_id, 16), int(run_span_id, 16), pd.Timestamp(start).value
    )
    settle(fed)
    after = indicators.effectiveness(reader, "default", "triage").set_index("workflow_version")
    assert after.loc["v1", "first_pass_rate"] == 299 / 500 and after.loc["v1", "runs"] == 500
    assert after.loc["v2", "first_pass_rate"] == 0.8


def _send_late_failed_step(otlp_address: str, trace_id: int, parent_id: int, start_ns: int) -> None:
    ctx = SpanContext(trace_id, parent_id, is_remote=True, trace_flags=TraceFlags(1))
    provider = sdk_provider(
        otlp_address, service="triage-svc", **{"deployment.environment.name": "production"}
    )
    s = provider.get_tracer("late").start_span(
        "notify",
        context=set_span_in_context(NonRecordingSpan(ctx)),
        start_time=start_ns + 1,
        attributes={"wrm.step.type": "tool"},
    )
    s.set_status(Status(StatusCode.ERROR, "mail bounced"))
    s.end(end_time=start_ns + 2)
    flush(provider)
    provider.shutdown()
