"""Runs exported as CSV, JSON lines or Parquet, produced as a stream of byte chunks.

Memory stays flat whatever the number of runs: runs are read one batch at a time by keyset
cursor (listing.iter_runs), each batch is encoded and handed on, and nothing is kept. Parquet
gets one row group per batch. With steps, each run carries its steps: nested objects in JSON
lines, a list of structs in Parquet, and a JSON text column in CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from clickhouse_connect.driver.client import Client

from analytics.runs.detail import steps_by_trace
from analytics.runs.listing import RunFilter, iter_runs
from analytics.runs.schemas import RunSummary, Step

Format = Literal["csv", "jsonl", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
FIELDS = list(RunSummary.model_fields)

_RUN_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()), ("trace_id", pa.string()), ("workflow", pa.string()),
        ("version", pa.string()), ("environment", pa.string()), ("status", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")), ("duration_ms", pa.float64()), ("step_count", pa.int64()),
        ("retries", pa.int64()), ("input_tokens", pa.int64()), ("output_tokens", pa.int64()),
        ("cost_usd", pa.float64()), ("first_pass", pa.bool_()), ("tags", pa.list_(pa.string())),
    ]
)  # fmt: skip
_STEP_TYPE = pa.struct(
    [
        ("step_id", pa.string()), ("trace_id", pa.string()), ("parent_step_id", pa.string()),
        ("name", pa.string()),
        ("type", pa.string()), ("attempt", pa.int64()), ("status", pa.string()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")), ("duration_ms", pa.float64()), ("model", pa.string()),
        ("input_tokens", pa.int64()), ("output_tokens", pa.int64()), ("cost_usd", pa.float64()),
        ("validation_name", pa.string()), ("validation_passed", pa.bool_()), ("quality_score", pa.float64()),
        ("human_decision", pa.string()), ("human_actor", pa.string()), ("human_wait_ms", pa.int64()),
        ("last_error", pa.string()),
    ]
)  # fmt: skip
_STEP_FIELDS = [f.name for f in _STEP_TYPE]


def export_runs(
    client: Client,
    tenant: str,
    flt: RunFilter,
    fmt: Format,
    *,
    with_steps: bool = False,
    batch: int = 5_000,
    progress: Callable[[int], None] = lambda n: None,
) -> Iterator[bytes]:
    """Chunks of the export; `progress` is told how many runs each chunk held. Validate the
    filter before streaming (`flt.where`), since an error cannot change a started response."""
    encode = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}[fmt]
    return encode(_batches(client, tenant, flt, with_steps, batch, progress), with_steps)


Batch = list[tuple[RunSummary, list[Step] | None]]


def _run_steps(by_trace: dict[str, list[Step]], trace_ids: list[str]) -> list[Step]:
    """The steps of every part of a run, in start order."""
    return sorted(
        (s for t in trace_ids for s in by_trace.get(t, [])), key=lambda s: (s.start_time, s.step_id)
    )


def _batches(
    client: Client, tenant: str, flt: RunFilter, with_steps: bool, batch: int, progress: Callable[[int], None]
) -> Iterator[Batch]:
    for page in iter_runs(client, tenant, flt, batch=batch):
        if with_steps:
            by_trace = steps_by_trace(client, tenant, [t for parts in page.trace_ids.values() for t in parts])
            yield [(r, _run_steps(by_trace, page.trace_ids.get(r.run_id, []))) for r in page.runs]
        else:
            yield [(r, None) for r in page.runs]
        progress(len(page.runs))


def _csv(batches: Iterator[Batch], with_steps: bool) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*FIELDS, "steps"] if with_steps else FIELDS)
    for rows in batches:
        for run, steps in rows:
            record = run.model_dump(mode="json")
            cells = [";".join(record["tags"]) if f == "tags" else record[f] for f in FIELDS]
            if with_steps:
                cells.append(
                    json.dumps([s.model_dump(mode="json", exclude={"children"}) for s in steps or []])
                )
            writer.writerow(cells)
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    if buf.tell():  # no runs: the header alone
        yield buf.getvalue().encode()


def _jsonl(batches: Iterator[Batch], with_steps: bool) -> Iterator[bytes]:
    for rows in batches:
        lines = []
        for run, steps in rows:
            record = run.model_dump(mode="json")
            if with_steps:
                record["steps"] = [s.model_dump(mode="json", exclude={"children"}) for s in steps or []]
            lines.append(json.dumps(record, separators=(",", ":")))
        yield ("\n".join(lines) + "\n").encode()


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken away after each row group."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def _parquet(batches: Iterator[Batch], with_steps: bool) -> Iterator[bytes]:
    schema = _RUN_SCHEMA.append(pa.field("steps", pa.list_(_STEP_TYPE))) if with_steps else _RUN_SCHEMA
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    wrote = False
    for rows in batches:
        columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        for run, steps in rows:
            for f in FIELDS:
                columns[f].append(getattr(run, f))
            if with_steps:
                columns["steps"].append([{k: getattr(s, k) for k in _STEP_FIELDS} for s in steps or []])
        writer.write_table(pa.table(columns, schema=schema))
        wrote = True
        yield sink.take()
    if not wrote:
        writer.write_table(schema.empty_table())
    writer.close()
    yield sink.take()
