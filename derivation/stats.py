"""The derivation jobs' own counters and health: how far run assembly is behind ingest, how
often it ran and failed, so an operator sees a stalled assembler in /metrics and /healthz
instead of runs that silently stop appearing."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Assembler states, as /healthz shows them.
OK = "ok"  # caught up, or catching up without errors
RETRYING = "retrying"  # the last cycle failed with a transient error; it is retried with back-off
FAILED = "failed"  # a permanent error stopped assembly until an operator fixes it and restarts


@dataclass(frozen=True)
class AssemblyHealth:
    """What /healthz reports for run assembly."""

    state: str
    behind_s: float  # seconds the oldest acknowledged, not yet assembled flush has waited
    watermark_ms: int  # every flush stamped at or below this is assembled
    consecutive_failures: int
    last_error: str

    @property
    def degraded(self) -> bool:
        return self.state != OK


class AssemblyStats:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycles = Counter(
            "wrm_assembly_cycles", "Assembly windows derived into runs and steps", registry=r
        )
        self.failures = Counter(
            "wrm_assembly_failures",
            "Assembly cycles that failed, by error class (transient: retried; permanent: stopped)",
            ["error_class"],
            registry=r,
        )
        self.lag = Histogram(
            "wrm_assembly_lag_seconds",
            "Seconds from a flush being acknowledged to its runs being assembled",
            buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
            registry=r,
        )
        self.behind = Gauge(
            "wrm_assembly_behind_seconds",
            "Seconds the oldest acknowledged flush not yet assembled has waited (0 when caught up)",
            registry=r,
        )
        self.summary_refreshes = Counter(
            "wrm_summary_refreshes", "Refreshes of the daily summary tier", registry=r
        )
        for cls in ("transient", "permanent"):
            self.failures.labels(cls)
