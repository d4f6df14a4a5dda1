"""GroupWriter with fake sinks (pure Python, no warehouse): when a request is acknowledged, how
its stamps are chosen, and how a failed insert is answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from receiver.envelope import EnvelopeFields
from receiver.stats import ReceiverStats
from receiver.writer import Backpressure, GroupWriter, WriterClosed
from warehouse import WarehouseRejected, WarehouseUnavailable

FIELDS = EnvelopeFields(retention_days=30, default_tenant="default", max_attribute_bytes=1024)


def _writer(sink: Callable[[bytes], None], **kw: object) -> GroupWriter:
    options: dict[str, object] = {"max_pending_spans": 1000, "flush_max_spans": 1000, "flush_interval_s": 0.0}
    options.update(kw)
    return GroupWriter([sink], ReceiverStats(), FIELDS, **options)  # type: ignore[arg-type]


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
