"""What the events schema refuses since review, and the two run fields events gained: each a
field a no-code caller would otherwise see dropped, or a value no span can keep."""

from __future__ import annotations

from typing import Any

import pytest

from events.schema import EventInvalid, parse_event
from events.spans import timed, to_request

STEP = {"type": "step.completed", "run_id": "r-1", "step_id": "s"}


@pytest.mark.parametrize(
    ("raw", "where", "words"),
    [
        ({**STEP, "attributes": {"ids": list(range(1001))}}, "attributes", "at most 1000"),
        ({**STEP, "attributes": {"big": 2**70}}, "attributes", "'big'"),
        ({"type": "run.started", "run_id": "r", "time": "1970-01-01T00:00:00Z"}, "time", "outside"),
        ({"type": "step.started", "run_id": "r", "step_id": "s", "step_type": "llm"}, "step_type", "take"),
        ({"type": "step.started", "run_id": "r", "step_id": "s", "parent_step_id": "p"}, "parent_step", ""),
        (
            {"type": "human.decided", "run_id": "r", "step_id": "s", "step_type": "tool",
             "decision": {"outcome": "approved"}},
            "step_type", "human step",
        ),
        ({"type": "run.waiting_human", "run_id": "r", "rerun_of": "r-0"}, "rerun_of", "does not take"),
    ],
)  # fmt: skip
def test_refused_naming_the_field(raw: dict[str, Any], where: str, words: str) -> None:
    with pytest.raises(EventInvalid) as caught:
        parse_event(raw)
    assert any(p.where.startswith(where) and words in p.problem for p in caught.value.problems), caught.value


def test_a_rerun_and_a_cx_score_reach_the_span_as_wrm_attributes() -> None:
    ends = parse_event({"type": "run.completed", "run_id": "r-2", "rerun_of": "r-1", "cx_score": 4.5})
    request, _ = to_request(timed([ends], now_ns=1_800_000_000_000_000_000), {})
    span = request.resource_spans[0].scope_spans[0].spans[0]
    attributes = {kv.key: kv.value for kv in span.attributes}
    assert attributes["wrm.rerun.of"].string_value == "r-1"
    assert attributes["wrm.cx.score"].double_value == 4.5
    assert attributes["wrm.run"].bool_value
