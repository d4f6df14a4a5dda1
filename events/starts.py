"""When the runs and steps that events end started, as their stored `*.started` markers say.

A run.completed posted an hour after its run.started finds the start here: the marker span was
stored when run.started was acknowledged. One indexed read per post (span_facts is sorted by
tenant, trace, span).
"""

from __future__ import annotations

from collections.abc import Iterable

from warehouse import Warehouse

_STARTS = """
SELECT span_id, toUnixTimestamp64Nano(start_time)
FROM span_facts FINAL
WHERE tenant_id = {tenant:String} AND trace_id IN {traces:Array(String)} AND span_id IN {spans:Array(String)}
"""


def stored_starts(reader: Warehouse, tenant: str, markers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, int]:
    """Start (ns) of each stored marker among `markers` (trace id, marker span id), by span id."""
    wanted = sorted(set(markers))
    if not wanted:
        return {}
    rows = reader.rows(
        _STARTS,
        {
            "tenant": tenant,
            "traces": sorted({t.hex() for t, _ in wanted}),
            "spans": sorted({s.hex() for _, s in wanted}),
        },
    )
    return {bytes.fromhex(span_id): int(start) for span_id, start in rows}
