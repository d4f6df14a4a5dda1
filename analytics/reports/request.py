"""What a report covers: one workflow of one tenant over whole UTC days, against a comparison.

Shared by `wrm report` and the `[[reports]]` schedules, so a period or a comparison written in
either means the same days. Days are UTC because the summary tier is kept by UTC day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

_DAYS_RE = re.compile(r"^(\d{1,4})d$")
_VERSIONS_RE = re.compile(r"^(?P<base>[^.\s][^\s]*?)\.\.(?P<cand>[^.\s][^\s]*)$")
FORMATS = ("html", "pdf", "md")


class RequestError(ValueError):
    """A period, date or comparison that cannot be read; the message says what was expected."""


@dataclass(frozen=True)
class Comparison:
    """Against what the report's figures are set: the days just before (`previous`), one
    version against another within the report's days (`versions`), or nothing (`none`)."""

    kind: Literal["previous", "versions", "none"] = "previous"
    baseline_version: str = ""
    candidate_version: str = ""

    @classmethod
    def parse(cls, text: str) -> Comparison:
        """`previous`, `none`, or `V1..V2` (baseline..candidate)."""
        value = text.strip()
        if value in ("previous", "none"):
            return cls(value)  # type: ignore[arg-type]
        m = _VERSIONS_RE.match(value)
        if not m or m.group("base") == m.group("cand"):
            raise RequestError(f"{text!r} is not `previous`, `none` or two different versions `V1..V2`")
        return cls("versions", m.group("base"), m.group("cand"))

    def __str__(self) -> str:
        return f"{self.baseline_version}..{self.candidate_version}" if self.kind == "versions" else self.kind


@dataclass(frozen=True)
class ReportRequest:
    """One report: `since` and `until` are both included."""

    workflow: str
    tenant: str
    since: date
    until: date
    environment: str = ""  # "" is every environment
    compare: Comparison = field(default_factory=Comparison)

    def __post_init__(self) -> None:
        if not self.workflow:
            raise RequestError("a report needs a workflow")
        if self.until < self.since:
            raise RequestError(f"the report ends ({self.until}) before it starts ({self.since})")

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def previous_window(self) -> tuple[date, date]:
        """The same number of days just before `since` (both ends included)."""
        return self.since - timedelta(days=self.days), self.since - timedelta(days=1)


def parse_since(text: str, until: date) -> date:
    """`Nd` (the N days ending with `until`, both included) or a date `YYYY-MM-DD`."""
    value = text.strip()
    m = _DAYS_RE.match(value)
    if m:
        days = int(m.group(1))
        if days < 1:
            raise RequestError(f"{text!r}: a period is at least 1d")
        return until - timedelta(days=days - 1)
    return parse_date(value)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise RequestError(f"{text!r} is neither Nd (days) nor a date YYYY-MM-DD") from None
