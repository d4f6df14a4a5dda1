"""The notification side of `wrm serve`: the lifecycle-event outbox, the webhook dispatcher, the
delivery log, the alert evaluator and the report scheduler, each on a warehouse handle of its own,
so delivery never queues behind ingest or the API (and a slow endpoint behind nothing but itself),
and a report being gathered never holds up an alert."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from prometheus_client import CollectorRegistry

from analytics.alerts import AlertEvaluator
from analytics.api import alerts_api, reports_api, webhooks_api
from analytics.reports.scheduler import ReportScheduler
from analytics.webhooks.app_events import announce_missing_actions
from analytics.webhooks.attempts import Recorder
from analytics.webhooks.dispatcher import Dispatcher
from analytics.webhooks.policy import RetryPolicy
from analytics.webhooks.store import SubscriptionStore
from redaction.book import PolicyBook
from warehouse import Warehouse
from warehouse.outbox import Outbox
from wrm.settings import Settings

log = logging.getLogger("wrm")


class Notifications:
    def __init__(self, warehouse: Warehouse, settings: Settings) -> None:
        s = settings
        self._settings = settings
        self._sessions = [warehouse.session(own_reader=True) for _ in range(6 if s.reports else 5)]
        outbox_wh, store_wh, dispatch_wh, log_wh, alerts_wh = self._sessions[:5]
        # without schedules the scheduler never reads: no handle of its own
        reports_wh = self._sessions[5] if s.reports else warehouse
        self.outbox = Outbox(outbox_wh)
        self.recorder = Recorder(log_wh)
        self.store = SubscriptionStore(store_wh, s.webhooks_allow_private)
        self.dispatcher = Dispatcher(
            self.store,
            dispatch_wh,
            self.outbox,
            self.recorder,
            RetryPolicy(first_s=s.webhooks_first_retry_s, retry_for_s=s.webhooks_retry_for_s),
            timeout_s=s.webhooks_timeout_s,
            allow_private=s.webhooks_allow_private,
            poll_s=s.webhooks_poll_ms / 1000,
            concurrency=s.webhooks_concurrency,
            open_session=lambda: warehouse.session(own_reader=True),
        )
        self.store.on_change = self.dispatcher.reload
        self.alerts = AlertEvaluator(alerts_wh, self.outbox, tick_s=s.alerts_tick_s)
        self.reports = ReportScheduler(reports_wh, self.outbox, s.reports, s.reports_dir)

    def start(self) -> None:
        missing = announce_missing_actions(self._sessions[1], self.outbox)
        if missing:
            log.info("announced %d re-run or cancel requests stored without their event", missing)
        self.dispatcher.start()
        self.alerts.start()
        self.reports.start()

    def routers(self, api: Warehouse, policies: PolicyBook | None) -> list[APIRouter]:
        return [
            webhooks_api.build_router(api, self.store, self.outbox, self.dispatcher),
            alerts_api.build_router(api, self.alerts, policies),
            reports_api.build_router(api, self._settings.reports_dir),
        ]

    def registries(self) -> list[CollectorRegistry]:
        return [self.dispatcher.stats.registry]

    def stop(self) -> None:
        """Stop the report scheduler (a report being made is finished), the alert evaluator and the
        queues (an attempt in flight finishes), store the log, close the handles."""
        self.reports.stop()
        self.alerts.stop()
        self.dispatcher.stop()
        self.recorder.close()
        for session in self._sessions:
            session.close()
