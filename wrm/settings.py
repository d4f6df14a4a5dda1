"""WRM settings: one pydantic-settings model read from flags, `WRM_*` variables and a TOML file.

Precedence, highest first: command-line flags, environment, the `--config` TOML file, defaults.
An unknown key (in the file or as a `WRM_*` variable) or a bad value stops start-up with a
message naming the setting.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from analytics.prices import ModelPrice
from analytics.reports.schedule import ReportSchedule
from derivation.rebuild import StalePolicy
from redaction.policy import Policy, PolicyError, effective
from redaction.redactor import Rules
from warehouse.retention import RetentionPolicy, TierDays
from warehouse.tenants import TENANT_RE

ENV_PREFIX = "WRM_"
# never echoed in an error message or a log line
SECRET_SETTINGS = frozenset({"admin_key", "key", "redaction_secret"})
_ATTRIBUTE_RE = re.compile(r"^[A-Za-z0-9_.\-/]{1,255}$")
_HOSTPORT_RE = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.\-]+):(?P<port>\d{1,5})$")


def _number_or_same(value: object) -> object:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _seconds(value: timedelta) -> int:
    return max(1, round(value.total_seconds()))


class SettingsError(ValueError):
    """A setting is unknown or has a bad value; the message names it."""


def split_hostport(value: str) -> tuple[str, int]:
    m = _HOSTPORT_RE.match(value.strip())
    if not m or int(m.group("port")) > 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (port 0-65535; 0 picks a free port)")
    return m.group("host").strip("[]"), int(m.group("port"))


class TenantRetention(BaseModel):
    """Per-tenant overrides of the retention tiers; a tier left out keeps the global value."""

    model_config = ConfigDict(extra="forbid")
    spans_ttl_days: int | None = Field(None, ge=1, le=3650)
    steps_ttl_days: int | None = Field(None, ge=1, le=3650)
    runs_ttl_days: int | None = Field(None, ge=1, le=3650)
    summaries_ttl_days: int | None = Field(None, ge=1, le=36500)


class Settings(BaseSettings):
    """Every WRM setting. Names map to `WRM_<NAME>` variables and to keys of the TOML file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)
    config_file: ClassVar[Path | None] = None

    otlp_grpc: str = Field("127.0.0.1:4317", description="OTLP/gRPC listen address, HOST:PORT")
    otlp_http: str = Field("127.0.0.1:4318", description="OTLP/HTTP listen address, HOST:PORT")
    otlp_http_cors_origins: list[str] = Field(
        default_factory=list, description="browser origins allowed to POST spans to OTLP/HTTP (* for any)"
    )
    otlp_http_cors_headers: list[str] = Field(
        default_factory=list, description="request headers those origins may send beyond the OTLP ones"
    )
    http: str = Field("127.0.0.1:8080", description="HTTP API and SQL endpoint listen address")
    warehouse: str = Field("chdb://./data/wrm", description="chdb://PATH or http(s)://HOST:PORT")
    database: str = Field("wrm", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    spans_ttl_days: int = Field(30, ge=1, le=3650, description="raw span retention")
    steps_ttl_days: int = Field(90, ge=1, le=3650, description="step retention")
    runs_ttl_days: int = Field(90, ge=1, le=3650, description="run retention")
    summaries_ttl_days: int = Field(400, ge=1, le=36500, description="daily summary retention")
    tenant_retention: dict[str, TenantRetention] = Field(
        default_factory=dict, description="per-tenant overrides of the *_ttl_days settings"
    )
    summary_interval_ms: float = Field(
        10_000.0, ge=0, le=3_600_000, description="least time between daily-summary refreshes"
    )
    assemble_interval_ms: float = Field(1000.0, ge=0, le=60_000, description="pause between run assemblies")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="USD per million tokens by model name or pattern (* and ?), over the shipped table",
    )
    tenant_prices: dict[str, dict[str, ModelPrice]] = Field(
        default_factory=dict, description="per-tenant prices, over `prices` and the shipped table"
    )
    default_prices: bool = Field(
        True, description="price models named in no `prices` entry from the shipped, dated price table"
    )
    reports_dir: Path = Field(Path("./data/reports"), description="where scheduled reports are written")
    reports: list[ReportSchedule] = Field(
        default_factory=list, description="scheduled indicator reports ([[reports]] entries)"
    )
    max_attribute_bytes: int = Field(64 * 1024, ge=256, description="longer values are truncated")
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024, description="largest OTLP request")
    ingest_ack: Literal["stored", "spooled"] = Field(
        "stored",
        description="answer an export once its spans are in the warehouse (stored) or once fsynced to the "
        "spool and stored behind it (spooled: faster answers, bigger inserts; spec 2.2)",
    )
    spool_dir: Path | None = Field(
        None,
        description="the spool's directory (default: <warehouse path>-spool/<database> for an embedded "
        "warehouse, else ./data/spool/<database>)",
    )
    queue_max_spans: int = Field(
        16_000, ge=1, description="ingest_ack = stored: spans waiting to be stored before back-off"
    )
    spool_max_spans: int = Field(
        64_000, ge=1, description="ingest_ack = spooled: spans spooled and not yet stored before back-off"
    )
    flush_max_spans: int = Field(16_000, ge=1, description="most spans in one insert")
    flush_interval_ms: float = Field(5.0, ge=0, le=10_000, description="longest wait to fill a flush")
    grpc_workers: int = Field(32, ge=1, le=1024, description="concurrent OTLP requests")
    writer_threads: int = Field(2, ge=1, le=16, description="parallel inserts, each on its own handle")
    stats_log_interval_s: float = Field(60.0, ge=0, description="0 turns the periodic counter line off")
    sql_max_execution_s: float = Field(
        30.0, ge=0.1, le=86_400, description="time limit of one query on the SQL port (Code 159 past it)"
    )
    sql_max_memory_bytes: int = Field(
        2 * 1024**3, ge=16 * 1024**2, description="memory limit of one SQL-port query (Code 241 past it)"
    )
    sql_max_result_rows: int = Field(
        10_000_000, ge=1, description="most rows one SQL-port query returns (Code 396 past it)"
    )
    sql_max_result_bytes: int = Field(
        1024**3, ge=1024, description="most uncompressed bytes one SQL-port query returns (Code 396 past it)"
    )
    sql_max_threads: int = Field(
        0, ge=0, le=256, description="engine threads per SQL-port query; 0: half the CPU cores, at least 1"
    )
    sql_max_concurrent: int = Field(2, ge=1, le=64, description="SQL-port queries running at once")
    sql_max_queued: int = Field(
        8, ge=0, le=10_000, description="SQL-port queries waiting for a free slot; one more gets 429"
    )
    sql_queue_timeout_s: float = Field(
        10.0, ge=0, le=3600, description="longest wait for a free slot before 429 with Retry-After"
    )
    export_max_concurrent: int = Field(
        2, ge=1, le=64, description="run exports streaming at once; one more gets 429 with Retry-After"
    )
    webhooks_allow_private: bool = Field(
        False,
        description="let webhooks reach private, loopback and link-local addresses (checked at every "
        "delivery, after DNS resolution); off, such a URL is refused",
    )
    webhooks_timeout_s: float = Field(10.0, gt=0, le=60, description="time limit of one webhook delivery")
    webhooks_first_retry_s: float = Field(
        5.0, gt=0, le=10, description="pause before a failed webhook delivery's first retry (then growing)"
    )
    webhooks_retry_for_s: float = Field(
        86_400.0, gt=0, le=30 * 86_400, description="how long a failing webhook delivery is retried"
    )
    webhooks_concurrency: int = Field(
        4, ge=1, le=64, description="deliveries in flight per subscription (one run's events stay in order)"
    )
    webhooks_poll_ms: float = Field(
        250.0, ge=10, le=60_000, description="longest pause before a new lifecycle event is picked up"
    )
    alerts_tick_s: float = Field(
        1.0, gt=0, le=3600, description="how often alert rules are checked for a due evaluation"
    )
    run_id_attributes: list[str] = Field(
        default_factory=list,
        description="further span attributes whose value is a run id, joining traces into one run "
        "(e.g. session.id); after wrm.run.id and cicd.pipeline.run.id, before span links",
    )
    stale_run_after: timedelta = Field(
        timedelta(hours=24),
        description="an unfinished run with no span for this long becomes failed / abandoned "
        "(seconds or ISO 8601, e.g. PT24H)",
    )
    stale_run_after_by_workflow: dict[str, timedelta] = Field(
        default_factory=dict, description="stale_run_after per workflow name"
    )
    human_wait_limit: timedelta = Field(
        timedelta(days=7),
        description="a run waiting for a person with no span for this long becomes failed / abandoned",
    )
    human_wait_limit_by_workflow: dict[str, timedelta] = Field(
        default_factory=dict, description="human_wait_limit per workflow name"
    )
    max_parts_per_run: int = Field(
        1000, ge=1, le=1_000_000, description="traces one run may have; a trace beyond it is a run of its own"
    )
    stale_check_interval_s: float = Field(
        60.0, gt=0, le=86_400, description="how often unfinished runs are checked for staleness"
    )
    auth: Literal["required", "off"] | None = Field(
        None,
        description="require API keys (`required`) or not (`off`); unset: off only while every "
        "listener is on a loopback address, else required",
    )
    admin_key: SecretStr | None = Field(
        None, description="the platform admin's key: manages keys of every tenant (at least 32 characters)"
    )
    key: SecretStr | None = Field(
        None, description="the API key `wrm` commands present to a running server (sql, export, keys, …)"
    )
    key_refresh_s: float = Field(
        5.0, ge=0.1, le=3600, description="how soon a key created or revoked by another process is seen"
    )
    redaction: Policy = Field(
        default_factory=Policy,
        description="the global redaction policy: built-in detectors on/off and rules of your own "
        "(credentials and card numbers are masked unless turned off)",
    )
    tenant_redaction: dict[str, Policy] = Field(
        default_factory=dict, description="per-tenant redaction policies, layered over `redaction`"
    )
    redaction_secret: SecretStr | None = Field(
        None,
        description="keys the HMAC of `hash` actions (at least 32 characters); unset: a secret the "
        "warehouse makes on first start",
    )
    redaction_refresh_s: float = Field(
        5.0, ge=0.1, le=3600, description="how soon a policy set through another process applies"
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("admin_key", "redaction_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("is shorter than 32 characters; use e.g. `openssl rand -hex 32`")
        return value

    @field_validator("run_id_attributes")
    @classmethod
    def _attribute_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ATTRIBUTE_RE.match(name):
                raise ValueError(f"{name!r} is not an attribute name (letters, digits, _ . - /; at most 255)")
        return value

    @field_validator(
        "stale_run_after",
        "human_wait_limit",
        "stale_run_after_by_workflow",
        "human_wait_limit_by_workflow",
        mode="before",
    )
    @classmethod
    def _seconds_text(cls, value: object) -> object:
        """A duration given as text of a number (an environment variable) is seconds."""
        if isinstance(value, dict):
            return {k: _number_or_same(v) for k, v in value.items()}
        return _number_or_same(value)

    @field_validator(
        "stale_run_after", "human_wait_limit", "stale_run_after_by_workflow", "human_wait_limit_by_workflow"
    )
    @classmethod
    def _positive(cls, value: timedelta | dict[str, timedelta]) -> timedelta | dict[str, timedelta]:
        for limit in value.values() if isinstance(value, dict) else [value]:
            if not timedelta(seconds=1) <= limit <= timedelta(days=3650):
                raise ValueError(f"{limit} is not between 1 second and 3650 days")
        return value

    @field_validator("redaction")
    @classmethod
    def _global_compiles(cls, value: Policy) -> Policy:
        """The global rules compile together (else start-up would fail later, at ingest)."""
        try:
            Rules(effective(value))
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("tenant_redaction")
    @classmethod
    def _tenants_compile(cls, value: dict[str, Policy], info: ValidationInfo) -> dict[str, Policy]:
        """Each tenant's rules compile together with the global ones."""
        base = info.data.get("redaction")
        for tenant, own in value.items():
            try:
                Rules(effective(base, own))
            except PolicyError as exc:
                raise ValueError(f"tenant {tenant!r}: {exc}") from None
        return value

    def stale_policy(self) -> StalePolicy:
        """When unfinished runs count as abandoned, in whole seconds."""
        return StalePolicy(
            after_s=_seconds(self.stale_run_after),
            after_by_workflow={w: _seconds(v) for w, v in self.stale_run_after_by_workflow.items()},
            wait_s=_seconds(self.human_wait_limit),
            wait_by_workflow={w: _seconds(v) for w, v in self.human_wait_limit_by_workflow.items()},
        )

    @field_validator("otlp_grpc", "otlp_http", "http")
    @classmethod
    def _hostport(cls, value: str) -> str:
        split_hostport(value)
        return value

    @field_validator("reports")
    @classmethod
    def _report_names(cls, value: list[ReportSchedule]) -> list[ReportSchedule]:
        names = [r.name for r in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"report name {repeated[0]!r} is used twice; each report needs its own folder")
        return value

    @field_validator("tenant_retention", "tenant_redaction", "tenant_prices")
    @classmethod
    def _tenant_ids(cls, value: dict[str, Any]) -> dict[str, Any]:
        for tenant in value:
            if not TENANT_RE.match(tenant):
                raise ValueError(f"{tenant!r} is not a tenant id (letters, digits, _ . -; at most 64)")
        return value

    def retention(self) -> RetentionPolicy:
        """The retention policy these settings describe, per tier and tenant."""
        tiers = {}
        for tier in ("spans", "steps", "runs", "summaries"):
            key = f"{tier}_ttl_days"
            overrides = {t: getattr(o, key) for t, o in self.tenant_retention.items() if getattr(o, key)}
            tiers[tier] = TierDays(getattr(self, key), overrides)
        return RetentionPolicy(**tiers)

    @field_validator("warehouse")
    @classmethod
    def _dsn(cls, value: str) -> str:
        from warehouse import BadDsn, parse_dsn

        try:
            parse_dsn(value)
        except BadDsn as exc:
            raise ValueError(str(exc)) from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.config_file))
        return tuple(sources)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings, turning every problem into one SettingsError that names the setting."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    unknown = sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]} (known: {', '.join(sorted(known))})")
    path = Path(config_file) if config_file else None
    if path is not None and not path.is_file():
        raise SettingsError(f"config file {path} does not exist")
    with_file = type("Settings", (Settings,), {"config_file": path})
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings.model_validate(with_file(**given).model_dump())
    except ValidationError as exc:
        raise SettingsError(_describe(exc, path)) from None
    except ValueError as exc:  # a malformed TOML file
        raise SettingsError(f"config file {path}: {exc}") from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        # an entry of a list setting reads reports[0].schedule, from WRM_REPORTS
        name = "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".") or "?"
        if err["type"] == "extra_forbidden":
            where = f" in {path}" if path else ""
            lines.append(f"unknown setting {name!r}{where}")
        else:
            env = ENV_PREFIX + (loc[0].upper() if loc else "?")
            # Never the input of a check on the whole model (no field named): it holds every setting.
            secret = not err["loc"] or str(err["loc"][0]) in SECRET_SETTINGS
            shown = "" if secret else f" (got {err.get('input')!r})"
            lines.append(f"setting {name!r} ({env}): {err['msg']}{shown}")
    return "; ".join(lines)
