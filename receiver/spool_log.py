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
import json
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


class SpoolLocked(OSError):
    """Another server is using this spool directory."""


class SpoolNotEmpty(OSError):
    """A spool holds acknowledged records while the server would not read it (ingest_ack = stored)."""


class SpoolBroken(OSError):
    """A failed write could not be undone: the spool takes nothing until the server restarts
    (and repairs the tail on open)."""


@dataclass(frozen=True)
class Record:
    request: bytes
    spans: int
    retention_days: int
    key_tenant: str = ""

    def encode(self) -> bytes:
        tenant = self.key_tenant.encode()  # ≤ 64 bytes (TENANT_RE); days ≤ 3650 (settings)
        if len(tenant) > 255 or not 0 <= self.retention_days <= 65_535:
            raise ValueError("a spool record holds a tenant of at most 255 bytes and days below 65,536")
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
        self.checkpoint = _checkpoint(directory)
        starts = self._segments()
        if not starts:
            starts = [self.checkpoint]
            (directory / _name(self.checkpoint)).touch()
        self.checkpoint = max(self.checkpoint, starts[0])
        self._active_start = starts[-1]
        self.end = self._repair_tail(self._active_start)
        if self.checkpoint > self.end:  # a checkpoint past the data: nothing after it to replay
            log.error("spool %s: checkpoint %d is past the end %d", directory, self.checkpoint, self.end)
            self.checkpoint = self.end
        self.broken = False
        self._fd = self._open_segment(self._active_start)

    def _open_segment(self, start: int) -> int:
        # Unbuffered: a failed write leaves nothing behind in a buffer to be written later.
        return os.open(self.directory / _name(start), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _segments(self) -> list[int]:
        return _segments(self.directory)

    def _repair_tail(self, start: int) -> int:
        """The end of the last whole record of the last segment; a torn record after it is cut off."""
        path = self.directory / _name(start)
        data = path.read_bytes()
        at = 0
        while at + _HEAD.size <= len(data):
            magic, size, crc = _HEAD.unpack_from(data, at)
            body = data[at + _HEAD.size : at + _HEAD.size + size]
            if not _intact(magic, size, crc, body):
                break
            at += _HEAD.size + size
        if at != len(data):
            log.warning("spool %s: %d bytes after the last whole record were cut off", path, len(data) - at)
            with path.open("r+b") as f:
                f.truncate(at)
                os.fsync(f.fileno())
        return start + at

    def append(self, records: Sequence[Record]) -> int:
        """Write `records` and fsync them; returns the new end. Raises OSError (disk full…), after
        which the file is as before the call, or SpoolBroken when that could not be ensured."""
        if self.broken:
            raise SpoolBroken(f"the spool {self.directory} could not undo a failed write; restart the server")
        data = b"".join(r.encode() for r in records)
        if self.end > self._active_start and self.end - self._active_start + len(data) > self._segment_bytes:
            fd = self._open_segment(self.end)  # opened first: on failure the old segment stays in use
            _fsync_dir(self.directory)
            os.close(self._fd)
            self._fd, self._active_start = fd, self.end
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fdatasync(self._fd)
        except OSError:
            # Whatever part of it reached the file is not acknowledged: cut it off again.
            size = self.end - self._active_start
            try:
                os.ftruncate(self._fd, size)
                if os.fstat(self._fd).st_size != size:
                    raise OSError("size after truncate")
            except OSError:
                self.broken = True
                log.error(
                    "spool %s: a failed write could not be cut off; taking nothing more", self.directory
                )
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
            head = b""
            with (self.directory / _name(seg)).open("rb") as f:
                f.seek(start - seg)
                while start < end and (not entries or entries[-1].end - entries[0].start < max_bytes):
                    head = f.read(_HEAD.size)
                    if not head:  # the end of this segment: the next one starts here
                        break
                    if len(head) < _HEAD.size:
                        raise OSError(f"spool record at {start} is damaged")
                    magic, size, crc = _HEAD.unpack(head)
                    body = f.read(size)
                    if not _intact(magic, size, crc, body):
                        raise OSError(f"spool record at {start} is damaged")
                    nxt = start + _HEAD.size + size
                    entries.append(Entry(start, nxt, _decode(body)))
                    start = nxt
            if start < end and not head:
                later = [s for s in segments if s > seg]
                if not later:
                    break
                start = later[0]
        return entries

    def save_checkpoint(self, position: int) -> None:
        """Every record below `position` is stored: say so durably, and drop the segments it covers."""
        if position <= self.checkpoint:
            return
        tmp = self.directory / "checkpoint.tmp"
        _write_synced(tmp, str(position).encode())
        os.replace(tmp, self.directory / "checkpoint")
        self.checkpoint = position
        segments = self._segments()
        for start, nxt in itertools.pairwise(segments):
            if nxt <= position:
                (self.directory / _name(start)).unlink(missing_ok=True)

    def keep_rejected(self, entry: Entry, reason: str) -> Path:
        """Keep a request whose spans the engine refused after acknowledgement, for the operator:
        `<position>.pb` (the ExportTraceServiceRequest) and `<position>.json` (its tenant fixed
        by the sender's key, retention, spans and why), both fsynced."""
        r = entry.record
        meta = {
            "key_tenant": r.key_tenant,
            "retention_days": r.retention_days,
            "spans": r.spans,
            "reason": reason,
        }
        path = self.directory / "rejected" / f"{entry.start:020d}.pb"
        _write_synced(path, r.request)
        _write_synced(path.with_suffix(".json"), json.dumps(meta).encode())
        _fsync_dir(path.parent)
        return path

    def backlog_bytes(self) -> int:
        return self.end - self.checkpoint

    def unstored(self) -> tuple[int, int]:
        """Requests and spans after the checkpoint: acknowledged, maybe not yet stored."""
        requests = spans = 0
        at = self.checkpoint
        while at < self.end and (batch := self.read(at, 8 << 20)):
            requests += len(batch)
            spans += sum(e.record.spans for e in batch)
            at = batch[-1].end
        return requests, spans

    def close(self) -> None:
        if self._lock.closed:
            return
        os.close(self._fd)
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def unstored_bytes(directory: Path) -> int:
    """Bytes after a spool's checkpoint, read without opening it (0 when there is no spool)."""
    segments = _segments(directory)
    if not segments:
        return 0
    end = segments[-1] + (directory / _name(segments[-1])).stat().st_size
    return max(0, end - max(_checkpoint(directory), segments[0]))


def _segments(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob("*.wal") if p.stem.isdigit())


def _checkpoint(directory: Path) -> int:
    try:
        return int((directory / "checkpoint").read_text().strip() or 0)
    except FileNotFoundError:
        return 0


def _intact(magic: bytes, size: int, crc: int, body: bytes) -> bool:
    """Whether a record read back is whole and as written."""
    return magic == MAGIC and len(body) == size and zlib.crc32(body) == crc


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _name(start: int) -> str:
    return f"{start:020d}.wal"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
