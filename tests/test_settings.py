"""Settings: flags over environment over file over defaults; bad values and unknown keys stop start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
