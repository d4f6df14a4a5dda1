"""GroupWriter with fake sinks (pure Python, no warehouse): when a request is acknowledged, how
its stamps are chosen, and how a failed insert is answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypedDict, Unpack, cast

import pytest

from receiver.envelope import EnvelopeFields
from receiver.stats import ReceiverStats
from receiver.writer import Backpressure, GroupWriter, WriterClosed
from warehouse import WarehouseRejected, WarehouseUnavailable

FIELDS = EnvelopeFields(retention_days=30, default_tenant="default", max_attribute_bytes=1024)


class _Options(TypedDict, total=False):
    max_pending_spans: int
    flush_max_spans: int
    flush_interval_s: float
    on_commit: Callable[[int], None]
    stamps_after: int


def _writer(sink: Callable[[bytes], object], **kw: Unpack[_Options]) -> GroupWriter:
    options: _Options = {"max_pending_spans": 1000, "flush_max_spans": 1000, "flush_interval_s": 0.0}
    options.update(kw)
    # GroupWriter ignores what a sink returns; the blocking fakes return `release.wait(10) and None`
    return GroupWriter([cast(Callable[[bytes], None], sink)], ReceiverStats(), FIELDS, **options)


def test_a_request_is_acknowledged_only_after_its_insert_returns() -> None:
    release = threading.Event()
    writer = _writer(lambda frames: release.wait(10) and None)
    future = writer.submit(b"request", 1)
    time.sleep(0.2)
    assert not future.done()
    release.set()
    future.result(5)
    writer.close()


def test_stamps_start_above_what_is_already_stored() -> None:
    """A restarted server passes the greatest stored stamp; new rows must land above it even when
    the clock is behind it, or the assembler (already past it) would never derive them."""
    stored = time.time_ns() // 1_000_000 + 3_600_000  # an hour ahead of this clock
    commits: list[int] = []
    writer = _writer(lambda frames: None, on_commit=commits.append, stamps_after=stored)
    for _ in range(3):
        writer.submit(b"request", 1).result(5)
    writer.close()
    assert commits and all(c > stored for c in commits)
    assert commits == sorted(set(commits))


def test_one_refused_request_does_not_fail_its_neighbours() -> None:
    calls: list[bytes] = []

    def sink(frames: bytes) -> None:
        calls.append(frames)
        if b"BAD" in frames:
            raise WarehouseRejected("Code: 436. cannot parse", 436)

    writer = _writer(sink, flush_interval_s=0.3)
    futures = [writer.submit(b"BAD" if i == 5 else b"good-%d" % i, 1) for i in range(8)]
    errors = [f.exception(5) for f in futures]
    writer.close()
    refused = [i for i, e in enumerate(errors) if e is not None]
    assert refused == [5] and isinstance(errors[5], WarehouseRejected)
    assert 2 < len(calls) <= 1 + 2 * 3 + 1  # the shared insert, then halves down to the bad one


def test_a_transient_failure_answers_every_request_retryable_without_splitting() -> None:
    calls: list[bytes] = []

    def sink(frames: bytes) -> None:
        calls.append(frames)
        raise WarehouseUnavailable("Code: 252. Too many parts", 252)

    writer = _writer(sink, flush_interval_s=0.3)
    futures = [writer.submit(b"r%d" % i, 1) for i in range(4)]
    errors = [f.exception(5) for f in futures]
    writer.close()
    assert all(isinstance(e, WarehouseUnavailable) for e in errors)
    assert len(calls) == 1


def test_a_full_queue_refuses_with_backpressure() -> None:
    release = threading.Event()
    writer = _writer(lambda frames: release.wait(10) and None, max_pending_spans=10)
    first = writer.submit(b"big", 8)
    with pytest.raises(Backpressure):
        writer.submit(b"more", 5)
    release.set()
    first.result(5)
    writer.close()


def test_close_stores_what_was_taken_and_refuses_the_rest() -> None:
    stored: list[bytes] = []

    def slow_sink(frames: bytes) -> None:
        time.sleep(0.1)
        stored.append(frames)

    writer = _writer(slow_sink)
    futures = [writer.submit(b"r%d" % i, 1) for i in range(3)]
    writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert b"".join(stored).count(b"r") >= 3
    with pytest.raises(WriterClosed):
        writer.submit(b"late", 1)


def _requests_in(frames: bytes) -> list[bytes]:
    """The request bytes of each Envelope in an insert (field 1 of each length-delimited frame)."""
    # private: not in the protobuf stubs
    from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]

    out, pos = [], 0
    while pos < len(frames):
        length, pos = _DecodeVarint(frames, pos)
        body = frames[pos : pos + length]
        assert body[0] == 0x0A  # field 1, length-delimited: the request comes first
        size, start = _DecodeVarint(body, 1)
        out.append(body[start : start + size])
        pos += length
    return out


def test_each_request_is_retried_alone_and_answered_with_its_own_error() -> None:
    """A shared insert refused for good is retried in halves down to single requests; then the
    good requests are stored once each, a request the engine refuses gets the permanent error and
    one that meets a transient failure on its own gets the retryable one."""
    inserts: list[list[bytes]] = []
    stored: list[bytes] = []

    def sink(frames: bytes) -> None:
        requests = _requests_in(frames)
        inserts.append(requests)
        if b"BAD" in requests:
            raise WarehouseRejected("Code: 469. constraint violated", 469)
        if b"FLAKY" in requests and len(requests) == 1:
            raise WarehouseUnavailable("Code: 252. Too many parts", 252)
        stored.extend(requests)

    writer = _writer(sink, flush_interval_s=0.3)
    sent = [b"good-%d" % i for i in range(8)]
    sent[2], sent[3] = b"BAD", b"FLAKY"  # in the same half: both end up alone
    futures = [writer.submit(r, 1) for r in sent]
    errors = [f.exception(5) for f in futures]
    writer.close()
    assert inserts[0] == sent  # one shared insert first
    assert [type(e) for e in errors] == [
        type(None),
        type(None),
        WarehouseRejected,
        WarehouseUnavailable,
        type(None),
        type(None),
        type(None),
        type(None),
    ]
    assert [b"BAD"] in inserts and [b"FLAKY"] in inserts  # each tried alone before its answer
    assert sorted(stored) == sorted(r for r in sent if r.startswith(b"good"))  # each stored once


def test_every_request_refused_for_good_gets_the_permanent_error() -> None:
    inserts: list[list[bytes]] = []

    def sink(frames: bytes) -> None:
        inserts.append(_requests_in(frames))
        raise WarehouseRejected("Code: 60. Unknown table", 60)

    writer = _writer(sink, flush_interval_s=0.3)
    futures = [writer.submit(b"r%d" % i, 1) for i in range(4)]
    errors = [f.exception(5) for f in futures]
    writer.close()
    assert all(isinstance(e, WarehouseRejected) for e in errors)
    assert sorted(r[0] for r in inserts if len(r) == 1) == [b"r0", b"r1", b"r2", b"r3"]
    assert len(inserts) == 7  # 4 shared, 2 halves, 4 alone: 1 + 2 + 4


def test_full_once_the_outstanding_spans_reach_the_limit_and_free_once_stored() -> None:
    release = threading.Event()
    writer = _writer(lambda frames: release.wait(10) and None, max_pending_spans=10)
    first = writer.submit(b"a", 6)
    assert not writer.full()  # 6 of 10: a request may still come in
    writer.submit(b"b", 4)
    assert writer.full()  # the receiver refuses the next one before even parsing it
    release.set()
    first.result(timeout=5)
    deadline = time.monotonic() + 5
    while writer.full():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    writer.close()
