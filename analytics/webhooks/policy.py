"""What a delivery's answer means, and when to try again (Standard Webhooks and Svix practice).

2xx: delivered. Timeouts, connection errors, 429 and 5xx: retried with exponential back-off and
jitter (honouring Retry-After, within bounds), the first retry within `first_s` and then growing,
until `retry_for_s` after the first attempt. 410 Gone: the receiver asks never to be called
again; the subscription is disabled. Any other answer (3xx, which is not followed, and 4xx):
final, not retried. A refused target (a private address): final for this message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"  # final: not retried (or retried until retry_for_s ran out)
    REFUSED = "refused"  # the target may not be called (a private address)
    DISABLED = "disabled"  # 410: the subscription was disabled
    REQUESTED = "requested"  # an operator asked for another attempt

    @property
    def pending(self) -> bool:
        """Whether the message still waits for an attempt."""
        return self in (Outcome.RETRYING, Outcome.REQUESTED)


MAX_DELAY_S = 3 * 3600.0  # the longest pause between two attempts


@dataclass(frozen=True)
class RetryPolicy:
    first_s: float = 5.0
    retry_for_s: float = 86_400.0
    growth: float = 4.0
    jitter: float = 0.2  # ± this fraction of each pause

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """The pause after failed attempt number `attempt` (1-based)."""
        base = min(MAX_DELAY_S, self.first_s * self.growth ** (attempt - 1))
        pause = base * random.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after_s is not None:  # the receiver's wish, within reason
            pause = max(pause, min(retry_after_s, MAX_DELAY_S))
        return pause

    def after(
        self, status: int | None, attempt: int, elapsed_s: float, retry_after_s: float | None
    ) -> tuple[Outcome, float]:
        """The outcome of an attempt that got `status` (None: timeout or connection error) and,
        when it is retried, the pause before the next attempt."""
        if status is not None and 200 <= status < 300:
            return Outcome.DELIVERED, 0.0
        if status == 410:
            return Outcome.DISABLED, 0.0
        if status is None or status == 429 or status >= 500:
            pause = self.delay(attempt, retry_after_s)
            if elapsed_s + pause <= self.retry_for_s:
                return Outcome.RETRYING, pause
        return Outcome.FAILED, 0.0


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds (the delta form; an HTTP date is read as absent)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
