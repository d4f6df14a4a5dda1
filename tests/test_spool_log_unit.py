"""The spool's files (receiver.spool_log): what is appended reads back in order, a torn tail
left by a crash is cut off (it was never acknowledged), the checkpoint survives a reopen and
frees whole segments, and two servers cannot share a spool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from receiver.spool_log import Record, SpoolLocked, SpoolLog


def _records(n: int, size: int = 100, tenant: str = "") -> list[Record]:
    return [
        Record(bytes([i % 256]) * size, spans=i + 1, retention_days=30 + i, key_tenant=tenant)
        for i in range(n)
    ]


def _read_all(log: SpoolLog, start: int) -> list[Record]:
    out: list[Record] = []
    while start < log.end:
        batch = log.read(start, 1 << 20)
        if not batch:
            break
        out += [e.record for e in batch]
        start = batch[-1].end
    return out


def _read_all_below(log: SpoolLog, position: int) -> list[Record]:
    return [e.record for e in log.read(0, 1 << 20) if e.start < position]


def test_appended_records_read_back_in_order_with_their_fields(tmp_path: Path) -> None:
    log = SpoolLog(tmp_path)
    sent = _records(3, tenant="acme") + _records(2)
    log.append(sent[:3])
    log.append(sent[3:])
    assert _read_all(log, 0) == sent
    log.close()
    reopened = SpoolLog(tmp_path)
    assert _read_all(reopened, reopened.checkpoint) == sent
    reopened.close()


def test_a_torn_tail_is_cut_off_on_open_and_what_came_before_is_kept(tmp_path: Path) -> None:
    log = SpoolLog(tmp_path)
    log.append(_records(2))
    whole_end = log.end
    log.close()
    segment = next(tmp_path.glob("*.wal"))
    with segment.open("ab") as f:  # a crash in the middle of writing a third record
        f.write(Record(b"x" * 500, 9, 30).encode()[:200])
    reopened = SpoolLog(tmp_path)
    assert reopened.end == whole_end
    assert segment.stat().st_size == whole_end
    assert _read_all(reopened, 0) == _records(2)
    reopened.append(_records(1))  # and appending goes on after the cut
    assert len(_read_all(reopened, 0)) == 3
    reopened.close()


def test_a_damaged_byte_in_the_last_record_cuts_it_off(tmp_path: Path) -> None:
    log = SpoolLog(tmp_path)
    log.append(_records(3))
    log.close()
    segment = next(tmp_path.glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[-5] ^= 0xFF  # the CRC no longer matches the last record
    segment.write_bytes(bytes(data))
    reopened = SpoolLog(tmp_path)
    assert _read_all(reopened, 0) == _records(2)
    reopened.close()


def test_segments_roll_over_and_the_checkpoint_frees_the_ones_below_it(tmp_path: Path) -> None:
    log = SpoolLog(tmp_path, segment_bytes=1000)
    for _ in range(6):
        log.append(_records(3, size=200))  # ~640 bytes a batch: a new segment nearly every time
    segments = sorted(tmp_path.glob("*.wal"))
    assert len(segments) >= 4
    everything = _read_all(log, 0)
    assert len(everything) == 18
    third = int(segments[2].stem)
    before_third = len(_read_all_below(log, third))
    log.save_checkpoint(third)
    assert sorted(tmp_path.glob("*.wal")) == segments[2:]
    log.close()
    reopened = SpoolLog(tmp_path, segment_bytes=1000)
    assert reopened.checkpoint == third
    assert 0 < before_third < 18
    assert _read_all(reopened, reopened.checkpoint) == everything[before_third:]
    reopened.close()


def test_a_checkpoint_never_moves_back(tmp_path: Path) -> None:
    log = SpoolLog(tmp_path)
    log.append(_records(2))
    log.save_checkpoint(log.end)
    log.save_checkpoint(10)
    assert log.checkpoint == log.end
    assert int((tmp_path / "checkpoint").read_text()) == log.end
    log.close()


def test_a_second_server_cannot_open_a_spool_in_use(tmp_path: Path) -> None:
    log = SpoolLog(tmp_path)
    with pytest.raises(SpoolLocked, match="in use"):
        SpoolLog(tmp_path)
    log.close()
    SpoolLog(tmp_path).close()  # free again once the first is closed


def test_a_failed_write_leaves_the_file_as_before_and_the_next_append_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = SpoolLog(tmp_path, segment_bytes=1500)
    log.append(_records(2))
    end = log.end
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:  # a disk that fills up mid-record
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space"):
        log.append(_records(3, size=300))
    monkeypatch.setattr(os, "write", real_write)
    assert log.end == end
    assert sum(p.stat().st_size for p in tmp_path.glob("*.wal")) == end  # the half record is gone
    for _ in range(4):  # and the positions still hold across segments
        log.append(_records(2, size=300))
    assert [r.request[:1] for r in _read_all(log, 0)] == [bytes([i % 256]) for i in [0, 1] + [0, 1] * 4]
    log.close()
    reopened = SpoolLog(tmp_path, segment_bytes=1500)
    assert reopened.end == log.end and len(_read_all(reopened, 0)) == 10
    reopened.close()
