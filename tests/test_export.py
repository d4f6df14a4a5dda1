"""A 100,000-run export streams: the server's memory does not grow with the number of runs."""

from __future__ import annotations

import threading

import httpx
import psutil
import pytest

from tests.conftest import start_server
from warehouse import Warehouse

RUNS = 100_000  # a tenth warms up the engine's caches; 50,000 runs did not, 100,000 do
_GENERATE = """
INSERT INTO runs_store (tenant_id, trace_id, run_id, workflow_name, workflow_version, environment, status,
                        start_time, end_time, duration_ns, step_count, input_tokens, output_tokens, cost_usd,
                        first_pass, retention_days, assembled_at, last_span_at)
SELECT 'default', lower(hex(sipHash128(number))) AS t, t, 'bulk', 'v' || toString(number % 10), 'production',
       if(number % 10 = 0, 'failed', 'completed'), now64(9) - toIntervalSecond(number), now64(9),
       1000000 * (number % 5000), 4, 100, 20, 0.001, number % 10 != 0, 90, now64(6), now64(3)
FROM numbers({n:UInt64})
"""


def _stream(client: httpx.Client, params: dict[str, str]) -> tuple[int, int, int]:
    """Lines and bytes received, and this process's peak RSS (the server runs in it) meanwhile."""
    process = psutil.Process()
    peak = process.memory_info().rss
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    received = lines = 0
    try:
        with client.stream("GET", "/v1/runs/export", params=params) as resp:
            assert resp.status_code == 200, resp.read()
            for chunk in resp.iter_bytes():
                received += len(chunk)
                lines += chunk.count(b"\n")
    finally:
        stop.set()
        sampler.join()
    return lines, received, peak


@pytest.mark.timeout(600)
def test_a_large_export_keeps_memory_flat(warehouse: Warehouse) -> None:
    server = start_server(warehouse)
    try:
        warehouse.command(_GENERATE, {"n": RUNS})
        with httpx.Client(base_url=f"http://{server.http_address}", timeout=300) as client:
            # a tenth of the runs first: what a batch costs, allocator and caches warmed up
            small_lines, _, small_peak = _stream(client, {"format": "csv", "version": "v1"})
            assert small_lines == RUNS // 10 + 1
            lines, received, peak = _stream(client, {"format": "csv"})
        assert lines == RUNS + 1  # the header, then every run once
        # 10× the runs (~17 MiB of CSV; 100k run objects would take ~180 MiB) adds little
        growth_mib = (peak - small_peak) / 2**20
        assert received > 15 * 2**20 and growth_mib < 40, (received, growth_mib)
    finally:
        server.stop()
