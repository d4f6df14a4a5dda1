"""Settings: flags over environment over file over defaults; bad values and unknown keys stop start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from redaction import Policy, PolicyError, Rule, effective
from redaction.redactor import Rules
from wrm.cli import main
from wrm.settings import SettingsError, load_settings


def test_defaults_match_the_readme() -> None:
    s = load_settings()
    assert (s.otlp_grpc, s.http, s.warehouse, s.database) == (
        "127.0.0.1:4317",
        "127.0.0.1:8080",
        "chdb://./data/wrm",
        "wrm",
    )
    assert s.spans_ttl_days == 30 and s.max_attribute_bytes == 65536 and s.max_request_bytes == 16 * 2**20


def test_precedence_flag_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "wrm.toml"
    cfg.write_text('http = "127.0.0.1:9001"\notlp_grpc = "127.0.0.1:9002"\nspans_ttl_days = 45\n')
    monkeypatch.setenv("WRM_HTTP", "127.0.0.1:9101")
    s = load_settings(cfg, otlp_grpc="0.0.0.0:0")
    assert s.otlp_grpc == "0.0.0.0:0"  # flag
    assert s.http == "127.0.0.1:9101"  # environment over file
    assert s.spans_ttl_days == 45  # file over default


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"otlp_grpc": "localhost"}, "'otlp_grpc' (WRM_OTLP_GRPC)"),
        ({"http": "127.0.0.1:70000"}, "'http' (WRM_HTTP)"),
        ({"warehouse": "mysql://x"}, "'warehouse' (WRM_WAREHOUSE)"),
        ({"spans_ttl_days": 0}, "'spans_ttl_days' (WRM_SPANS_TTL_DAYS)"),
        ({"database": "bad-name;"}, "'database' (WRM_DATABASE)"),
    ],
)
def test_bad_value_names_the_setting(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(SettingsError, match=named.replace("(", r"\(").replace(")", r"\)")):
        load_settings(**kwargs)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRM_QUEUE_MAX_SPANS", "lots")
    with pytest.raises(SettingsError, match=r"'queue_max_spans' \(WRM_QUEUE_MAX_SPANS\)"):
        load_settings()


def test_unknown_keys_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "wrm.toml"
    cfg.write_text('htpp = "127.0.0.1:9001"\n')
    with pytest.raises(SettingsError, match="unknown setting 'htpp'"):
        load_settings(cfg)
    monkeypatch.setenv("WRM_OTLP_GRCP", "127.0.0.1:1")
    with pytest.raises(SettingsError, match="unknown setting WRM_OTLP_GRCP"):
        load_settings()


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("http = \n")
    with pytest.raises(SettingsError, match=r"broken\.toml"):
        load_settings(broken)


def test_cli_exits_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--otlp-grpc", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wrm: setting 'otlp_grpc' (WRM_OTLP_GRPC)") and "'nowhere'" in err


def test_run_model_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Durations are seconds (a number, also as the text of an environment variable) or ISO 8601;
    run_id_attributes are attribute names; anything else is refused, naming the setting."""
    monkeypatch.setenv("WRM_STALE_RUN_AFTER", "3600")
    monkeypatch.setenv("WRM_STALE_RUN_AFTER_BY_WORKFLOW", '{"nightly": "PT2H", "sync": "90"}')
    monkeypatch.setenv("WRM_RUN_ID_ATTRIBUTES", '["session.id", "gen_ai.conversation.id"]')
    policy = load_settings().stale_policy()
    assert (policy.after_s, dict(policy.after_by_workflow), policy.wait_s) == (
        3600,
        {"nightly": 7200, "sync": 90},
        7 * 24 * 3600,
    )
    assert load_settings().run_id_attributes == ["session.id", "gen_ai.conversation.id"]
    for name, bad in (
        ("stale_run_after", "0"),
        ("stale_run_after", "soon"),
        ("human_wait_limit", "-5"),
        ("run_id_attributes", '["session.id; DROP TABLE runs"]'),
        ("max_parts_per_run", "0"),
    ):
        monkeypatch.setenv(f"WRM_{name.upper()}", bad)
        with pytest.raises(SettingsError, match=rf"'{name}' \(WRM_{name.upper()}\)"):
            load_settings()
        monkeypatch.delenv(f"WRM_{name.upper()}")


ADMIN_KEY = "admin-key-never-shown-" + "a" * 32
REDACTION_SECRET = "redaction-secret-never-shown-" + "s" * 32
# Each compiles alone; together they are too large for RE2 (checked below).
LETTERS, DIGITS = r"\pL{400}", r"\pN{400}x"


def _rules_toml(table: str, *patterns: str) -> str:
    """Rules named apart across tables (a tenant's rule of the same name would replace the global one)."""
    return "".join(
        f"[[{table}.rules]]\nname = \"r{len(table)}-{i}\"\npattern = '{p}'\n" for i, p in enumerate(patterns)
    )


def _load_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policies: str) -> str:
    for name in ("WRM_REDACTION", "WRM_TENANT_REDACTION", "WRM_REDACTION_SECRET", "WRM_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "wrm.toml"
    cfg.write_text(f'admin_key = "{ADMIN_KEY}"\nredaction_secret = "{REDACTION_SECRET}"\n{policies}')
    with pytest.raises(SettingsError) as refused:
        load_settings(cfg)
    message = str(refused.value)
    assert ADMIN_KEY not in message and REDACTION_SECRET not in message, message
    assert "cannot be compiled together" in message, message
    return message


def test_the_redaction_rules_are_checked_together() -> None:
    for pattern in (LETTERS, DIGITS):
        Rules(effective(Policy(rules=[Rule(name="r", pattern=pattern)])))
    with pytest.raises(PolicyError):
        Rules(effective(Policy(rules=[Rule(name="a", pattern=LETTERS), Rule(name="b", pattern=DIGITS)])))


def test_a_global_policy_that_cannot_compile_is_named_and_no_secret_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = _load_refused(tmp_path, monkeypatch, _rules_toml("redaction", LETTERS, DIGITS))
    assert message.startswith("setting 'redaction' (WRM_REDACTION)"), message


@pytest.mark.parametrize("split", [False, True], ids=["tenant-alone", "tenant-over-global"])
def test_a_tenant_policy_that_cannot_compile_is_named_with_its_tenant_and_no_secret_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    """Both rules in the tenant's policy, or one there and one in the global policy (each
    policy compiles alone: only the tenant's layered policy does not)."""
    if split:
        policies = _rules_toml("redaction", LETTERS) + _rules_toml("tenant_redaction.acme", DIGITS)
    else:
        policies = _rules_toml("tenant_redaction.acme", LETTERS, DIGITS)
    message = _load_refused(tmp_path, monkeypatch, policies)
    assert message.startswith("setting 'tenant_redaction' (WRM_TENANT_REDACTION)"), message
    assert "tenant 'acme'" in message, message
