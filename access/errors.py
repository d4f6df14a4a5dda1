"""The two ways a call is refused for who is calling; each port maps them to its own codes."""

from __future__ import annotations


class AccessError(Exception):
    """The caller may not make this call; the message says why, never echoing a secret."""


class Unauthenticated(AccessError):
    """No key was presented, or the key is unknown, malformed or revoked."""


class Forbidden(AccessError):
    """The key is valid, but its role is too low or the target belongs to another tenant."""
