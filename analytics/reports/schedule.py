"""A `[[reports]]` entry of the settings: which report to write, and when (cron, in a time zone).

Validated when settings load, so a bad cron line or time zone stops start-up naming the entry
instead of failing at the first run.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from analytics.reports.request import FORMATS, Comparison, RequestError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_PERIOD_RE = re.compile(r"^\d{1,4}d$")


class ReportSchedule(BaseModel):
    """One scheduled report. `period` is `Nd`: the N whole UTC days before the day it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="folder under reports_dir; letters, digits, _ . -")
    workflow: str = Field(min_length=1, max_length=256)
    tenant: str = "default"
    environment: str = ""
    schedule: str = Field(description="cron: minute hour day-of-month month day-of-week")
    timezone: str = "UTC"
    period: str = "7d"
    compare: str = "previous"
    formats: list[str] = Field(default_factory=lambda: ["html"], min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value) or value in (".", ".."):
            raise ValueError(f"{value!r} is not a report name (letters, digits, _ . -; at most 64)")
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        from warehouse.tenants import TENANT_RE

        if not TENANT_RE.match(value):
            raise ValueError(f"{value!r} is not a tenant id (letters, digits, _ . -; at most 64)")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron schedule of 5 fields (e.g. '0 7 * * 1')")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (e.g. UTC, Europe/Paris)") from None
        return value

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        if not _PERIOD_RE.match(value) or int(value[:-1]) < 1:
            raise ValueError(f"{value!r} is not a period of days (e.g. 7d, 30d)")
        return value

    @field_validator("compare")
    @classmethod
    def _compare(cls, value: str) -> str:
        try:
            Comparison.parse(value)
        except RequestError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        for fmt in value:
            if fmt not in FORMATS:
                raise ValueError(f"{fmt!r} is not a report format ({', '.join(FORMATS)})")
        return list(dict.fromkeys(value))
