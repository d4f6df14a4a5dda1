"""Webhook delivery's counters for /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from analytics.webhooks.policy import Outcome


class DispatchStats:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.attempts = Counter(
            "wrm_webhook_attempts",
            "Webhook delivery attempts, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wrm_webhook_attempt_seconds",
            "Duration of one webhook delivery attempt",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.lag = Histogram(
            "wrm_webhook_delivery_lag_seconds",
            "Seconds from an event's outbox stamp to its first delivery attempt",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        for outcome in Outcome:
            self.attempts.labels(outcome.value)
