"""Exports have bounded capacity: each streams on an engine handle of its own, and past
`export_max_concurrent` the next one is answered 429 with Retry-After (a problem document)
instead of adding load without bound; a finished export frees its slot."""

from __future__ import annotations

import time

import httpx

from tests.conftest import start_server
from tests.test_export import _GENERATE
from warehouse import Warehouse


def test_an_export_over_capacity_gets_429_until_one_finishes(warehouse: Warehouse) -> None:
    server = start_server(warehouse, export_max_concurrent=1)
    try:
        warehouse.command(_GENERATE, {"n": 100_000})  # ~17 MiB of CSV: more than socket buffers hold
        small = {"format": "csv", "version": "v1"}
        with httpx.Client(base_url=f"http://{server.http_address}", timeout=60) as client:
            with client.stream("GET", "/v1/runs/export", params={"format": "csv"}) as first:
                assert first.status_code == 200
                next(first.iter_bytes())  # streaming, and this client reads no more for now
                busy = client.get("/v1/runs/export", params={"format": "csv"})
                assert busy.status_code == 429
                assert busy.headers["Retry-After"] == "1"
                assert busy.headers["content-type"] == "application/problem+json"
                assert busy.json()["type"].endswith("/too-many-requests")
                assert client.get("/v1/runs", params={"limit": 1}).status_code == 200  # the API is free
            # the first client went away mid-stream: its slot and handle are let go promptly
            deadline = time.monotonic() + 10
            while (after := client.get("/v1/runs/export", params=small)).status_code == 429:
                assert time.monotonic() < deadline, "the abandoned export kept its slot"
                time.sleep(0.1)
            assert after.status_code == 200 and after.text.count("\n") == 10_001
            again = client.get("/v1/runs/export", params=small)  # a finished export freed it too
            assert again.status_code == 200
    finally:
        server.stop()
