"""Which URLs a webhook may call: http(s) only, and, unless `webhooks_allow_private` is set, no
private, loopback, link-local, multicast or otherwise non-global address. A name is resolved and
every address it resolves to is checked at each delivery, and the connection goes to the address
checked (sender.py), so a name that later resolves somewhere private (DNS rebinding) is refused
rather than followed."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookError(Exception):
    """Base of the webhook errors."""


class TargetRefused(WebhookError):
    """The URL may not be called; the message says why and never quotes credentials in it."""


class UnknownWebhook(WebhookError):
    """No such subscription in the caller's tenant."""


@dataclass(frozen=True)
class Target:
    """Where one delivery connects: the URL's parts and the address checked."""

    url: SplitResult
    host: str  # the name, for the Host header and TLS
    port: int
    address: IpAddress


def parse_url(url: str) -> SplitResult:
    """The URL's parts, or TargetRefused saying what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetRefused("the url contains white space or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise TargetRefused(f"the url does not parse: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the url must be http:// or https://")
    if not parts.hostname:
        raise TargetRefused("the url has no host")
    if parts.fragment:
        raise TargetRefused("the url has a #fragment, which is never sent")
    return parts


def is_allowed(address: IpAddress, allow_private: bool) -> bool:
    """Whether an address may be called: a global unicast one, or any with allow_private."""
    if allow_private:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check(url: str, allow_private: bool) -> None:
    """What a subscription's URL must pass when it is set: a well-formed http(s) URL whose host,
    if it resolves now, resolves to allowed addresses only. A name that does not resolve yet (a
    receiver not deployed, no DNS here) is accepted: each delivery checks again."""
    with contextlib.suppress(Unresolved):
        resolve(url, allow_private)


class Unresolved(TargetRefused):
    """The host name does not resolve (now)."""


def resolve(url: str, allow_private: bool) -> Target:
    """Check the URL and resolve its host; TargetRefused when it may not be called. Every address
    the name resolves to must be allowed, not just the first."""
    parts = parse_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise Unresolved(f"the host {host[:100]!r} does not resolve ({exc})") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Unresolved(f"the host {host[:100]!r} does not resolve")
    for address in addresses:
        if not is_allowed(address, allow_private):
            raise TargetRefused(
                f"the host {host[:100]!r} resolves to {address}, a private, loopback or link-local address; "
                "set webhooks_allow_private = true (WRM_WEBHOOKS_ALLOW_PRIVATE) to allow it"
            )
    return Target(parts, host, port, addresses[0])
