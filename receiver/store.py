"""Where accepted requests go: one insert of framed envelopes into `otlp_landing`, whose
materialized view writes the span rows (sql/004_otlp_landing.sql)."""

from __future__ import annotations

from receiver.envelope import FORMAT_SCHEMA
from warehouse import Warehouse

# `spans` is partitioned by day. A request whose spans start on more than 100 days (a backfill,
# clocks far off) would otherwise fail with TOO_MANY_PARTS (252), a code that otherwise means
# "merges are behind, retry later": exporters would retry it forever. It is stored instead, with a
# warning in the engine's log; the request size bounds the parts one insert makes.
SETTINGS = {"format_schema": FORMAT_SCHEMA, "throw_on_max_partitions_per_insert_block": "0"}


class SpanStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self._wh = warehouse

    def insert(self, frames: bytes) -> None:
        if frames:
            self._wh.insert_file("otlp_landing", frames, "Protobuf", SETTINGS)
