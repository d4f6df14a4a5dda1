"""The dispatcher: one queue (queue.py) per enabled subscription, started and stopped as
subscriptions change, and manual retries.

A slow or dead endpoint holds only its own queue: each queue has its own thread, HTTP client
and warehouse handle, and ingest never waits for any of it (the outbox is written by the
assembly, not by delivery).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from analytics.webhooks.attempts import Attempt, Recorder, standings
from analytics.webhooks.policy import Outcome, RetryPolicy
from analytics.webhooks.queue import QueueContext, SubscriptionQueue
from analytics.webhooks.stats import DispatchStats
from analytics.webhooks.store import SubscriptionStore
from analytics.webhooks.targets import UnknownWebhook, WebhookError
from warehouse import Warehouse
from warehouse.outbox import Outbox


class NotDeliverable(WebhookError):
    """A manual retry that cannot be honoured (a disabled subscription)."""


class Dispatcher:
    def __init__(
        self,
        store: SubscriptionStore,
        warehouse: Warehouse,
        outbox: Outbox,
        recorder: Recorder,
        policy: RetryPolicy,
        timeout_s: float,
        allow_private: bool,
        poll_s: float = 0.25,
        concurrency: int = 4,
        open_session: Callable[[], Warehouse] | None = None,
    ) -> None:
        """`warehouse`: the handle manual retries read on; `open_session`: a handle of its own for
        each queue (default: sessions of `warehouse`)."""
        self.store = store
        self.wh = warehouse
        self.recorder = recorder
        self.stats = DispatchStats()
        self._ctx = QueueContext(
            store=store,
            outbox=outbox,
            recorder=recorder,
            policy=policy,
            stats=self.stats,
            open_session=open_session or warehouse.session,
            timeout_s=timeout_s,
            allow_private=allow_private,
            poll_s=poll_s,
            concurrency=concurrency,
        )
        self._queues: dict[str, SubscriptionQueue] = {}
        self._retired: dict[str, SubscriptionQueue] = {}  # stopped, maybe still finishing an attempt
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Start a queue for each enabled subscription, stop those of the others."""
        subs = {s.webhook_id: s for s in self.store.all() if s.enabled}
        with self._lock:
            if self._stopping:
                return
            for webhook_id, queue in list(self._queues.items()):
                if webhook_id not in subs or not queue.alive:
                    queue.stop()
                    self._retired[webhook_id] = self._queues.pop(webhook_id)
            for webhook_id, sub in subs.items():
                if webhook_id in self._queues:
                    self._queues[webhook_id].sub = sub
                    continue
                # a queue of the same subscription (disabled, then enabled again) must be gone
                # first: a new one would resend the message the old one is still sending
                old = self._retired.pop(webhook_id, None)
                if old is not None and not old.is_current_thread():
                    old.join()
                self._queues[webhook_id] = SubscriptionQueue(sub, self._ctx)
            self._retired = {k: q for k, q in self._retired.items() if q.running}

    def retry_now(self, tenant: str, webhook_id: str, message_id: str) -> Attempt:
        """Send a message once more now (and on the usual schedule, counted from now, if that
        fails)."""
        sub = self.store.get(tenant, webhook_id)
        if not sub.enabled:
            raise NotDeliverable(f"webhook {webhook_id} is disabled; enable it (PATCH enabled=true) first")
        known = standings(self.wh, tenant, webhook_id, [message_id])
        if message_id not in known:
            raise UnknownWebhook(f"webhook {webhook_id} has no delivery of message {message_id[:80]!r}")
        s = known[message_id]
        now = datetime.now(UTC)
        asked = Outcome.REQUESTED
        request = Attempt(
            tenant, webhook_id, message_id, s.event_type, s.attempts, now, asked, 0, 0.0, "", "", now
        )
        self.recorder.record(request).wait(30)
        with self._lock:
            queue = self._queues.get(webhook_id)
        if queue is not None:
            queue.schedule(message_id, s.attempts, time.time(), time.time())
        return request

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            queues = [*self._queues.values(), *self._retired.values()]
            self._queues.clear()
            self._retired.clear()
        for q in queues:
            q.stop()
        for q in queues:
            q.join()
