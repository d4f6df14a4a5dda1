"""The redaction settings on their own, for a workflow process that uses the library: the same
names, file and `WRM_*` variables as `wrm serve` (wrm.settings), and nothing else of them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from redaction.book import PolicyBook
from redaction.policy import Policy, PolicyError


class RedactionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WRM_", extra="ignore")
    redaction: Policy = Field(default_factory=Policy)
    tenant_redaction: dict[str, Policy] = Field(default_factory=dict)
    redaction_secret: SecretStr | None = None


def book_from_settings(config_file: str | Path | None = None) -> PolicyBook:
    """A PolicyBook from the settings alone. Without `redaction_secret`, a policy that hashes
    cannot give the digests the server stores, so it is refused rather than guessed."""
    path = Path(config_file) if config_file else None

    class _Sourced(RedactionSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            if path is None:
                return (init_settings, env_settings)
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=path))

    settings = _Sourced()
    secret = settings.redaction_secret
    if secret is None:
        policies = [settings.redaction, *settings.tenant_redaction.values()]
        if any(_hashes(p) for p in policies):
            raise PolicyError(
                "a policy hashes, and only the redaction_secret setting (WRM_REDACTION_SECRET) the "
                "server uses gives the same digests; set it, or redact through the server (wrm redact)"
            )
    key = secret.get_secret_value().encode() if secret is not None else b"\0" * 32
    return PolicyBook(settings.redaction, settings.tenant_redaction, key)


def _hashes(policy: Policy) -> bool:
    return any(r.action == "hash" for r in policy.rules) or "hash" in policy.detectors.values()
