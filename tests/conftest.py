"""Fixtures: one embedded engine per test process (chdb allows one data path per process), a fresh
database per test, and a real `wrm serve` (gRPC + HTTP on free ports) around it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from warehouse import Warehouse
from wrm.server import WrmServer
from wrm.settings import load_settings


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
