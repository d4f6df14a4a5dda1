"""Fixtures: one embedded engine per test process (chdb allows one data path per process), a fresh
database per test, and a real `wrm serve` (gRPC + HTTP on free ports) around it."""

from __future__ import annotations

import fcntl
import tempfile
import uuid
from collections import Counter
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from tests.browser import browser, page  # noqa: F401  (fixtures of the console tests)
from warehouse import Warehouse
from wrm.server import WrmServer
from wrm.settings import load_settings

# The modules that take longest, longest first (seconds of test time under `make test`, 2 cores),
# then those with a test in ALONE. `make test` runs two pytest-xdist workers, each taking a whole
# module at a time in this order (then the rest in file order), so that no long module starts last
# while the other worker idles. An ALONE call waits for the other worker's test in progress, and
# that worker waits for the call: late in the run the other worker's tests are short (or done),
# so both waits are short. The order decides only when each module runs, never whether it runs: a
# stale list costs time.
LONGEST_FIRST = (
    "test_api_properties",  # 89
    "test_run_parts",  # 55
    "test_report_schedules",  # ~55 (not yet measured in a full run)
    "test_console_effectiveness",  # ~40 (not yet measured in a full run)
    "test_console_run",  # ~35 (not yet measured in a full run)
    "test_console_runs",  # ~28 (not yet measured in a full run)
    "test_concurrency",  # 38
    "test_run_invariants",  # 36
    "test_retention",  # 35
    "test_serve_process",  # 34
    "test_ingest_auth",  # 31
    "test_redaction_api",  # 28
    "test_ingest_errors",  # 26
    "test_assembler_failures",  # 25
    "test_runs_steps",  # 25
    "test_indicators",  # 24
    "test_reports",  # ~16 (not yet measured in a full run)
    "test_prices",  # ~13 (not yet measured in a full run)
    "test_report_render",  # ~9 (not yet measured in a full run)
    "test_events_api",  # 22
    "test_webhooks",  # ~20 (not yet measured in a full run)
    "test_export",  # 22
    "test_runs_api",  # 21
    "test_access_api",  # 20
    "test_otlp_http",  # 20
    "test_instrumentation_libs",  # 19
    "test_sql_tenancy",  # 18
    "test_run_list",  # 18
    "test_events_equivalence",  # 18
    "test_fuzz_otlp",  # 18
    "test_api_errors",  # 17
    "test_summaries",  # 17
    "test_otlp_http_errors",  # 17
    "test_webhooks_crash",  # ~14 (not yet measured in a full run)
    "test_alerts",  # ~11 (not yet measured in a full run)
    "test_redaction_policy_store",  # 16
    "test_keys_cli",  # 16
    "test_access_modes",  # 15
    "test_redaction_ingest",  # 15
    "test_packaging",  # 14
    "test_sql_endpoint",  # 14
    "test_redaction_detectors",  # 14
    "test_partial_success",  # 14
    "test_redaction_triggers",  # 11
    "test_sql_limits",  # 11
    "test_sql_safety",  # 10
    "test_events_hybrid",  # 10
    "test_redaction_detectors_cards",  # 10
    "test_migrations",  # 10
    "test_export_capacity",  # 9
    "test_upgrade_run_keys",  # 8
    "test_redact_cli",  # 7
    "test_ingest_sdk",  # 7
    "test_layering",  # 6
    "test_isolation",  # 39
    "test_sql_auth",  # 25
    "test_crash_recovery",  # 21
    "test_ingest_deadline",  # 9
)


# Tests that measure latency or wait against a clock. Under `make test` the call of each (its
# set-up and teardown run beside the other worker's tests) runs while the other worker waits
# between two of its tests, so that worker's load is not part of what they measure.
ALONE = (
    "tests/test_isolation.py::test_health_api_and_ingest_answer_while_a_long_query_runs",
    "tests/test_isolation.py::test_a_query_over_capacity_gets_429_with_retry_after",
    "tests/test_crash_recovery.py::",
    "tests/test_ingest_deadline.py::",
    "tests/test_sql_auth.py::test_one_tenants_slow_statements_leave_room_for_others",
)


class _WorkerLock:
    """A lock the pytest-xdist workers share: every test holds it shared, and the call of a test
    in ALONE exclusively. The gate keeps a waiting exclusive holder from being passed by new
    shared ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._gate: IO[bytes] = open(path.with_suffix(".gate"), "ab")  # noqa: SIM115 (held for the run)
        self._lock: IO[bytes] = open(path, "ab")  # noqa: SIM115

    def _take(self, mode: int) -> None:
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, mode)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    @contextmanager
    def shared(self) -> Iterator[None]:
        self._take(fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Within shared(). The shared hold is let go before queueing at the gate: two workers
        turning theirs into exclusive at once would each wait for the other's."""
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._take(fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_SH)  # for the teardown (waits if the other took it)

    def close(self) -> None:
        self._gate.close()
        self._lock.close()
        for path in (self.path, self.path.with_suffix(".gate")):
            path.unlink(missing_ok=True)


_WORKER_LOCK = pytest.StashKey[_WorkerLock]()


def pytest_configure(config: pytest.Config) -> None:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        run = workerinput["testrunuid"]
        config.stash[_WORKER_LOCK] = _WorkerLock(Path(tempfile.gettempdir()) / f"wrm-tests-{run}.lock")


def pytest_unconfigure(config: pytest.Config) -> None:
    lock = config.stash.get(_WORKER_LOCK, None)
    if lock is not None:
        lock.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    lock = item.config.stash.get(_WORKER_LOCK, None)
    if lock is None:
        return (yield)
    with lock.shared():  # set-up, call and teardown
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    lock = item.config.stash.get(_WORKER_LOCK, None)
    if lock is None or not item.nodeid.startswith(ALONE):
        return (yield)
    with lock.exclusive():
        return (yield)


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


def drop_database(wh: Warehouse) -> None:
    """Drop a test's database and the tenant databases the SQL port made beside it."""
    prefix = f"{wh.database}_t_"
    for (name,) in wh.rows(
        "SELECT name FROM system.databases WHERE startsWith(name, {p:String})", {"p": prefix}
    ):
        wh.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
    wh.command(f"DROP DATABASE IF EXISTS `{wh.database}` SYNC")


@pytest.fixture
def warehouse(engine_dir: Path) -> Iterator[Warehouse]:
    wh = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    yield wh
    drop_database(wh)
    wh.close()


def start_server(warehouse: Warehouse, **overrides: object) -> WrmServer:
    given: dict[str, Any] = {  # load_settings takes Any
        "otlp_grpc": "127.0.0.1:0", "otlp_http": "127.0.0.1:0", "http": "127.0.0.1:0",
        "stats_log_interval_s": 0, **overrides
    }  # fmt: skip
    settings = load_settings(database=warehouse.database, **given)
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
        drop_database(wh)
        wh.close()


def settle(server: WrmServer) -> None:
    """Assemble runs and steps for everything acknowledged so far."""
    assert server.assembler is not None
    server.assembler.catch_up()
