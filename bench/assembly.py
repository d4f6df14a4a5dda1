"""Assembly benchmark: how long run assembly takes, per cycle and per trace, in a real server.

    python -m bench.assembly [--small 20] [--traces 2000] [--parts 2]

Starts `WrmServer` on a fresh embedded warehouse with a 60 s assembly interval, so the
background loop stays out of the way and every assembly is the caller's `catch_up()`:
  * small cycles: `--small` times, one new 6-span trace, then `catch_up()` — the fixed cost of a
    cycle (statements planned and run), which every test's `settle` and every quiet-time cycle pays;
  * bulk: `--traces` generated traces (bench.workload, 1,000-span requests), then one `catch_up()`:
    traces assembled per second;
  * resumed runs: `--traces` / 10 runs of `--parts` traces each joined by `wrm.run.id`, then one
    `catch_up()`.
Prints one JSON object. Used to compare the trace-keyed and run-keyed models (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from typing import Any

from bench.workload import build_request
from tests.otlp import send_raw
from tests.workflows import request, span
from warehouse import Warehouse
from wrm.server import WrmServer
from wrm.settings import load_settings


def _server(path: str) -> WrmServer:
    wh = Warehouse.open(f"chdb://{path}", database="bench")
    settings = load_settings(
        otlp_grpc="127.0.0.1:0", otlp_http="127.0.0.1:0", http="127.0.0.1:0",
        database="bench", stats_log_interval_s=0,
        assemble_interval_ms=60_000,
    )  # fmt: skip
    server = WrmServer(settings, warehouse=wh)
    server.start()
    return server


def _timed_catch_up(server: WrmServer) -> float:
    assert server.assembler is not None
    started = time.perf_counter()
    server.assembler.catch_up()
    return time.perf_counter() - started


def run(small: int, traces: int, parts: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = _server(tmp)
        try:
            _timed_catch_up(server)
            cycles = []
            for i in range(small):
                t = f"small-{i}-{uuid.uuid4().hex[:6]}"
                spans = [span(t, "wf", start=0, end=6)] + [
                    span(t, f"s{j}", "wf", j, j + 1, wrm__step__type="tool") for j in range(5)
                ]
                send_raw(server.otlp_address, request(spans))
                cycles.append(_timed_catch_up(server))
            out["small_cycle_ms"] = {
                "median": round(statistics.median(cycles) * 1000, 1),
                "min": round(min(cycles) * 1000, 1),
                "max": round(max(cycles) * 1000, 1),
            }
            rng = random.Random(11)
            sent = 0
            while sent < traces:
                data, ids = build_request(rng, 1000)
                send_raw(server.otlp_address, data)
                sent += len(ids)
            took = _timed_catch_up(server)
            out["bulk"] = {"traces": sent, "seconds": round(took, 2), "traces_per_s": round(sent / took)}
            runs = max(1, traces // 10)
            for p in range(parts):
                spans = []
                for r in range(runs):
                    t = f"part-{r}-{p}"
                    spans += [span(t, "wf", start=100 * p, end=100 * p + 6, wrm__run__id=f"run-{r}")] + [
                        span(t, f"s{j}", "wf", 100 * p + j, 100 * p + j + 1, wrm__step__type="tool")
                        for j in range(5)
                    ]
                send_raw(server.otlp_address, request(spans))
            took = _timed_catch_up(server)
            out["resumed"] = {"runs": runs, "parts": parts, "seconds": round(took, 2)}
        finally:
            server.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.assembly", description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=20)
    p.add_argument("--traces", type=int, default=2000)
    p.add_argument("--parts", type=int, default=2)
    args = p.parse_args()
    print(json.dumps(run(args.small, args.traces, args.parts), indent=2))


if __name__ == "__main__":
    main()
