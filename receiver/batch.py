"""SpanBatch: decoded spans as columns, the shape the warehouse insert takes without copying."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Columns of the `spans` table written by the receiver, in insert order (sql/001_spans.sql).
SPAN_COLUMNS: tuple[str, ...] = (
    "tenant_id",
    "service_name",
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_state",
    "flags",
    "name",
    "kind",
    "start_time",
    "end_time",
    "duration_ns",
    "status_code",
    "status_message",
    "resource_attributes",
    "resource_schema_url",
    "resource_dropped_attributes_count",
    "scope_name",
    "scope_version",
    "scope_attributes",
    "scope_schema_url",
    "scope_dropped_attributes_count",
    "attributes",
    "dropped_attributes_count",
    "events.time",
    "events.name",
    "events.attributes",
    "events.dropped_attributes_count",
    "dropped_events_count",
    "links.trace_id",
    "links.span_id",
    "links.trace_state",
    "links.flags",
    "links.attributes",
    "links.dropped_attributes_count",
    "dropped_links_count",
    "truncated",
    "retention_days",
)


def _empty_columns() -> list[list[Any]]:
    return [[] for _ in SPAN_COLUMNS]


@dataclass
class SpanBatch:
    """Accepted spans of one or more requests, column by column (same length each)."""

    columns: list[list[Any]] = field(default_factory=_empty_columns)

    def __len__(self) -> int:
        return len(self.columns[0])

    def extend(self, other: SpanBatch) -> None:
        for mine, theirs in zip(self.columns, other.columns, strict=True):
            mine.extend(theirs)


@dataclass(frozen=True)
class Rejection:
    """Why spans of a request were refused: the first problem, how many spans had it, and the total."""

    count: int = 0
    first_problem: str = ""
    same_problem: int = 0

    def message(self) -> str:
        if self.count == 0:
            return ""
        plural = "s" if self.same_problem != 1 else ""
        text = f"{self.first_problem} ({self.same_problem} span{plural} had this problem"
        others = self.count - self.same_problem
        if others:
            text += f"; {others} more rejected for other reasons"
        return text + ")"


@dataclass(frozen=True)
class Decoded:
    """The outcome of decoding one request: what to store and what was refused."""

    batch: SpanBatch
    rejected: Rejection
    truncated_values: int = 0
    escaped_utf8: bool = False
