"""Who a presented key makes the caller, answered from memory on every port.

Keys are read from the warehouse into a cache, refreshed every `refresh_s` and on a miss (at
most once a second, so random ids cannot turn into a query each). A revocation in this process
takes effect at once; one made by another process sharing a ClickHouse server within `refresh_s`.
Last use is noted in memory and written by a background thread, at most once a minute per key,
so no request waits for that write.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import UTC, datetime

from access.errors import Forbidden, Unauthenticated
from access.keys import PLATFORM, Principal, digest, key_id_of, same_digest
from access.roles import Role
from access.store import KeyRecord, KeyStore

log = logging.getLogger(__name__)

USE_NOTE_S = 60.0
MISS_RELOAD_S = 1.0
NO_KEY = "an API key is required: send `Authorization: Bearer <key>`"
BAD_KEY = "the API key is not valid (unknown, malformed or revoked)"


def permit(principal: Principal | None, needed: Role) -> Principal | None:
    """`principal`, unless its role does not allow a call that needs `needed` (Forbidden). None
    (no key, auth off) is allowed everything."""
    if principal is not None and not principal.role.allows(needed):
        raise Forbidden(
            f"a key with role {principal.role.value!r} may not do this; it needs {needed.value!r}"
        )
    return principal


class Authenticator:
    """`required`: whether a call without a key is refused (setting `auth`); `admin_key`: the
    platform admin's key (setting `admin_key`), or None."""

    def __init__(
        self, store: KeyStore | None, *, required: bool, admin_key: str | None = None, refresh_s: float = 5.0
    ) -> None:
        self.store = store
        self.required = required
        self._admin_digest = digest(admin_key) if admin_key else None
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._keys: dict[str, KeyRecord] = {}
        self._loaded_at = float("-inf")
        self._uses: dict[str, datetime] = {}
        self._noted: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- authentication -------------------------------------------------------------------------

    def authenticate(self, key: str | None) -> Principal | None:
        """The caller `key` names; None when no key was given and auth is off.
        Raises Unauthenticated for a missing key (auth required) or a bad one (always)."""
        if not key:
            if self.required:
                raise Unauthenticated(NO_KEY)
            return None
        if self._admin_digest is not None and hmac.compare_digest(digest(key), self._admin_digest):
            return Principal(key_id=PLATFORM, name="admin_key", role=Role.ADMIN, tenant=None)
        key_id = key_id_of(key)
        record = self._lookup(key_id) if key_id else None
        if record is None or not record.active or not same_digest(key, record.key_digest):
            raise Unauthenticated(BAD_KEY)
        self._note_use(record.key_id)
        return Principal(key_id=record.key_id, name=record.name, role=record.role, tenant=record.tenant)

    def authorize(self, key: str | None, needed: Role) -> Principal | None:
        """authenticate, then refuse a role that does not allow `needed` (Forbidden)."""
        return permit(self.authenticate(key), needed)

    # --- the cache --------------------------------------------------------------------------------

    def remember(self, record: KeyRecord) -> None:
        """A key created or revoked in this process: in force at once."""
        with self._lock:
            self._keys[record.key_id] = record

    def _lookup(self, key_id: str) -> KeyRecord | None:
        loaded_at = self._loaded_at
        age = time.monotonic() - loaded_at
        record = self._keys.get(key_id)
        if age > self.refresh_s or (record is None and age > MISS_RELOAD_S):
            self._reload(loaded_at)
            record = self._keys.get(key_id)
        return record

    def _reload(self, seen_loaded_at: float) -> None:
        if self.store is None:
            return
        with self._lock:
            if self._loaded_at != seen_loaded_at:
                return  # another thread reloaded while this one waited for the lock
            try:
                self._keys = {r.key_id: r for r in self.store.all()}
            except Exception:  # keep answering from the last good cache; the next call retries
                log.warning("reading API keys failed; using the keys read before", exc_info=True)
            self._loaded_at = time.monotonic()

    # --- last use ---------------------------------------------------------------------------------

    def _note_use(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._noted.get(key_id, float("-inf")) >= USE_NOTE_S:
            with self._lock:
                self._noted[key_id] = now
                self._uses[key_id] = datetime.now(UTC)

    def flush_uses(self) -> None:
        """Write the uses noted since the last flush (the background thread does this)."""
        if self.store is None or not self._uses:
            return
        with self._lock:
            uses, self._uses = self._uses, {}
        try:
            self.store.note_uses(uses)
        except Exception:  # a last-use time is worth a log line, not a failed request
            log.warning("recording when %d API keys were last used failed", len(uses), exc_info=True)
            with self._lock:  # noted again at the next use, not a minute later
                for key_id in uses:
                    self._noted.pop(key_id, None)

    def start(self, interval_s: float = 10.0) -> None:
        def run() -> None:
            while not self._stop.wait(interval_s):
                self.flush_uses()

        self._thread = threading.Thread(target=run, name="wrm-key-uses", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush_uses()
