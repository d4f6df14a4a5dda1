"""What /v1/webhooks takes and shows. The secret is shown once, when made (creation, rotation)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from analytics.runs.schemas import Utc
from warehouse.statuses import STEP_STATUSES, STORED_RUN_STATUSES

# Every event type a subscription can name; webhook.test goes only to the subscription tested.
EVENT_TYPES = (
    "run.started", "run.waiting_human", "run.completed", "run.failed", "run.canceled",
    "step.completed", "step.failed", "action.requested", "alert.firing", "alert.resolved", "report.ready",
)  # fmt: skip
TEST_EVENT = "webhook.test"
_GROUPS = sorted({t.split(".")[0] + ".*" for t in EVENT_TYPES})
# What the `statuses` filter may name: the status an event announces.
FILTER_STATUSES = (*STORED_RUN_STATUSES, *STEP_STATUSES, "pending", "firing", "resolved", "ready")


def _event_names(names: list[str]) -> list[str]:
    for name in names:
        if name != "*" and name not in EVENT_TYPES and name not in _GROUPS:
            raise ValueError(
                f"unknown event type {name[:80]!r}: use '*', a group ({', '.join(_GROUPS)}) or one of "
                f"{', '.join(EVENT_TYPES)}"
            )
    return sorted(set(names))


def _statuses(names: list[str]) -> list[str]:
    for name in names:
        if name not in FILTER_STATUSES:
            raise ValueError(f"unknown status {name[:80]!r}: one of {', '.join(FILTER_STATUSES)}")
    return sorted(set(names))


def _singular_filters(data: Any) -> Any:
    """The issue's names: `workflow`, `environment`, `status`, each one name or a list, are the
    filters `workflows`, `environments`, `statuses`."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for single, plural in (
        ("workflow", "workflows"),
        ("environment", "environments"),
        ("status", "statuses"),
    ):
        if single in out:
            if plural in out:
                raise ValueError(f"give {single} or {plural}, not both")
            value = out.pop(single)
            out[plural] = [value] if isinstance(value, str) else value
    return out


EventNames = Annotated[list[str], AfterValidator(_event_names)]
Statuses = Annotated[list[str], AfterValidator(_statuses)]
Names = list[Annotated[str, Field(min_length=1, max_length=200)]]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _singular = model_validator(mode="before")(_singular_filters)

    url: str = Field(max_length=2048, description="http(s) URL the events are POSTed to")
    events: EventNames = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=50,
        description="event types; '*' or 'run.*' allowed",
    )
    workflows: Names = Field(
        default_factory=list, max_length=100, description="only these workflows (none: all)"
    )
    environments: Names = Field(default_factory=list, max_length=100, description="only these environments")
    statuses: Statuses = Field(
        default_factory=list, max_length=20, description="only events announcing these"
    )
    description: str = Field("", max_length=1000)
    enabled: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _singular = model_validator(mode="before")(_singular_filters)

    url: str | None = Field(None, max_length=2048)
    events: EventNames | None = Field(None, min_length=1, max_length=50)
    workflows: Names | None = Field(None, max_length=100)
    environments: Names | None = Field(None, max_length=100)
    statuses: Statuses | None = Field(None, max_length=20)
    description: str | None = Field(None, max_length=1000)
    enabled: bool | None = Field(None, description="true re-enables one disabled by a 410")


class Webhook(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    workflows: list[str]
    environments: list[str]
    statuses: list[str]
    description: str
    enabled: bool
    disabled_reason: str = Field("", description="why delivery stopped (a 410 from the receiver)")
    created_at: Utc
    created_by: str
    previous_secret_valid_until: Utc | None = Field(
        None, description="after a rotation: until when messages are also signed with the old secret"
    )


class WebhookCreated(Webhook):
    secret: str = Field(description="the signing secret (whsec_…): shown only now")


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class RotatedSecret(BaseModel):
    webhook_id: str
    secret: str = Field(description="the new signing secret: shown only now")
    previous_secret_valid_until: Utc


class Delivery(BaseModel):
    message_id: str
    event_type: str
    attempt: int = Field(description="1 for the first attempt; a manual retry request repeats the last one")
    at: Utc
    outcome: Literal["delivered", "retrying", "failed", "refused", "disabled", "requested"]
    http_status: int | None
    latency_ms: float
    error: str
    response_excerpt: str
    next_attempt_at: Utc | None


class DeliveryPage(BaseModel):
    webhook_id: str
    deliveries: list[Delivery]


class MessageQueued(BaseModel):
    webhook_id: str
    message_id: str
    event_type: str
