"""Which URLs a webhook may call: http(s) only, and, unless `webhooks_allow_private` is set, no
private, loopback, link-local, multicast or otherwise non-global address. A name is resolved and
every address it resolves to is checked at each delivery, and the connection goes to the address
checked (sender.py), so a name that later resolves somewhere private (DNS rebinding) is refused
rather than followed. Name resolution has a time limit (`resolve(timeout_s=)`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_S = 5.0

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose low 32 bits are an IPv4 address: IPv4-compatible (deprecated; also holds ::
# and ::1), IPv4-translated (SIIT), NAT64's well-known prefix and its local-use /48 (RFC 8215,
# read as a /96 within it).
_LOW_32_BITS_IPV4 = tuple(
    ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)
# The IPv6 spelling of a public IPv4 host: IPv4-mapped and NAT64's well-known prefix. Python calls
# both reserved or private, yet the IPv4 address embedded is the host reached; it alone decides.
_IPV4_SPELLINGS = tuple(ipaddress.IPv6Network(n) for n in ("::ffff:0:0/96", "64:ff9b::/96"))

# getaddrinfo has no time limit of its own: it runs here, and resolve() waits at most timeout_s.
# Its threads start on first use; one stuck in the system resolver holds only a worker.
_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="wrm-webhook-dns")


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
    if "@" in parts.netloc:  # the connection is pinned to the address checked: they would be dropped
        raise TargetRefused(
            "the url carries credentials (user:password@); "
            "put a secret in the path or use the signature instead"
        )
    return parts


def _refused(ip: IpAddress) -> bool:
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())) if v4 is not None]
    if any(ip in net for net in _LOW_32_BITS_IPV4):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return found


def is_allowed(address: IpAddress, allow_private: bool) -> bool:
    """Whether an address may be called: a global unicast one, or any with allow_private.

    `is_global` alone is not enough (Python 3.11 passes IPv4-compatible, -translated and NAT64
    addresses around 127.0.0.1, 6to4 ones embedding private IPv4 and fec0::/10; some releases
    Teredo ones too), so every refusing property is checked, and an IPv6 address that embeds IPv4
    addresses (mapped, compatible, translated, NAT64, 6to4, Teredo server and client) is refused if
    any of them would be. An IPv4-mapped or well-known-prefix NAT64 address is the IPv4 address it
    embeds, allowed when that one is; any other embedding must pass as an IPv6 address too."""
    if allow_private:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if any(_refused(v4) for v4 in embedded):
            return False
        if embedded and any(address in net for net in _IPV4_SPELLINGS):
            return True
    return not _refused(address)


def check(url: str, allow_private: bool) -> None:
    """What a subscription's URL must pass when it is set: a well-formed http(s) URL whose host,
    if it resolves now, resolves to allowed addresses only. A name that does not resolve yet (a
    receiver not deployed, no DNS here) is accepted: each delivery checks again."""
    with contextlib.suppress(Unresolved):
        resolve(url, allow_private)


class Unresolved(TargetRefused):
    """The host name does not resolve (now), or not within the time limit."""


def resolve(url: str, allow_private: bool, *, timeout_s: float = RESOLVE_TIMEOUT_S) -> Target:
    """Check the URL and resolve its host, waiting at most `timeout_s` for DNS; TargetRefused when
    it may not be called. Every address the name resolves to must be allowed, not just the first."""
    parts = parse_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        lookup = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            infos = lookup.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            lookup.cancel()  # if still queued behind other lookups
            raise Unresolved(f"the host {host[:100]!r} did not resolve within {timeout_s:g} s") from None
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
