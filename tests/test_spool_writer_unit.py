"""Acknowledging once spooled (receiver.spool.SpooledWriter over a real GroupWriter and spool):
an answer comes before the insert, back-pressure refuses before writing anything, a warehouse
that fails for a while gets the records again, and a request whose data the engine refuses
after its answer is stored span by span with the rest kept in rejected/. The sinks here are
plain functions standing in for the insert; the whole path through the engine is covered by
tests/test_crash_recovery.py (spooled) and tests/test_ingest_spooled.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.envelope import EnvelopeFields
from receiver.spool import SpooledWriter
from receiver.spool_log import SpoolLog
from receiver.stats import ReceiverStats
from receiver.writer import Backpressure, GroupWriter
from warehouse.errors import WarehouseRejected, WarehouseUnavailable

FIELDS = EnvelopeFields(retention_days=30, default_tenant="default", max_attribute_bytes=1024)


def _request(*names: str) -> bytes:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for i, name in enumerate(names):
        span = spans.add()
        span.trace_id, span.span_id, span.name = bytes([1] * 16), bytes([i + 1] * 8), name
        span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    return req.SerializeToString()


class Sink:
    """Records what was inserted; can be held shut, or fail on cue."""

    def __init__(self) -> None:
        self.inserted: list[bytes] = []
        self.open = threading.Event()
        self.open.set()
        self.fail_transient = 0
        self.table_missing = False
        self.lock = threading.Lock()

    def __call__(self, frames: bytes) -> None:
        self.open.wait(30)
        with self.lock:
            if self.fail_transient:
                self.fail_transient -= 1
                raise WarehouseUnavailable("the warehouse is restarting")
            if b"poison" in frames:
                raise WarehouseRejected("CHECK constraint violated", code=469)
            if self.table_missing:
                raise WarehouseRejected("Unknown table expression identifier 'otlp_landing'", code=60)
            self.inserted.append(frames)


def _writer(
    tmp_path: Path, sink: Sink, max_backlog: int = 10_000
) -> tuple[SpooledWriter, SpoolLog, ReceiverStats]:
    stats = ReceiverStats()
    spool = SpoolLog(tmp_path / "spool")
    group = GroupWriter(  # wired as receiver.core does behind a spool
        [sink],
        stats,
        FIELDS,
        max_pending_spans=100,
        flush_max_spans=50,
        flush_interval_s=0.001,
        report_queue=False,
    )
    return SpooledWriter(spool, group, stats, max_backlog_spans=max_backlog, default_days=30), spool, stats


def _wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_answer_comes_once_spooled_before_the_insert_and_the_rows_follow(tmp_path: Path) -> None:
    sink = Sink()
    sink.open.clear()  # the warehouse takes nothing yet
    writer, spool, _ = _writer(tmp_path, sink)
    writer.submit(_request("a", "b"), 2).result(timeout=5)  # answered though nothing is inserted
    assert sink.inserted == [] and spool.end > 0
    sink.open.set()
    _wait(lambda: len(sink.inserted) == 1 and writer.backlog_spans == 0)
    _wait(lambda: spool.checkpoint == spool.end)
    writer.close()


def test_back_pressure_refuses_before_writing_and_frees_up_once_stored(tmp_path: Path) -> None:
    sink = Sink()
    sink.open.clear()
    writer, spool, _ = _writer(tmp_path, sink, max_backlog=5)
    writer.submit(_request("a", "b", "c"), 3).result(timeout=5)
    end = spool.end
    with pytest.raises(Backpressure, match="3 spans are waiting"):
        writer.submit(_request("d", "e", "f"), 3)
    assert spool.end == end  # nothing of the refused request reached the spool
    sink.open.set()
    _wait(lambda: writer.backlog_spans == 0)
    writer.submit(_request("d", "e", "f"), 3).result(timeout=5)
    writer.close()
    assert len(sink.inserted) == 2


def test_a_warehouse_failing_for_a_while_gets_the_records_again(tmp_path: Path) -> None:
    sink = Sink()
    sink.fail_transient = 2
    writer, spool, _ = _writer(tmp_path, sink)
    writer.submit(_request("a"), 1).result(timeout=5)
    _wait(lambda: len(sink.inserted) == 1)
    writer.close()
    assert sink.fail_transient == 0 and spool.checkpoint == spool.end


def test_refused_after_the_answer_the_good_spans_are_stored_and_the_request_kept(tmp_path: Path) -> None:
    sink = Sink()
    writer, _spool, stats = _writer(tmp_path, sink)
    writer.submit(_request("good-1", "poison", "good-2"), 3).result(timeout=5)
    _wait(lambda: writer.backlog_spans == 0)
    writer.close()
    stored = b"".join(sink.inserted)
    assert b"good-1" in stored and b"good-2" in stored and b"poison" not in stored
    kept = list((tmp_path / "spool" / "rejected").glob("*.pb"))
    assert len(kept) == 1 and b"poison" in kept[0].read_bytes()
    assert stats.registry.get_sample_value("wrm_spans_refused_after_ack_total") == 1


def test_what_is_spooled_at_close_without_a_warehouse_is_stored_by_the_next_start(tmp_path: Path) -> None:
    sink = Sink()
    sink.fail_transient = 10**6  # the warehouse never comes back before the stop
    writer, _, _ = _writer(tmp_path, sink)
    writer.submit(_request("kept-over-restart", "b"), 2).result(timeout=5)
    writer.close(timeout=1.0)
    again = Sink()
    restarted, spool, _ = _writer(tmp_path, again)
    assert restarted.backlog_spans == 2
    _wait(lambda: len(again.inserted) == 1)
    restarted.close()
    assert b"kept-over-restart" in again.inserted[0] and spool.checkpoint == spool.end


def test_the_warehouse_s_own_refusal_keeps_the_records_until_it_is_fixed(tmp_path: Path) -> None:
    sink = Sink()
    sink.table_missing = True  # a dropped table: not the data's fault, nothing goes to rejected/
    writer, spool, stats = _writer(tmp_path, sink)
    writer.submit(_request("waits"), 1).result(timeout=5)
    time.sleep(1.0)
    assert writer.backlog_spans == 1 and spool.checkpoint < spool.end
    assert stats.registry.get_sample_value("wrm_queue_spans") == 1
    sink.table_missing = False
    _wait(lambda: writer.backlog_spans == 0)
    writer.close()
    assert b"waits" in b"".join(sink.inserted)
    assert not list((tmp_path / "spool" / "rejected").iterdir())


def test_a_failure_to_keep_a_refused_request_keeps_it_in_the_spool(tmp_path: Path) -> None:
    sink = Sink()
    writer, spool, _ = _writer(tmp_path, sink)
    real, calls = spool.keep_rejected, []

    def full_disk(entry, reason):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(entry, reason)

    spool.keep_rejected = full_disk  # type: ignore[method-assign]
    writer.submit(_request("poison", "fine"), 2).result(timeout=5)
    _wait(lambda: writer.backlog_spans == 0)
    writer.close()
    assert len(calls) == 2 and spool.checkpoint == spool.end
    assert len(list((tmp_path / "spool" / "rejected").glob("*.pb"))) == 1
