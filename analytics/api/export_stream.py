"""A streamed export that always lets go of what it holds: its engine handle and its export slot.

Starlette iterates a sync body in worker threads and, when the client goes away, stops without
closing the iterator, so a generator's `finally` would run only when garbage collected — keeping
the export's handle open and its slot taken. `ExportResponse` closes the stream when the response
ends, whichever way it ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from anyio import to_thread
from clickhouse_connect.driver.client import Client
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from analytics.runs.errors import Busy
from analytics.runs.export import MEDIA_TYPES, Format, export_runs
from analytics.runs.listing import RunFilter, count_runs
from warehouse import Warehouse


class ExportStream:
    """Chunks from `rows`; `close()` (idempotent, thread-safe) closes them, the client and frees
    the slot. A chunk being read when close() is called is finished first."""

    def __init__(self, rows: Iterator[bytes], client: Client, release: Callable[[], None]) -> None:
        self._rows = rows
        self._client = client
        self._release = release
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> ExportStream:
        return self

    def __next__(self) -> bytes:
        with self._lock:
            if self._closed:
                raise StopIteration
            try:
                return next(self._rows)
            except BaseException:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._rows, "close", None)
            if close is not None:
                close()
        finally:
            try:
                self._client.close()
            finally:
                self._release()


class ExportResponse(StreamingResponse):
    def __init__(self, stream: ExportStream, **kwargs: object) -> None:
        super().__init__(stream, **kwargs)  # type: ignore[arg-type]  # media_type, headers
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # off the event loop: it may wait for a chunk being read
            await to_thread.run_sync(self._stream.close)


class Exports:
    """At most `limit` exports streaming at once (the API's and the console's together), each on
    an engine handle of its own, so a long export never holds the API's reader; one more is
    refused (Busy: 429 with Retry-After) rather than adding load without bound."""

    def __init__(self, wh: Warehouse, limit: int) -> None:
        self._wh = wh
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def response(self, tenant: str, flt: RunFilter, format: Format, steps: bool = False) -> ExportResponse:
        """Every run of `tenant` matching `flt`, newest first, streamed; `X-WRM-Run-Count` says
        how many follow."""
        if not self._slots.acquire(blocking=False):
            raise Busy(f"{self.limit} exports are already streaming; retry when one has finished")
        try:
            reader = self._wh.open_reader()
        except BaseException:
            self._slots.release()
            raise
        try:
            total = count_runs(reader, tenant, flt)  # also validates the filter before streaming
            rows = export_runs(reader, tenant, flt, format, with_steps=steps)
            stream = ExportStream(rows, reader, self._slots.release)
        except BaseException:
            reader.close()
            self._slots.release()
            raise
        headers = {
            "Content-Disposition": f'attachment; filename="runs.{format}"',
            "X-WRM-Run-Count": str(total),
        }
        return ExportResponse(stream, media_type=MEDIA_TYPES[format], headers=headers)
