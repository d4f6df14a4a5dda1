"""The spool's files: an append-only log of accepted requests, fsynced before they are acknowledged.

Layout of `directory`:
    LOCK                         held (flock) by the one server using the spool
    checkpoint                   the position below which every record is in the warehouse
    00000000000000000000.wal     segments, each named by the position of its first byte
    rejected/<position>.pb       requests whose spans the engine refused after they were acknowledged

A record is `WRM1`, the body's length (u32) and CRC-32 (u32), then the body: retention days (u16),
spans (u32), the key's tenant (u8 length + UTF-8) and the ExportTraceServiceRequest bytes. A
position is a byte offset across all segments, so it only grows. On open, the tail of the last
segment is checked record by record: a record cut short by a crash was never fsynced, hence never
acknowledged, and is cut off.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"WRM1"
_HEAD = struct.Struct("<4sII")  # magic, body length, crc32(body)
_BODY = struct.Struct("<HIB")  # retention_days, spans, len(key_tenant)
SEGMENT_BYTES = 64 << 20


class SpoolLocked(RuntimeError):
    """Another server is using this spool directory."""


@dataclass(frozen=True)
class Record:
    request: bytes
    spans: int
    retention_days: int
    key_tenant: str = ""

    def encode(self) -> bytes:
        tenant = self.key_tenant.encode()
        body = _BODY.pack(self.retention_days, self.spans, len(tenant)) + tenant + self.request
        return _HEAD.pack(MAGIC, len(body), zlib.crc32(body)) + body


@dataclass(frozen=True)
class Entry:
    """A record read back, with where it starts and where the next one does."""

    start: int
    end: int
    record: Record


def _decode(body: bytes) -> Record:
    days, spans, n = _BODY.unpack_from(body)
    at = _BODY.size
    return Record(body[at + n :], spans, days, body[at : at + n].decode())


class SpoolLog:
    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "rejected").mkdir(exist_ok=True)
        self._lock = (directory / "LOCK").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SpoolLocked(f"the spool {directory} is in use by another wrm serve") from None
        self.checkpoint = self._read_checkpoint()
        starts = self._segments()
        if not starts:
            starts = [self.checkpoint]
            (directory / _name(self.checkpoint)).touch()
        self.checkpoint = max(self.checkpoint, starts[0])
        self._active_start = starts[-1]
        self.end = self._repair_tail(self._active_start)
        self._out = (directory / _name(self._active_start)).open("ab")

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.wal") if p.stem.isdigit())

    def _read_checkpoint(self) -> int:
        try:
            return int((self.directory / "checkpoint").read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _repair_tail(self, start: int) -> int:
        """The end of the last whole record of the last segment; a torn record after it is cut off."""
        path = self.directory / _name(start)
        data = path.read_bytes()
        at = 0
        while at + _HEAD.size <= len(data):
            magic, size, crc = _HEAD.unpack_from(data, at)
            body = data[at + _HEAD.size : at + _HEAD.size + size]
            if magic != MAGIC or len(body) != size or zlib.crc32(body) != crc:
                break
            at += _HEAD.size + size
        if at != len(data):
            log.warning("spool %s: %d bytes after the last whole record were cut off", path, len(data) - at)
            with path.open("r+b") as f:
                f.truncate(at)
                os.fsync(f.fileno())
        return start + at

    def append(self, records: Sequence[Record]) -> int:
        """Write `records` and fsync them; returns the new end. Raises OSError (disk full…)."""
        data = b"".join(r.encode() for r in records)
        if self.end > self._active_start and self.end - self._active_start + len(data) > self._segment_bytes:
            self._out.close()
            self._active_start = self.end
            self._out = (self.directory / _name(self.end)).open("ab")
            _fsync_dir(self.directory)
        try:
            self._out.write(data)
            self._out.flush()
            os.fdatasync(self._out.fileno())
        except OSError:
            # Whatever part of it reached the file is not acknowledged: cut it off again.
            self._out.truncate(self.end - self._active_start)
            raise
        self.end += len(data)
        return self.end

    def read(self, start: int, max_bytes: int) -> list[Entry]:
        """Whole records from `start` up to the end known at call time, about `max_bytes` of them."""
        entries: list[Entry] = []
        end = self.end
        segments = self._segments()
        while start < end and (not entries or entries[-1].end - entries[0].start < max_bytes):
            seg = max(s for s in segments if s <= start)
            with (self.directory / _name(seg)).open("rb") as f:
                f.seek(start - seg)
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size:  # the end of a segment: the next one starts here
                    later = [s for s in segments if s > seg]
                    if not later:
                        break
                    start = later[0]
                    continue
                magic, size, crc = _HEAD.unpack(head)
                body = f.read(size)
            if magic != MAGIC or len(body) != size or zlib.crc32(body) != crc:
                raise OSError(f"spool record at {start} is damaged")
            nxt = start + _HEAD.size + size
            entries.append(Entry(start, nxt, _decode(body)))
            start = nxt
        return entries

    def save_checkpoint(self, position: int) -> None:
        """Every record below `position` is stored: say so durably, and drop the segments it covers."""
        if position <= self.checkpoint:
            return
        tmp = self.directory / "checkpoint.tmp"
        with tmp.open("w") as f:
            f.write(str(position))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.directory / "checkpoint")
        self.checkpoint = position
        segments = self._segments()
        for start, nxt in itertools.pairwise(segments):
            if nxt <= position:
                (self.directory / _name(start)).unlink(missing_ok=True)

    def keep_rejected(self, entry: Entry) -> Path:
        """Keep a request whose spans the engine refused after acknowledgement, for the operator."""
        path = self.directory / "rejected" / f"{entry.start:020d}.pb"
        path.write_bytes(entry.record.request)
        return path

    def close(self) -> None:
        self._out.close()
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def _name(start: int) -> str:
    return f"{start:020d}.wal"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
