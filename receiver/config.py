"""Receiver limits and queue sizes, filled in by the composition root from WRM settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReceiverConfig:
    host: str = "127.0.0.1"
    port: int = 4317
    max_attribute_bytes: int = 64 * 1024
    max_request_bytes: int = 16 * 1024 * 1024
    queue_max_spans: int = 16_000
    spool_max_spans: int = 64_000
    flush_max_spans: int = 16_000
    flush_interval_s: float = 0.005
    workers: int = 32
    retention_days: int = 30
    tenant_retention_days: Mapping[str, int] = field(default_factory=dict)
    default_tenant: str = "default"
