"""The state machine of an alert rule, pure: `ok → firing → resolved (= ok)`, with hysteresis
and a minimum sample size.

    ok      --value past the threshold-->          firing   (transition "firing")
    firing  --value back past recover_threshold--> ok       (transition "resolved")

`below` means the value is bad under the threshold, `above` over it. Between the threshold and
the recover threshold a firing rule stays firing, and an ok rule stays ok. With fewer samples
than the rule needs (rates, percentiles, means of finished runs), no verdict is reached: the
rule keeps whatever state it is in, and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analytics.alerts.rules import Comparison

State = Literal["ok", "firing"]
Transition = Literal["firing", "resolved"]


@dataclass(frozen=True)
class Verdict:
    state: State
    transition: Transition | None  # None: the state did not change
    note: str  # why the state is as it is, when that is not plain from the value ('' otherwise)


def breached(comparison: Comparison, value: float, threshold: float) -> bool:
    """Whether `value` is past the threshold, on the bad side."""
    return value < threshold if comparison == "below" else value > threshold


def recovered(comparison: Comparison, value: float, recover: float) -> bool:
    """Whether `value` is back past the recover threshold, on the good side (the threshold itself
    counts as good, so with recover = threshold every value is either breached or recovered)."""
    return value >= recover if comparison == "below" else value <= recover


def decide(
    current: State,
    comparison: Comparison,
    threshold: float,
    recover: float,
    value: float | None,
    samples: int,
    min_samples: int,
) -> Verdict:
    """The next state of a rule in `current` that measured `value` over `samples` runs.
    `min_samples` 0: the metric needs no samples (a count)."""
    if samples < min_samples:
        return Verdict(current, None, f"insufficient samples: {samples} of {min_samples} runs")
    if value is None:
        return Verdict(current, None, "no value: nothing to measure in the window")
    if current == "ok":
        if breached(comparison, value, threshold):
            return Verdict("firing", "firing", "")
        return Verdict("ok", None, "")
    if recovered(comparison, value, recover):
        return Verdict("ok", "resolved", "")
    if breached(comparison, value, threshold):
        return Verdict("firing", None, "")
    side = "above" if comparison == "below" else "below"
    return Verdict("firing", None, f"hysteresis: resolves at {recover:g} or {side}; {value:g} now")
