"""Which webhook URLs may be called (analytics/webhooks/targets.py), the retry policy and the
signatures: pure checks, plus the server refusing private targets by default, at creation and
again at delivery, after DNS resolution."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from analytics.webhooks import targets
from analytics.webhooks.policy import Outcome, RetryPolicy, retry_after_seconds
from analytics.webhooks.schemas import WebhookCreate
from analytics.webhooks.signing import new_secret, signature_header
from analytics.webhooks.targets import TargetRefused, Unresolved, is_allowed, parse_url, resolve
from tests.webhook_receiver import Receiver
from wrm.server import WrmServer

REFUSED_ADDRESSES = [
    "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "255.255.255.255", "240.0.0.1", "::1", "fe80::1", "fc00::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::",
    "::7f00:1", "::a00:1", "::808:808",  # IPv4-compatible (deprecated, ::/96)
    "::ffff:0:7f00:1", "::ffff:0:a00:1",  # IPv4-translated (::ffff:0:0:0/96)
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe",  # NAT64, well-known prefix
    "64:ff9b:1::7f00:1", "64:ff9b:1::a00:1", "64:ff9b:1::808:808",  # NAT64, local-use /48
    "2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::",  # 6to4 around 127.0.0.1, 10.0.0.1, 169.254.169.254
    "2001:0:a00:1::f5ff:fffe",  # Teredo: server 10.0.0.1, client 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo: server 65.54.227.120, client 127.0.0.1
    "2001:0:a00:1:8000:63bf:f7f7:f7f7",  # Teredo: server 10.0.0.1, client 8.8.8.8
    "fec0::1",  # site-local (deprecated)
]  # fmt: skip


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_allowed(ip, allow_private=False)
    assert is_allowed(ip, allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8", "93.184.215.14", "2606:4700::6810:85e5", "2a00:1450:4001:82a::200e",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",  # mapped, NAT64, 6to4 around 8.8.8.8
    ],
)  # fmt: skip
def test_global_addresses_are_allowed(address: str) -> None:
    assert is_allowed(ipaddress.ip_address(address), allow_private=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_", "http:// or https://"),
        ("http:///nohost", "no host"),
        ("http://exa mple.com/", "white space"),
        ("http://example.com:99999/", "does not parse"),
        ("http://example.com/#frag", "fragment"),
        ("http://example.com/" + "a" * 3000, "longer than"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(TargetRefused, match=why):
        parse_url(url)


@pytest.mark.parametrize(
    "url", ["https://user:hunter2@example.com/hook", "https://user@example.com/", "http://:hunter2@8.8.8.8/"]
)
def test_urls_with_credentials_are_refused_without_quoting_them(url: str) -> None:
    """The connection goes to the address checked, so credentials in the URL would be dropped."""
    with pytest.raises(TargetRefused, match=r"carries credentials \(user:password@\)") as refused:
        resolve(url, allow_private=True)
    assert "hunter2" not in str(refused.value) and "user@" not in str(refused.value)
    assert "signature" in str(refused.value)


def test_name_resolution_has_a_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = threading.Event()

    def slow(*args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        resolved.wait(10)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443))]

    monkeypatch.setattr(targets, "socket", SimpleNamespace(getaddrinfo=slow, SOCK_STREAM=socket.SOCK_STREAM))
    started = time.monotonic()
    try:
        with pytest.raises(Unresolved, match=r"'slow.example' did not resolve within 0.2 s"):
            resolve("https://slow.example/hook", allow_private=False, timeout_s=0.2)
        assert time.monotonic() - started < 2
        assert issubclass(Unresolved, TargetRefused)  # caught as either; check() lets it pass
    finally:
        resolved.set()


def test_a_name_is_checked_on_every_address_it_resolves_to() -> None:
    with pytest.raises(TargetRefused, match="private, loopback or link-local"):
        resolve("http://localhost:8000/hook", allow_private=False)
    assert str(resolve("http://localhost:8000/hook", allow_private=True).address) in ("127.0.0.1", "::1")


def test_the_retry_schedule_starts_within_its_first_pause_and_grows_with_jitter() -> None:
    policy = RetryPolicy(first_s=5, retry_for_s=86_400)
    firsts = [policy.after(503, 1, 0, None) for _ in range(200)]
    assert {o for o, _ in firsts} == {Outcome.RETRYING}
    assert all(4 <= p <= 6 for _, p in firsts) and len({p for _, p in firsts}) > 100  # jittered
    assert policy.after(None, 3, 60, None)[1] > 60  # timeouts retried, growing
    assert policy.after(429, 1, 0, 120.0)[1] >= 120  # Retry-After honoured
    assert policy.after(503, 9, 86_000, None)[0] is Outcome.FAILED  # the window ran out
    assert policy.after(204, 1, 0, None)[0] is Outcome.DELIVERED
    assert policy.after(410, 1, 0, None)[0] is Outcome.DISABLED
    assert [policy.after(s, 1, 0, None)[0] for s in (301, 400, 401, 404, 422)] == [Outcome.FAILED] * 5
    assert retry_after_seconds("7") == 7 and retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_signatures_verify_with_the_reference_library() -> None:
    old, new = new_secret(), new_secret()
    body = '{"type":"run.completed","timestamp":"2026-12-02T10:00:00Z","data":{}}'
    now = datetime.now(UTC)
    header = signature_header([new, old], "msg_1", now, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }
    assert Webhook(new).verify(body, headers) == Webhook(old).verify(body, headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_secret()).verify(body, headers)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_server_refuses_private_targets_by_default(server: WrmServer, receiver: Receiver) -> None:
    with httpx.Client(base_url=f"http://{server.http_address}", timeout=30) as api:
        for url in (receiver.url("/x"), f"http://localhost:{receiver.port}/x", "http://[::1]/x",
                    "http://169.254.169.254/latest/meta-data"):  # fmt: skip
            resp = api.post("/v1/webhooks", json={"url": url})
            assert resp.status_code == 422, resp.text
            assert "webhooks_allow_private" in resp.text and resp.json()["errors"][0]["where"] == "body.url"
        assert api.get("/v1/webhooks").json()["webhooks"] == []
        # a name that resolved to a public address when the subscription was made and to a
        # private one now (DNS rebinding) is refused at delivery: the address is checked each time
        assert server.notifications is not None
        store = server.notifications.store
        store._allow_private = True  # the check at creation passes, as it would have
        hook = store.create("default", WebhookCreate(url=f"http://localhost:{receiver.port}/x"), "test")
        store._allow_private = False
        server.notifications.dispatcher.reload()
        assert api.post(f"/v1/webhooks/{hook.webhook_id}/test").status_code == 202
        deadline = time.time() + 20
        while not (log := api.get(f"/v1/webhooks/{hook.webhook_id}/deliveries").json()["deliveries"]):
            assert time.time() < deadline
            time.sleep(0.05)
    assert [(d["outcome"], d["http_status"]) for d in log] == [("refused", None)]
    assert "private, loopback or link-local" in log[0]["error"]
    assert receiver.received == []
