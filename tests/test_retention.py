"""Retention tiers: per-tenant retention at ingest and after a policy change, and summaries that
outlive the raw rows with every indicator unchanged."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from analytics import indicators
from analytics.indicators import Sides
from tests.conftest import module_server, settle, start_server
from tests.indicator_data import VersionPlan, plan, send
from tests.otlp import make_span, request_of, send_raw
from tests.workflows import request, span, tid
from warehouse import Warehouse
from wrm.cli import main
from wrm.server import WrmServer

RUNS = plan(
    [
        VersionPlan("v1", range(12, 7, -1), 10, 6, 3, 10, (100, 10), 4, 0.6),
        VersionPlan("v2", range(7, 2, -1), 10, 8, 1, 8, (90, 9), 5, 0.8),
    ]
)
RAW = ("spans", "span_facts", "steps_store", "runs_store")


def _counts(wh: Warehouse, tenant: str) -> dict[str, int]:
    return {
        t: int(wh.rows(f"SELECT count() FROM {t} FINAL WHERE tenant_id = {{t:String}}", {"t": tenant})[0][0])
        for t in RAW
    }


def _indicators(wh: Warehouse, tenant: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    r = wh.reader
    return (
        indicators.effectiveness(r, tenant, "triage", by="day"),
        indicators.compare(r, tenant, "triage", Sides.versions("v1", "v2")),
        indicators.time_to_benefit(r, tenant, "triage"),
    )


def test_summaries_outlive_raw_rows_of_a_tenant_with_shorter_retention(
    warehouse: Warehouse, engine_dir: Path, tmp_path: Path
) -> None:
    server = start_server(warehouse)
    for tenant in ("short", "long", "mid"):
        send(server.otlp_address, RUNS, "triage", tenant=tenant)
    settle(server)
    server.stop()
    before = _indicators(warehouse, "short")
    kept = _counts(warehouse, "long")
    assert kept["runs_store"] == len(RUNS) == 100 and kept["spans"] > 300

    config = tmp_path / "wrm.toml"
    config.write_text(
        "[tenant_retention.short]\nspans_ttl_days = 1\nsteps_ttl_days = 2\nruns_ttl_days = 2\n"
        "[tenant_retention.mid]\nspans_ttl_days = 1\n"
    )
    common = [
        "--config",
        str(config),
        "--warehouse",
        f"chdb://{engine_dir}",
        "--database",
        warehouse.database,
    ]
    assert main(["retention", "apply", "--purge", *common]) == 0

    assert _counts(warehouse, "short") == dict.fromkeys(RAW, 0)  # every run is 3+ days old
    assert _counts(warehouse, "long") == kept
    after = _indicators(warehouse, "short")
    for b, a in zip(before, after, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert after[0]["runs"].sum() == 100
    # the summary rows carry their own (unchanged) retention
    assert warehouse.rows("SELECT DISTINCT retention_days FROM runs_daily_store")[0][0] == 400

    # "mid" lost its spans but keeps runs: a late span for one of those runs must not rebuild
    # it from what is left (it would become a one-span run of today)
    mid_before = _indicators(warehouse, "mid")
    assert _counts(warehouse, "mid")["spans"] == 0 and _counts(warehouse, "mid")["runs_store"] == 100
    [(trace_id, run_span_id)] = warehouse.rows(
        "SELECT trace_id, run_span_id FROM runs WHERE tenant_id = 'mid' ORDER BY start_time LIMIT 1"
    )
    run_then = warehouse.rows(
        "SELECT * EXCEPT last_span_at FROM runs WHERE trace_id = {t:String}", {"t": trace_id}
    )
    server = start_server(warehouse, tenant_retention={"mid": {"spans_ttl_days": 1}})
    try:
        late = request([span("x", "notify", start=0, end=1, wrm__workflow__name="triage")])
        late.resource_spans[0].resource.attributes.add(key="wrm.tenant.id").value.string_value = "mid"
        late_span = late.resource_spans[0].scope_spans[0].spans[0]
        late_span.trace_id, late_span.parent_span_id = bytes.fromhex(trace_id), bytes.fromhex(run_span_id)
        send_raw(server.otlp_address, late)
        settle(server)
    finally:
        server.stop()
    run_now = warehouse.rows(
        "SELECT * EXCEPT last_span_at FROM runs WHERE trace_id = {t:String}", {"t": trace_id}
    )
    assert run_now == run_then
    for b, a in zip(mid_before, _indicators(warehouse, "mid"), strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.fixture(scope="module")
def brief(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the tests where tenant `brief` keeps spans 3 days: each reads only the
    spans it sent (by name), and their runs and the policies are the same whoever sent them."""
    with module_server(engine_dir, tenant_retention={"brief": {"spans_ttl_days": 3}}) as srv:
        yield srv


def test_span_retention_per_tenant_at_ingest(brief: WrmServer) -> None:
    assert brief.warehouse is not None
    warehouse = brief.warehouse
    mixed = request([span("t-default", "a", start=0, end=1)])
    brief_only = request([span("t-brief", "b", start=0, end=1)], **{"wrm.tenant.id": "brief"})
    mixed.resource_spans.extend(brief_only.resource_spans)  # one request, two tenants
    assert send_raw(brief.otlp_address, mixed).partial_success.rejected_spans == 0
    settle(brief)
    rows = warehouse.rows("SELECT tenant_id, retention_days FROM spans WHERE name IN ('a', 'b')")
    assert sorted(rows) == [("brief", 3), ("default", 30)]
    runs = "SELECT tenant_id, retention_days FROM runs_store WHERE trace_id IN ({a:String}, {b:String})"
    assert sorted(warehouse.rows(runs, {"a": tid("t-default").hex(), "b": tid("t-brief").hex()})) == [
        ("brief", 90),
        ("default", 90),
    ]
    policy = warehouse.rows("SELECT tenant_id, spans_days FROM retention_policies FINAL ORDER BY tenant_id")
    assert policy == [("*", 30), ("brief", 3)]


def test_retention_show_and_bad_policy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, warehouse: Warehouse, engine_dir: Path
) -> None:
    """On this process's engine (chdb opens one data path per process: another path would be
    `WarehouseLocked`, which `show` passes over in silence), in the test's own database."""
    config = tmp_path / "wrm.toml"
    config.write_text("[tenant_retention.acme]\nsummaries_ttl_days = 730\n")
    where = ["--warehouse", f"chdb://{engine_dir}", "--database", warehouse.database]
    assert main(["retention", "show", "--config", str(config), *where]) == 0
    out = capsys.readouterr().out
    assert "acme" in out and "730" in out and "different: run `wrm retention apply`" in out
    config.write_text("[tenant_retention.acme]\nspans_ttl_days = 0\n")
    assert main(["retention", "show", "--config", str(config)]) == 2
    assert "spans_ttl_days" in capsys.readouterr().err


def test_a_span_older_than_its_retention_is_acknowledged_but_not_stored(brief: WrmServer) -> None:
    """Spec 8, expiry: TTL applies at insert, so a span older than its tenant's span retention is
    acknowledged (it is valid; a retry would change nothing) and not kept; its neighbours are."""
    assert brief.warehouse is not None and brief.receiver is not None
    metrics = brief.receiver.stats.registry
    accepted_before = metrics.get_sample_value("wrm_spans_accepted_total") or 0.0
    day = 86_400 * 10**9
    now = time.time_ns()

    def at(name: str, days_ago: float) -> Span:
        start = now - int(days_ago * day)
        return make_span(name, start_time_unix_nano=start, end_time_unix_nano=start + 10**6)

    default = request_of([at("fresh", 0), at("day-29", 29), at("day-31", 31), at("day-400", 400)])
    brief_only = request_of([at("brief-2", 2), at("brief-4", 4)])
    brief_only.resource_spans[0].resource.attributes.add(key="wrm.tenant.id").value.string_value = "brief"
    for sent in (default, brief_only):
        response = send_raw(brief.otlp_address, sent)
        assert not response.HasField("partial_success")  # acknowledged whole: nothing refused
    assert metrics.get_sample_value("wrm_spans_accepted_total") == accepted_before + 6
    names = ("fresh", "day-29", "day-31", "day-400", "brief-2", "brief-4")
    stored = brief.warehouse.rows(
        "SELECT tenant_id, name FROM spans WHERE name IN {n:Array(String)} ORDER BY name", {"n": list(names)}
    )
    assert stored == [("brief", "brief-2"), ("default", "day-29"), ("default", "fresh")]
