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
