"""Fixtures: one embedded engine per test process (chdb allows one data path per process), a fresh
database per test, and a real `wrm serve` (gRPC + HTTP on free ports) around it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from warehouse import Warehouse
from wrm.server import WrmServer
from wrm.settings import load_settings

# The modules that take longest, longest first (seconds of test time, measured on 2 cores).
# `make test` runs two pytest-xdist workers, each taking a whole module at a time in this order
# (then the rest in file order), so that no long module starts last while the other worker idles.
# The order decides only when each module runs, never whether it runs: a stale list costs time.
LONGEST_FIRST = (
    "test_concurrency",  # 85
    "test_api_properties",  # 84
    "test_serve_process",  # 73
    "test_retention",  # 71
    "test_ingest_errors",  # 62
    "test_run_invariants",  # 53
    "test_indicators",  # 46
    "test_run_list",  # 45
    "test_isolation",  # 43
    "test_crash_recovery",  # 43
    "test_fuzz_otlp",  # 40
    "test_export",  # 38
    "test_sql_endpoint",  # 29
    "test_summaries",  # 28
    "test_runs_steps",  # 26
    "test_packaging",  # 24
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _give_each_test_its_own_node_id(items)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker, whose collection is scheduled
        rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: file order within


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    """pytest-xdist schedules by node id: of tests sharing one it would run one, silently."""
    shared = sorted(nodeid for nodeid, n in Counter(ids).items() if n > 1)
    if shared:
        pytest.exit(f"tests share a node id, so pytest-xdist would run one of each: {shared}", returncode=4)


def _give_each_test_its_own_node_id(items: list[pytest.Item]) -> None:
    """pytest 9.2 builds an item's node id from its `originalname`, which schemathesis sets to the
    bare function name, so the ten operations of tests/test_api_properties.py share one id.
    pytest-xdist schedules by node id and would run one of the ten, silently; the id schemathesis
    means is its item name (`test_x[GET /v1/runs]`), which is what earlier pytest versions gave."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.name != getattr(item, "originalname", item.name):
            from _pytest.nodeid import NodeId  # pytest>=9.2 only; earlier ones never get here

            assert item.parent is not None
            item._id = NodeId.parse(f"{item.parent.nodeid}::{item.name}")


@pytest.fixture(scope="session")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture
def warehouse(engine_dir: Path) -> Iterator[Warehouse]:
    wh = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    yield wh
    wh.command(f"DROP DATABASE IF EXISTS `{wh.database}` SYNC")
    wh.close()


def start_server(warehouse: Warehouse, **overrides: object) -> WrmServer:
    given: dict[str, Any] = {"stats_log_interval_s": 0, **overrides}  # load_settings takes Any
    settings = load_settings(
        otlp_grpc="127.0.0.1:0", http="127.0.0.1:0", database=warehouse.database, **given
    )
    server = WrmServer(settings, warehouse=warehouse)
    server.start()
    return server


@pytest.fixture
def server(warehouse: Warehouse) -> Iterator[WrmServer]:
    srv = start_server(warehouse)
    yield srv
    srv.stop()


@contextmanager
def module_server(engine_dir: Path, **overrides: object) -> Iterator[WrmServer]:
    """A server on a database of its own, for a module-scoped fixture: only for tests that keep
    apart by trace, run or tenant and change no table or setting, since they share it."""
    wh = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    srv = start_server(wh, **overrides)
    try:
        yield srv
    finally:
        srv.stop()
        wh.command(f"DROP DATABASE IF EXISTS `{wh.database}` SYNC")
        wh.close()


def settle(server: WrmServer) -> None:
    """Assemble runs and steps for everything acknowledged so far."""
    assert server.assembler is not None
    server.assembler.catch_up()
