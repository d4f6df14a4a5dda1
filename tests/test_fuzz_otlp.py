"""Fuzzing ingest over real gRPC (bench.fuzz at a size for `make test`): mutated OTLP requests
are answered OK, OK with partial_success, or INVALID_ARGUMENT, never a retryable code for a
request that would fail again; what OK answers accept is stored; the server stays healthy."""

from __future__ import annotations

import time

import httpx

from bench.fuzz import FUZZ_TTL_DAYS, check, send_all
from bench.fuzz_payloads import payloads
from receiver.parse import MalformedRequest, parse_request
from tests.conftest import start_server
from tests.otlp import make_span, request_of, send_raw
from warehouse import Warehouse

PAYLOADS = 400  # every mutation kind, ~130 accepted, 5+ partly; `python -m bench.fuzz --payloads 20000`
SEED = 20261202


def test_mutated_requests_get_honest_answers_and_accepted_spans_are_stored(warehouse: Warehouse) -> None:
    server = start_server(warehouse, spans_ttl_days=FUZZ_TTL_DAYS)
    try:
        now = time.time_ns()
        report = check(send_all(server.otlp_address, payloads(SEED, PAYLOADS, now), 16), warehouse, now)
        summary = report.summary()
        print(summary)
        assert report.problems == [], summary
        codes = report.codes()
        assert set(codes) <= {"OK", "INVALID_ARGUMENT"} and codes["OK"] > PAYLOADS // 10
        assert summary["ok_with_partial_success"], "the payloads never hit per-span validation"
        assert report.stored > 0
        assert server.receiver is not None
        # The engine reads only canonical encodings, so it never refused one, though many
        # payloads were not canonical as sent (what the engine used to misread or refuse).
        refused = server.receiver.stats.registry.get_sample_value(
            "wrm_insert_failures_total", {"class": "permanent"}
        )
        assert refused == 0
        assert _not_canonical(now) > PAYLOADS // 20, "the fuzzing is too weak to test the normalising"

        health = httpx.get(f"http://{server.http_address}/healthz", timeout=10)
        # ok, not merely 200: a payload that stopped run assembly would leave it "degraded"
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        assert health.json()["assembler"]["state"] == "ok"
        send_raw(server.otlp_address, request_of([make_span("after-fuzz")]))
        assert warehouse.rows("SELECT count() FROM spans WHERE name = 'after-fuzz'") == [(1,)]
    finally:
        server.stop()


def _not_canonical(now: int) -> int:
    """Payloads the receiver accepts whose bytes are not the canonical encoding of what it read."""
    count = 0
    for p in payloads(SEED, PAYLOADS, now):
        try:
            request, _ = parse_request(p.data)
        except MalformedRequest:
            continue
        request.DiscardUnknownFields()
        count += request.SerializeToString() != p.data
    return count
