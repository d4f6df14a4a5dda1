"""Key material: how a key is made, how it is recognised, and who it makes the caller.

A key reads `wrm_<id>_<secret>`: the id (12 hex digits) finds the stored record without
scanning, the secret is 256 random bits. Only SHA-256 of the whole key is stored. A slow hash
(bcrypt, argon2) guards low-entropy passwords; a 256-bit random secret cannot be guessed from its
digest, and a fast digest keeps authentication off the ingest path's profile.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from access.roles import Role

PLATFORM = "platform"  # the key id of the `admin_key` setting
_KEY_RE = re.compile(r"^wrm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's id, name, tenant and role. The platform admin (`admin_key`) has no
    tenant of its own: it may act for any."""

    key_id: str
    name: str
    role: Role
    tenant: str | None  # None: the platform admin

    @property
    def platform(self) -> bool:
        return self.tenant is None

    @property
    def actor(self) -> str:
        """How actions, annotations and tags record this caller: name and key id."""
        return f"{self.name} ({self.key_id})"


def new_key() -> tuple[str, str]:
    """A fresh (key id, key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"wrm_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The id inside a well-formed key, else None."""
    m = _KEY_RE.match(key)
    return m.group(1) if m else None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_digest(key: str, stored: str) -> bool:
    """Compare in constant time, so timing reveals nothing about the stored digest."""
    return hmac.compare_digest(digest(key), stored)
