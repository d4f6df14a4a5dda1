"""`wrm serve` as a real process: start-up line, SIGTERM while requests are in flight (each is
acknowledged and stored, or refused UNAVAILABLE and not stored; new ones are refused while the
in-flight ones finish) and exit 0, restart keeps data, migrations are no-ops the second time,
and `wrm sql`/`wrm migrate` say where they ran."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.otlp import make_span, request_of, send_raw
from wrm.cli import main

BANNER = re.compile(
    r"wrm serve: OTLP/gRPC on (?P<otlp>\S+), OTLP/HTTP on http://(?P<otlp_http>\S+), "
    r"HTTP \(API, SQL, /metrics\) on http://(?P<http>\S+), "
    r"warehouse chdb://(?P<path>\S+) database wrm \((?P<applied>\d+) migrations applied\)"
)


def _wrm(*args: str) -> list[str]:
    return [sys.executable, "-m", "wrm.cli", *args]


RETRYABLE = {"UNAVAILABLE", "CANCELLED", "RESOURCE_EXHAUSTED"}


class Served:
    def __init__(self, data: Path, **env: str) -> None:
        self.proc = subprocess.Popen(
            _wrm(
                "serve",
                "--warehouse",
                f"chdb://{data}",
                "--otlp-grpc",
                "127.0.0.1:0",
                "--otlp-http",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        m = BANNER.search(line)
        assert m, (
            f"no start-up line: {line!r} {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        )
        self.otlp, self.otlp_http, self.http = m["otlp"], m["otlp_http"], m["http"]
        self.applied = int(m["applied"])
        self.signalled = False

    def sql(self, query: str) -> str:
        req = urllib.request.Request(f"http://{self.http}/?database=wrm", data=query.encode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            body: bytes = resp.read()  # urlopen's response is Any in typeshed
            return body.decode().strip()

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=30) as resp:
            m = re.search(rf"^{re.escape(name)} (\S+)$", resp.read().decode(), re.MULTILINE)
        return float(m.group(1)) if m else 0.0

    def terminate(self) -> tuple[int, str]:
        """SIGTERM (once: a second one is not what is tested) and wait for the exit."""
        if not self.signalled:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


class Exports:
    """Requests sent from threads, each answer recorded with the time it came back."""

    def __init__(self, otlp: str) -> None:
        self.otlp = otlp
        self.answers: dict[str, tuple[str, float]] = {}  # name prefix -> (gRPC code name, when)
        self.threads: list[threading.Thread] = []

    def send(self, prefix: str, spans: int) -> threading.Thread:
        def run() -> None:
            try:
                send_raw(self.otlp, request_of([make_span(f"{prefix}-{i}") for i in range(spans)]))
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            self.answers[prefix] = (code, time.monotonic())

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        return thread

    def acknowledged(self) -> set[str]:
        return {p for p, (code, _) in self.answers.items() if code == "OK"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_sigterm_in_flight_restart_keeps_data_and_migrations_are_noops(
    data_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    first = Served(data_dir, WRM_FLUSH_INTERVAL_MS="1500")
    try:
        assert first.applied >= 1
        send_raw(first.otlp, request_of([make_span(f"s{i}") for i in range(100)]))
        assert first.sql("SELECT count() FROM spans") == "100"

        locked = subprocess.run(
            _wrm("migrate", "--warehouse", f"chdb://{data_dir}"), capture_output=True, text=True
        )
        assert locked.returncode == 1 and "open in another process" in locked.stderr

        # through the server, so in this process (a process of its own spends ~3 s importing)
        capfd.readouterr()
        assert main(["sql", "--http", first.http, "SELECT count() FROM spans"]) == 0
        via = capfd.readouterr()
        assert via.out.strip() == "100"
        assert f"via the running server at http://{first.http}" in via.err

        # SIGTERM while requests are in flight: the flush waits 1.5 s, so they sit in the queue
        in_flight = Exports(first.otlp)
        for n in range(8):
            in_flight.send(f"inflight{n}", 25)
        deadline = time.monotonic() + 20
        while first.metric("wrm_queue_spans") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.metric("wrm_queue_spans") > 0 and not in_flight.answers, in_flight.answers
        first.signalled = True
        first.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # new requests while the in-flight ones finish: refused UNAVAILABLE, or (before the
        # signal is handled) taken, and then acknowledged and stored like the others
        late = Exports(first.otlp)
        for k in range(250):
            late.send(f"late{k}", 1)
            time.sleep(0.02)
            if any(code == "UNAVAILABLE" for code, _ in list(late.answers.values())):
                break
        for t in in_flight.threads + late.threads:
            t.join(60)
    finally:
        code, err = first.terminate()
    assert code == 0, err
    assert "shutting down" in err
    answers = {**in_flight.answers, **late.answers}
    # A request that reaches gRPC just as it starts to stop can be answered CANCELLED (or, rarely,
    # RESOURCE_EXHAUSTED) by grpcio itself: retryable for OTLP exporters, and never stored.
    assert {c for c, _ in answers.values()} <= {"OK", *RETRYABLE}, answers
    assert len(in_flight.answers) == 8
    acked_after_signal = [t for c, t in in_flight.answers.values() if c == "OK" and t > signalled]
    assert acked_after_signal, f"nothing in flight was acknowledged after SIGTERM: {in_flight.answers}"
    refusals = [t for c, t in late.answers.values() if c == "UNAVAILABLE"]  # the documented answer
    assert refusals and min(refusals) < max(acked_after_signal), (
        f"no new request was refused while in-flight ones finished: {answers}"
    )
    acknowledged = in_flight.acknowledged() | late.acknowledged()
    expected = 100 + sum(25 if p.startswith("inflight") else 1 for p in acknowledged)
    second = Served(data_dir)
    try:
        assert second.applied == 0
        assert second.sql("SELECT count() FROM spans") == str(expected)
        # exactly the acknowledged requests, whole: none lost, none of the refused ones stored
        stored = second.sql(
            "SELECT splitByChar('-', name)[1] AS p, count() FROM spans "
            "WHERE name NOT LIKE 's%' GROUP BY p ORDER BY p"
        )
        assert dict(line.split("\t") for line in stored.splitlines()) == {
            p: "25" if p.startswith("inflight") else "1" for p in acknowledged
        }
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
    assert direct.returncode == 0 and direct.stdout.strip() == str(expected)
    assert "no server at http://127.0.0.1:9; opened chdb://" in direct.stderr

    again = subprocess.run(
        _wrm("migrate", "--warehouse", f"chdb://{data_dir}"), capture_output=True, text=True
    )
    assert again.returncode == 0 and "0 applied" in again.stdout


@pytest.mark.parametrize("gap_s", [0.05, 0.4])
def test_a_second_sigterm_while_stopping_still_exits_0(data_dir: Path, gap_s: float) -> None:
    """An impatient operator (or a supervisor) signals twice: the drain goes on and the process
    still exits 0, also when the second signal lands while the interpreter winds down (Python
    puts the default action back for handled signals there, which ended a clean stop with -15)."""
    served = Served(data_dir)
    served.proc.send_signal(signal.SIGTERM)
    time.sleep(gap_s)
    served.proc.send_signal(signal.SIGTERM)
    served.signalled = True
    code, err = served.terminate()
    assert code == 0, err[-2000:]
    assert "wrm stopped" in err
