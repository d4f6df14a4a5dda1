"""Whether keys are required: setting `auth` (`required` or `off`), or, when it is not set,
`off` only while every listener is on a loopback address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class AuthMode:
    required: bool
    reason: str  # one line for the start-up log


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def resolve_auth(setting: str | None, hosts: Iterable[str]) -> AuthMode:
    """`setting`: "required", "off" or None (not set); `hosts`: every listener's address."""
    outside = sorted({h for h in hosts if not is_loopback(h)})
    if setting == "required":
        return AuthMode(True, "auth required (setting auth = required)")
    if setting == "off":
        where = f" on {', '.join(outside)}" if outside else ""
        return AuthMode(
            False,
            f"auth is OFF (setting auth = off): anyone who reaches the ports{where} "
            "reads and writes every tenant",
        )
    if outside:
        return AuthMode(True, f"auth required: listening on {', '.join(outside)}, not only loopback")
    return AuthMode(
        False,
        "auth is off: every listener is on loopback, so only this machine can call; "
        "set WRM_AUTH=required to require API keys",
    )
