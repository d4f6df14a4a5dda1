"""`wrm serve` as a real process: start-up line, SIGTERM drains and exits 0, restart keeps data,
migrations are no-ops the second time, and `wrm sql`/`wrm migrate` say where they ran."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.otlp import make_span, request_of, send_raw

BANNER = re.compile(
    r"wrm serve: OTLP/gRPC on (?P<otlp>\S+), HTTP \(API, SQL, /metrics\) on http://(?P<http>\S+), "
    r"warehouse chdb://(?P<path>\S+) database wrm \((?P<applied>\d+) migrations applied\)"
)


def _wrm(*args: str) -> list[str]:
    return [sys.executable, "-m", "wrm.cli", *args]


class Served:
    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            _wrm(
                "serve",
                "--warehouse",
                f"chdb://{data}",
                "--otlp-grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = BANNER.search(line)
        assert m, (
            f"no start-up line: {line!r} {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        )
        self.otlp, self.http, self.applied = m["otlp"], m["http"], int(m["applied"])

    def sql(self, query: str) -> str:
        req = urllib.request.Request(f"http://{self.http}/?database=wrm", data=query.encode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read().decode().strip()

    def terminate(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_restart_keeps_data_and_migrations_are_noops(data_dir: Path) -> None:
    first = Served(data_dir)
    try:
        assert first.applied >= 1
        send_raw(first.otlp, request_of([make_span(f"s{i}") for i in range(100)]))
        assert first.sql("SELECT count() FROM spans") == "100"

        locked = subprocess.run(
            _wrm("migrate", "--warehouse", f"chdb://{data_dir}"), capture_output=True, text=True
        )
        assert locked.returncode == 1 and "open in another process" in locked.stderr

        via = subprocess.run(
            _wrm("sql", "--http", first.http, "SELECT count() FROM spans"), capture_output=True, text=True
        )
        assert via.returncode == 0 and via.stdout.strip() == "100"
        assert f"via the running server at http://{first.http}" in via.stderr

        # acknowledged right before SIGTERM: must be stored by the time the process exits
        send_raw(first.otlp, request_of([make_span(f"late{i}") for i in range(50)]))
    finally:
        code, err = first.terminate()
    assert code == 0, err
    assert "shutting down" in err

    second = Served(data_dir)
    try:
        assert second.applied == 0
        assert second.sql("SELECT count() FROM spans") == "150"
        ledger = second.sql("SELECT count(), uniqExact(version) FROM schema_migrations")
        assert ledger.split("\t")[0] == ledger.split("\t")[1]
    finally:
        code, err = second.terminate()
    assert code == 0, err

    direct = subprocess.run(
        _wrm(
            "sql", "--http", "127.0.0.1:9", "--warehouse", f"chdb://{data_dir}", "SELECT count() FROM spans"
        ),
        capture_output=True,
        text=True,
    )
    assert direct.returncode == 0 and direct.stdout.strip() == "150"
    assert "no server at http://127.0.0.1:9; opened chdb://" in direct.stderr

    again = subprocess.run(
        _wrm("migrate", "--warehouse", f"chdb://{data_dir}"), capture_output=True, text=True
    )
    assert again.returncode == 0 and "0 applied" in again.stdout
