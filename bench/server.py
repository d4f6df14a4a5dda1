"""The real `wrm serve` as a subprocess: start it, watch its memory and CPU, query it, stop it.

The benchmark measures the server users run, so it goes through the console script with the
same flags and reads the addresses from the start-up banner rather than assuming ports.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import psutil

_BANNER_RE = re.compile(
    r"OTLP/gRPC on (?P<otlp>\S+), OTLP/HTTP on http://(?P<otlp_http>\S+), HTTP .*? on http://(?P<http>[^\s,]+)"
)
RSS_INTERVAL_S = 0.2


class ServerError(RuntimeError):
    """The server did not start, answer or stop as expected; the message holds its stderr tail."""


def create_key(warehouse_dir: Path, tenant: str, role: str, name: str) -> str:
    """A new API key, made with `wrm keys create` on the warehouse directly (no server runs on
    it yet: chdb lets one process open a warehouse), as an operator makes a server's first key."""
    wrm = Path(sys.executable).with_name("wrm")
    argv = [
        str(wrm), "keys",
        "--warehouse", f"chdb://{warehouse_dir}",
        "--database", "wrm",
        "--http", f"127.0.0.1:{_unused_port()}",  # so no server already running is asked
        "create", "--tenant", tenant, "--role", role, "--name", name,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not done.stdout.strip():
        raise ServerError(f"wrm keys create failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WrmProcess:
    """One `wrm serve` on a fresh embedded warehouse, with ephemeral ports. With `admin_key`, it
    requires API keys (WRM_AUTH=required) and reads its SQL endpoint with that key."""

    def __init__(
        self,
        warehouse_dir: Path,
        stats_interval_s: float,
        log_path: Path,
        src: Path | None = None,
        admin_key: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.warehouse_dir = warehouse_dir
        self.log_path = log_path
        self.otlp = ""
        self.otlp_http = ""
        self.http = ""
        self.peak_rss = 0
        self._headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
        env = dict(os.environ, WRM_STATS_LOG_INTERVAL_S=str(stats_interval_s), **(env or {}))
        if admin_key:
            env.update(WRM_AUTH="required", WRM_ADMIN_KEY=admin_key)
        if src is not None:  # another checkout's packages shadow the editable install
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(src.resolve()), env.get("PYTHONPATH"))))
        wrm = Path(sys.executable).with_name("wrm")
        argv = [
            str(wrm), "serve",
            "--warehouse", f"chdb://{warehouse_dir}",
            "--database", "wrm",
            "--otlp-grpc", "127.0.0.1:0",
            "--otlp-http", "127.0.0.1:0",
            "--http", "127.0.0.1:0",
        ]  # fmt: skip
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._log, env=env)
        self._ps = psutil.Process(self.proc.pid)
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample_rss, name="rss-sampler", daemon=True)
        self._sampler.start()

    def wait_ready(self, timeout_s: float = 120.0) -> str:
        """Read the banner line and take the two addresses from it."""
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise ServerError(f"no start-up line from wrm serve\n{self.stderr_tail()}")
            if sel.select(left):
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise ServerError(f"wrm serve closed stdout\n{self.stderr_tail()}")
                line += chunk
        banner = line.decode(errors="replace").strip()
        m = _BANNER_RE.search(banner)
        if not m:
            raise ServerError(f"cannot parse the start-up line: {banner!r}")
        self.otlp, self.otlp_http, self.http = m.group("otlp"), m.group("otlp_http"), m.group("http")
        return banner

    def _sample_rss(self) -> None:
        while not self._sampling.wait(RSS_INTERVAL_S):
            try:
                rss = self._ps.memory_info().rss
                rss += sum(c.memory_info().rss for c in self._ps.children(recursive=True))
            except psutil.Error:
                return
            self.peak_rss = max(self.peak_rss, rss)

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far."""
        t = self._ps.cpu_times()
        return t.user + t.system

    def sql(self, query: str, timeout_s: float = 300.0) -> str:
        """Run read-only SQL through the server's ClickHouse-compatible HTTP endpoint."""
        req = urllib.request.Request(
            f"http://{self.http}/", data=query.encode(), method="POST", headers=self._headers
        )
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body: bytes = resp.read()
        return body.decode()

    def wait_stored(self, expected: int, timeout_s: float = 300.0) -> tuple[int, float]:
        """Poll the stored span count until it reaches `expected` (with ingest_ack = spooled, rows
        land after the answer); returns the last count and the seconds it took."""
        started = time.monotonic()
        while True:
            stored = int(self.sql("SELECT count() FROM wrm.spans FINAL").strip())
            if stored >= expected or time.monotonic() - started > timeout_s:
                return stored, time.monotonic() - started
            time.sleep(0.2)

    def wait_assembled(self, timeout_s: float = 600.0) -> float:
        """Poll until the run assembler's watermark covers the newest stored span; the seconds it
        took (every run is then current with every span stored)."""
        started = time.monotonic()
        newest = self.sql("SELECT toUnixTimestamp64Milli(max(ingested_at)) FROM wrm.spans").strip()
        while time.monotonic() - started < timeout_s:
            mark = self.sql(
                "SELECT max(watermark_ms) FROM wrm.assembly_state FINAL WHERE name = 'runs'"
            ).strip()
            if int(mark or 0) >= int(newest or 0):
                break
            time.sleep(0.2)
        return time.monotonic() - started

    def metrics(self) -> dict[str, float]:
        """Unlabelled samples from /metrics, e.g. `wrm_spans_accepted_total`."""
        out: dict[str, float] = {}
        req = urllib.request.Request(f"http://{self.http}/metrics", headers=self._headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            for line in resp.read().decode().splitlines():
                name, _, value = line.partition(" ")
                if line and not line.startswith("#") and "{" not in name:
                    out[name] = float(value)
        return out

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return int(self._ps.memory_info().rss)

    def profile(self, out: Path, seconds: float, extra: Sequence[str] = ()) -> subprocess.Popen[bytes]:
        """Sample the server with py-spy for `seconds`; the format follows the file's extension."""
        search = os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))
        spy = shutil.which("py-spy", path=search)
        if spy is None:
            raise ServerError("py-spy not found; install it with `.venv/bin/pip install py-spy`")
        fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
        argv = [spy, "record", "--pid", str(self.proc.pid), "--output", str(out), "--format", fmt]
        argv += ["--duration", str(max(1, round(seconds))), "--rate", "100"]
        if "--native" not in extra:  # native stacks need the target paused while sampled
            argv.append("--nonblocking")
        argv += extra
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self, timeout_s: float = 120.0) -> int:
        """SIGTERM, wait for a clean exit; returns the exit code (-9 if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = -9
        self._sampling.set()
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush, assemble or close anything."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._sampling.set()
        self._log.close()

    def stderr_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
