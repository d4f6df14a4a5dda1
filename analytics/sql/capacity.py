"""The SQL port's own bounded capacity: a few engine handles, each with its own thread, so a heavy
user query never waits behind, or holds up, the API, /healthz, exports or ingest (a chdb handle
serializes its calls, and a streaming result holds its handle until it is read).

`max_concurrent` queries run at once; up to `max_queued` more wait, each at most
`queue_timeout_s`, for a slot; any other gets 429 with Retry-After (Code 202, as ClickHouse's
TOO_MANY_SIMULTANEOUS_QUERIES). A tenant's key gets a share: at most all slots but one running and
half the running-and-waiting places, so one tenant's slow statements never lock out the others or
the platform key; one more of its own gets 429. A query is cancelled with `KILL QUERY` on a
separate handle, found by a random tag at the start of its text: chdb 4.4 measured,
`StreamingResult.cancel()` from another thread while a fetch waits for the engine hangs, while
KILL ends the fetch with Code 394.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from analytics.sql.gate import Policy
from analytics.sql.tenant_space import TenantSpaces
from warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqlLimits:
    """Limits of the SQL port (settings `sql_*`); baked into its handles, never liftable by users."""

    max_execution_s: float = 30.0
    max_memory_bytes: int = 2 * 1024**3
    max_result_rows: int = 10_000_000
    max_result_bytes: int = 1024**3
    max_threads: int = 0  # 0: half the cores, at least 1, so the engine keeps a core for the rest
    max_concurrent: int = 2
    max_queued: int = 8
    queue_timeout_s: float = 10.0

    def engine_settings(self) -> dict[str, Any]:
        return {
            "max_execution_time": self.max_execution_s,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "max_threads": self.max_threads or max(1, (os.cpu_count() or 2) // 2),
            "allow_introspection_functions": 0,  # chdb turns them on: addressToSymbol, demangle, …
        }


class Slot:
    """One engine handle and the one thread that uses it: a query's calls run in order on it."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)


class SqlCapacity:
    """Slots for user queries, a wait queue in front of them, and the handle that cancels them."""

    def __init__(self, warehouse: Warehouse, limits: SqlLimits) -> None:
        self.limits = limits
        settings = limits.engine_settings()
        self.slots = [
            Slot(warehouse.sandboxed_reader(settings), f"wrm-sql-{i}") for i in range(limits.max_concurrent)
        ]
        self.policy = Policy.read(warehouse.reader, self.slots[0].client, [*settings, "readonly"])
        self.tenants = TenantSpaces(warehouse.client, warehouse.database)  # DDL: the writer handle
        self._control = warehouse.sandboxed_reader(settings)  # KILL QUERY is allowed in readonly=1
        self._control_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wrm-sql-kill")
        self._free: collections.deque[Slot] = collections.deque(self.slots)
        self._waiters: collections.deque[tuple[str, asyncio.Future[Slot]]] = collections.deque()
        self._owners: dict[int, str] = {}  # slot -> the tenant running on it ("" for the platform)
        self._running: collections.Counter[str] = collections.Counter()
        self._queued: collections.Counter[str] = collections.Counter()
        # a tenant's share: all slots but one running, half the places running or waiting
        self._tenant_running = max(1, limits.max_concurrent - 1)
        self._tenant_places = max(1, (limits.max_concurrent + limits.max_queued) // 2)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> int:
        return len(self.slots) - len(self._free)

    def _fits(self, owner: str) -> bool:
        """Whether `owner` may run one more statement now: a tenant (owner != "") holds at most
        all slots but one, so one tenant's slow statements never lock the others out."""
        return not owner or self._running[owner] < self._tenant_running

    async def acquire(self, owner: str = "") -> Slot | None:
        """A free slot, after waiting in the queue if need be; None when over capacity or, for a
        tenant (`owner`), over its share of the port (half its running and waiting places)."""
        self._loop = asyncio.get_running_loop()
        if owner and self._running[owner] + self._queued[owner] >= self._tenant_places:
            return None
        if self._free and self._fits(owner):
            return self._take(self._free.popleft(), owner)
        if len(self._waiters) >= self.limits.max_queued or self.limits.queue_timeout_s <= 0:
            return None
        waiter: asyncio.Future[Slot] = self._loop.create_future()
        self._waiters.append((owner, waiter))
        self._queued[owner] += 1
        try:
            return await asyncio.wait_for(waiter, self.limits.queue_timeout_s)
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot as the caller went away
                self._release(waiter.result())
            raise
        finally:
            self._queued[owner] -= 1
            if (owner, waiter) in self._waiters:
                self._waiters.remove((owner, waiter))

    def _take(self, slot: Slot, owner: str) -> Slot:
        self._owners[id(slot)] = owner
        self._running[owner] += 1
        return slot

    def release_soon(self, slot: Slot) -> None:
        """Give `slot` back from any thread (the slot's own thread, once its query is closed)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release, slot)

    def _release(self, slot: Slot) -> None:
        owner = self._owners.pop(id(slot), "")
        self._running[owner] -= 1
        self._free.append(slot)
        self._hand_over()

    def _hand_over(self) -> None:
        """Free slots go to the first waiters that may run now, in arrival order."""
        for owner, waiter in list(self._waiters):
            if not self._free:
                return
            if waiter.done() or not self._fits(owner):
                continue
            self._waiters.remove((owner, waiter))
            waiter.set_result(self._take(self._free.popleft(), owner))

    @staticmethod
    def new_tag() -> str:
        """A comment that starts a query's text and finds it in system.processes."""
        return f"/* wrm-sql {uuid.uuid4()} */ "

    def kill(self, tag: str) -> None:
        """Cancel the query whose text starts with `tag` (ASYNC: a paused stream cannot finish)."""

        def run() -> None:
            try:
                self._control.command(
                    "KILL QUERY WHERE startsWith(query, {tag:String}) ASYNC", parameters={"tag": tag}
                )
            except Exception:  # the query may have ended meanwhile; nothing else to do
                log.debug("KILL QUERY failed", exc_info=True)

        self._control_executor.submit(run)

    def close(self) -> None:
        for slot in self.slots:
            slot.executor.shutdown(wait=False, cancel_futures=True)
            slot.client.close()
        self._control_executor.shutdown(wait=False, cancel_futures=True)
        self._control.close()
