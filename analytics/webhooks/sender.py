"""One delivery attempt over HTTP: resolve and check the target (targets.py), connect to the
address checked, send the signed message, read at most an excerpt of the answer.

The connection goes to the checked IP address, with the URL's host in the Host header and, for
https, as the TLS server name (and certificate check), so the name is resolved exactly once per
attempt. Redirects are not followed (a 3xx is an answer like any other), proxies from the
environment are not used, and the time limit covers the whole attempt."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

import httpx

from analytics.webhooks.targets import TargetRefused, Unresolved, resolve

EXCERPT_BYTES = 512
USER_AGENT = "wrm-webhooks/0.1"


@dataclass(frozen=True)
class Message:
    msg_id: str
    timestamp: datetime
    body: str  # the JSON payload, exactly as signed


@dataclass(frozen=True)
class SendResult:
    status: int | None  # None: no answer (timeout, connection error) or refused target
    latency_ms: float
    error: str = ""
    excerpt: str = ""
    retry_after: str | None = None
    refused: bool = False


class Sender:
    """Sends messages on one keep-alive client, one at a time: one Sender per thread.

    httpx's timeout bounds each network operation, so an endpoint that drips a byte at a time
    could hold an attempt for ever; a watchdog closes the client when the attempt's time is up
    (which fails the request in flight), and the next attempt gets a new client."""

    def __init__(self, timeout_s: float, allow_private: bool) -> None:
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._client = self._new_client()
        self._expired = False

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(self._timeout_s),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT, "accept-encoding": "identity"},
        )

    def _expire(self) -> None:
        self._expired = True
        self._client.close()

    def send(self, url: str, message: Message, signature: str) -> SendResult:
        if self._expired:
            self._client, self._expired = self._new_client(), False
        watchdog = threading.Timer(self._timeout_s, self._expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            result = self._send(url, message, signature)
        finally:
            watchdog.cancel()
        if self._expired and result.status is None:  # the watchdog cut it short
            return SendResult(None, result.latency_ms, f"no answer within {self._timeout_s:g} s")
        return result

    def _send(self, url: str, message: Message, signature: str) -> SendResult:
        started = time.monotonic()
        try:
            target = resolve(url, self._allow_private)
        except Unresolved as exc:  # a DNS failure may pass: retried like a connection error
            return SendResult(None, (time.monotonic() - started) * 1000, str(exc))
        except TargetRefused as exc:
            return SendResult(None, 0.0, str(exc), refused=True)
        ip = target.address
        host_in_url = f"[{ip}]" if ip.version == 6 else str(ip)
        pinned = target.url._replace(netloc=f"{host_in_url}:{target.port}").geturl()
        default_port = 443 if target.url.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        if ":" in target.host:
            host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
        headers = {
            "host": host_header,
            "content-type": "application/json",
            "webhook-id": message.msg_id,
            "webhook-timestamp": str(int(message.timestamp.timestamp())),
            "webhook-signature": signature,
        }
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        deadline = started + self._timeout_s
        try:
            request = self._client.build_request(
                "POST", pinned, content=message.body.encode(), headers=headers, extensions=extensions
            )
            response = self._client.send(request, stream=True)
            try:
                excerpt = b""
                for chunk in response.iter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES or time.monotonic() > deadline:
                        break
            finally:
                response.close()
            return SendResult(
                response.status_code,
                (time.monotonic() - started) * 1000,
                excerpt=excerpt[:EXCERPT_BYTES].decode("utf-8", "replace"),
                retry_after=response.headers.get("retry-after"),
            )
        except httpx.TimeoutException:
            return SendResult(
                None, (time.monotonic() - started) * 1000, f"no answer within {self._timeout_s:g} s"
            )
        except httpx.HTTPError as exc:
            return SendResult(None, (time.monotonic() - started) * 1000, f"{type(exc).__name__}: {exc}"[:300])

    def close(self) -> None:
        self._client.close()
