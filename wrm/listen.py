"""Serve an ASGI app on HOST:PORT from a thread of its own (uvicorn): the HTTP API's port and
the OTLP/HTTP port. Port 0 picks a free port; `address` says which."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn


class Listener:
    def __init__(
        self, app: Any, host: str, port: int, name: str, on_exit: Callable[[], None] = lambda: None
    ) -> None:
        """`on_exit` runs in the server's thread once it has stopped serving."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets that say they are
        # TCP, and without it a response written in two parts waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen on {host}:{port} for {name}: {exc.strerror}") from None
        sock.listen(1024)
        shown = f"[{host}]" if ":" in host else host
        self.address = f"{shown}:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)

        def serve() -> None:
            try:
                self._server.run(sockets=[sock])
            finally:
                on_exit()

        self._thread = threading.Thread(
            target=serve, name=f"wrm-{name.lower().replace('/', '-')}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise OSError(f"{name} did not start on {host}:{port}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking connections, let requests in flight finish (up to `timeout`)."""
        self._server.should_exit = True
        self._thread.join(timeout)
