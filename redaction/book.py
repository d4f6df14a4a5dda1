"""Every tenant's effective policy and its compiled Redactor, kept current.

Sources, lowest first: the built-in defaults, the global policy (setting `redaction`), the
tenant's settings policy (`tenant_redaction`), or instead of that one the tenant's policy set
through the API (stored in the warehouse; removing it brings the settings policy back). API-set
policies are re-read every `refresh_s`, so a change made through another process applies to
spans received after it; one made through this process applies at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from redaction.policy import Effective, Policy, PolicyError, effective
from redaction.redactor import Redactor, Rules
from redaction.store import StoredPolicy, load_policies, save_policy
from warehouse import Warehouse

log = logging.getLogger(__name__)

Source = Literal["api", "settings", "global"]
_MAX_CACHED = 10_000  # tenants whose Redactor is kept; senders may name many


def tenant_hash_key(secret: bytes, tenant: str) -> bytes:
    """The HMAC key of one tenant's `hash` actions: equal values hash alike within a tenant only."""
    return hmac.new(secret, b"wrm.redaction.tenant\x00" + tenant.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class TenantPolicy:
    """What applies to a tenant and where its own part comes from."""

    tenant: str
    effective: Effective
    own: Policy | None  # the tenant's policy (API-set, else from settings), None: the global one only
    source: Source
    stored: StoredPolicy | None  # the last API change, if any
    unusable: str = ""  # why the tenant's stored policy cannot be applied (its spans are refused)


class PolicyBook:
    def __init__(
        self,
        global_policy: Policy,
        tenant_policies: Mapping[str, Policy],
        secret: bytes,
        wh: Warehouse | None = None,
        refresh_s: float = 5.0,
    ) -> None:
        """`wh` None: settings only (a workflow process using the library)."""
        self.global_policy = global_policy
        self._settings = dict(tenant_policies)
        self._secret = secret
        self._wh = wh
        self._refresh_s = refresh_s
        self._stored: dict[str, StoredPolicy] = {}
        self._loaded_at = float("-inf")
        self._redactors: dict[str, Redactor] = {}
        self._compiled: dict[str, Rules] = {}  # by effective policy: tenants without their own share one
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._generation = 0  # bumped by every change, so no Redactor of an older policy is cached
        self._broken: dict[str, str] = {}  # tenant → why its stored policy cannot be applied
        for own in [None, *self._settings.values()]:
            Rules(effective(global_policy, own))  # a policy that cannot compile stops start-up
        if wh is not None:
            self._load()  # at start a failure stops start-up: never run on fewer policies than set

    def redactor(self, tenant: str) -> Redactor:
        """The tenant's Redactor (built once per policy change). PolicyError when the tenant's
        stored policy cannot be applied: its spans are refused rather than stored under a weaker
        policy, until an admin sets a policy that can."""
        if self._wh is not None and time.monotonic() - self._loaded_at > self._refresh_s:
            self._reload()
        found = self._redactors.get(tenant)
        if found is not None:
            return found
        broken = self._broken.get(tenant)
        if broken is not None:
            raise PolicyError(f"tenant {tenant!r}'s redaction policy cannot be applied: {broken}")
        generation = self._generation
        policy = self.policy(tenant).effective
        text = policy.model_dump_json()
        rules = self._compiled.get(text)
        if rules is None:
            rules = self._compiled[text] = Rules(policy)
        found = Redactor(rules, tenant_hash_key(self._secret, tenant), tenant)
        with self._lock:
            if generation == self._generation:  # else a change came in meanwhile: build again next time
                if len(self._redactors) >= _MAX_CACHED:
                    self._redactors = {}
                self._redactors[tenant] = found
        return found

    def policy(self, tenant: str) -> TenantPolicy:
        stored = self._stored.get(tenant)
        own: Policy | None = None
        source: Source = "global"
        if stored is not None and stored.policy is not None:
            own, source = stored.policy, "api"
        elif tenant in self._settings:
            own, source = self._settings[tenant], "settings"
        unusable = self._broken.get(tenant, "")
        return TenantPolicy(tenant, effective(self.global_policy, own), own, source, stored, unusable)

    def set(self, tenant: str, policy: Policy | None, changed_by: str) -> tuple[TenantPolicy, TenantPolicy]:
        """Set or (None) remove a tenant's API policy; (before, after)."""
        if self._wh is None:
            raise RuntimeError("policies are set through the server that owns the warehouse")
        before = self.policy(tenant)
        if policy is not None:
            Rules(effective(self.global_policy, policy))  # refuse here what could not compile at ingest
        saved = save_policy(self._wh, tenant, policy, changed_by)
        with self._lock:
            self._stored = {**self._stored, tenant: saved}
            self._broken = {t: why for t, why in self._broken.items() if t != tenant}
            self._forget()
        return before, self.policy(tenant)

    def _forget(self) -> None:
        """Drop every Redactor built (under the lock): the next call builds from the new policies."""
        self._generation += 1
        self._redactors = {}
        self._compiled = {}

    def _load(self) -> None:
        assert self._wh is not None
        self._loaded_at = time.monotonic()
        stored, broken = load_policies(self._wh)
        for tenant, found in stored.items():
            if found.policy is not None:
                try:
                    Rules(effective(self.global_policy, found.policy))
                except PolicyError as exc:
                    broken[tenant] = str(exc)
        with self._lock:
            if stored != self._stored or broken != self._broken:
                for tenant in broken.keys() - self._broken.keys():
                    log.error(
                        "tenant %r's redaction policy cannot be applied, its spans are refused: %s",
                        tenant,
                        broken[tenant],
                    )
                self._stored, self._broken = stored, broken
                self._forget()

    def _reload(self) -> None:
        if not self._loading.acquire(blocking=False):
            return  # another thread is reloading; this one goes on with what is loaded
        try:
            self._load()
        except Exception:  # keep redacting with what is loaded; the next call tries again
            self._loaded_at = time.monotonic()
            log.exception("could not read the redaction policies; keeping the ones loaded")
        finally:
            self._loading.release()
