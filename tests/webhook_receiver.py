"""A real HTTP endpoint for webhook tests: records every request it gets, answers each path with
the statuses it is told (then 200), and can hold requests unanswered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

from analytics.webhooks.attempts import Attempt, Recorder
from analytics.webhooks.policy import Outcome


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.time)
    answered: bool = True  # False: the answer could not be written (the caller was gone)
    held: bool = False  # it waited on `hold`: its caller may have died before the answer

    @property
    def msg_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    def verify(self, secret: str) -> dict[str, Any]:
        """The payload, after the standardwebhooks library checked the signature."""
        verified: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return verified


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, list[int]] = {}  # path → statuses to answer, in order, then 200
        self.hold = threading.Event()  # set: requests wait (unanswered) until it is cleared
        self.holding = threading.Event()  # set while a request is held
        self.hold_from: dict[str, int] = {}  # path → hold from the request after this many
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                held = False
                with outer._lock:
                    if len([r for r in outer.received if r.path == self.path]) == outer.hold_from.get(
                        self.path, -1
                    ):
                        outer.hold.set()
                while outer.hold.is_set():
                    held = True
                    outer.holding.set()
                    time.sleep(0.02)
                with outer._lock:
                    statuses = outer.script.get(self.path, [])
                    status = statuses.pop(0) if statuses else 200
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    got = Received(self.path, headers, body, status, held=held)
                    outer.received.append(got)
                try:
                    self.send_response(status)
                    self.send_header("content-type", "text/plain")
                    self.end_headers()
                    self.wfile.write(f"answered {status}".encode())
                except OSError:
                    got.answered = False

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, check: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = time.time() + timeout_s
        while not check():
            if time.time() > deadline:
                raise AssertionError(f"timed out; received: {[(r.path, r.status) for r in self.received]}")
            time.sleep(0.05)

    def close(self) -> None:
        self.hold.clear()
        self._server.shutdown()
        self._server.server_close()


def log_failed_delivery(recorder: Recorder, tenant: str, webhook_id: str, message_id: str) -> None:
    """A failed attempt in a subscription's delivery log, so a manual retry of it is allowed."""
    now, failed = datetime.now(UTC), Outcome.FAILED
    attempt = Attempt(tenant, webhook_id, message_id, "webhook.test", 1, now, failed, 400, 1.0, "", "", None)
    recorder.record(attempt).wait(30)
