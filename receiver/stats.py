"""The receiver's own counters, in a registry per receiver so tests and servers don't share them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ReceiverStats:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "wrm_otlp_requests", "OTLP export requests by outcome", ["outcome"], registry=r
        )
        self.spans_accepted = Counter("wrm_spans_accepted", "Spans stored and acknowledged", registry=r)
        self.spans_rejected = Counter("wrm_spans_rejected", "Spans refused by validation", registry=r)
        self.flushes = Counter("wrm_flushes", "Inserts into the spans table", registry=r)
        self.flush_failures = Counter("wrm_flush_failures", "Inserts that failed", registry=r)
        self.insert_failures = Counter(
            "wrm_insert_failures",
            "Failed inserts by class: transient (retried by exporters) or permanent (never retried)",
            ["class"],
            registry=r,
        )
        self.recoveries = Counter(
            "wrm_otlp_recoveries",
            "Requests whose data the engine refused in part, stored span by span (how=isolated)",
            ["how"],
            registry=r,
        )
        self.flush_seconds = Histogram(
            "wrm_flush_seconds",
            "Time to insert one flush",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.flush_spans = Histogram(
            "wrm_flush_spans", "Spans per flush", buckets=(1, 10, 100, 1000, 5000, 20000, 50000), registry=r
        )
        self.spans_refused_after_ack = Counter(
            "wrm_spans_refused_after_ack",
            "Spooled spans the warehouse refused for good after they were acknowledged (kept in rejected/)",
            registry=r,
        )
        self.queue_spans = Gauge("wrm_queue_spans", "Spans accepted but not yet stored", registry=r)
        for error_class in ("transient", "permanent"):  # shown at 0 from the start
            self.insert_failures.labels(error_class)
        self.recoveries.labels("isolated")

    def snapshot(self) -> dict[str, float]:
        """Current totals, for the periodic log line."""
        names = {
            "accepted": "wrm_spans_accepted_total",
            "rejected": "wrm_spans_rejected_total",
            "flushes": "wrm_flushes_total",
            "flush_failures": "wrm_flush_failures_total",
            "queue": "wrm_queue_spans",
        }
        return {label: self.registry.get_sample_value(name) or 0.0 for label, name in names.items()}
