"""`wrm keys`: on the warehouse directly when no server runs (how a server that requires keys
gets its first one), and through a running server with an admin key in WRM_KEY."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import settle, start_server
from tests.indicator_data import VersionPlan, plan, send
from warehouse import Warehouse
from wrm.cli import main

ADMIN_KEY = "platform-admin-" + "c" * 40
EMAIL = "jane.doe@example.com"
CARD_NAME = "ci 4111 1111 1111 1111"
RUNS = plan([VersionPlan("v1", range(2, 0, -1), 3, 1, 1, 5, (100, 10), 2, 0.7)])


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def wrm_here(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """`wrm` in this process (a subprocess spends ~3 s importing), its output read at the file
    descriptors as a shell would. A command that opens the warehouse itself opens it on this
    process's engine (chdb opens one data path per process), in a database of the test's own."""

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        for name in [k for k in os.environ if k.startswith("WRM_")]:
            monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capfd.readouterr()
        code = main(list(args))
        out = capfd.readouterr()
        return Ran(code, out.out, out.err)

    return run


def test_first_key_on_the_warehouse_directly(
    warehouse: Warehouse, engine_dir: Path, wrm_here: Callable[..., Ran]
) -> None:
    # nothing listens on 127.0.0.1:9: the command opens the warehouse itself
    where = ("--warehouse", f"chdb://{engine_dir}", "--database", warehouse.database, "--http", "127.0.0.1:9")
    made = wrm_here("keys", *where, "create", "--tenant", "acme", "--role", "admin", "--name", "first-admin")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("wrm_") and "\n" not in key  # the key alone on stdout
    assert "opened" in made.stderr and "directly" in made.stderr
    listed = wrm_here("keys", *where, "list")
    assert "first-admin" in listed.stdout and "active" in listed.stdout and key not in listed.stdout
    key_id = key.split("_")[1]
    assert wrm_here("keys", *where, "revoke", key_id).returncode == 0
    assert "revoked" in wrm_here("keys", *where, "list").stdout
    missing = wrm_here("keys", *where, "create", "--role", "viewer", "--name", "x")
    assert missing.returncode == 2 and "--tenant" in missing.stderr
    bad = wrm_here("keys", *where, "create", "--tenant", "bad tenant!", "--role", "viewer", "--name", "x")
    assert bad.returncode == 2 and "is not a tenant id" in bad.stderr


def test_a_name_the_rules_would_change_is_refused_directly(
    warehouse: Warehouse, engine_dir: Path, wrm_here: Callable[..., Ran]
) -> None:
    """On the warehouse directly the policies are the settings' (and those stored there), as
    `wrm redact` reads them: acme masks emails, other tenants do not; a card is masked everywhere."""
    where = ("--warehouse", f"chdb://{engine_dir}", "--database", warehouse.database, "--http", "127.0.0.1:9")
    env = {"WRM_TENANT_REDACTION": json.dumps({"acme": {"detectors": {"email": "mask"}}})}
    base = ("keys", *where, "create", "--role", "viewer")
    for tenant, name, rule in (("acme", EMAIL, "email"), ("other", CARD_NAME, "card_number")):
        refused = wrm_here(*base, "--tenant", tenant, "--name", name, env=env)
        assert refused.returncode == 2 and refused.stdout == "", refused.stderr
        assert f"--name matches redaction rules ({rule})" in refused.stderr and name not in refused.stderr
    made = wrm_here(*base, "--tenant", "other", "--name", EMAIL, env=env)
    assert made.returncode == 0 and made.stdout.startswith("wrm_"), made.stderr
    listed = wrm_here("keys", *where, "list").stdout
    assert EMAIL in listed and "acme" not in listed and "4111" not in listed


def test_keys_through_the_running_server(warehouse: Warehouse, wrm_here: Callable[..., Ran]) -> None:
    srv = start_server(warehouse, auth="required", admin_key=ADMIN_KEY)
    try:
        http = srv.http_address
        env = {"WRM_KEY": ADMIN_KEY}
        made = wrm_here(
            "keys", "--http", http, "create", "--tenant", "acme", "--role", "viewer", "--name", "dash",
            env=env,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert "via the running server" in made.stderr
        key = made.stdout.strip()
        assert (
            httpx.get(f"http://{http}/v1/runs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        )
        listed = wrm_here("keys", "--http", http, "list", "--tenant", "acme", env=env)
        assert "dash" in listed.stdout and key not in listed.stdout
        secret = wrm_here(
            "keys", "--http", http, "create", "--tenant", "acme", "--role", "viewer", "--name", CARD_NAME,
            env=env,
        )  # fmt: skip
        assert secret.returncode == 1 and secret.stdout == "" and "422" in secret.stderr
        assert "matches redaction rules (card_number)" in secret.stderr and "4111" not in secret.stderr
        refused = wrm_here("keys", "--http", http, "list", env={"WRM_KEY": key})  # a viewer key
        assert refused.returncode == 1 and "403" in refused.stderr and "WRM_KEY" in refused.stderr
        assert key not in refused.stderr
        # other commands through the server present WRM_KEY and read the key's tenant only
        send(srv.otlp_address, RUNS, "refund", key=srv.create_key("acme", "ingest", "exporter"))
        send(srv.otlp_address, RUNS[:2], "refund", tenant="other", key=ADMIN_KEY)
        settle(srv)
        db = warehouse.database
        counted = wrm_here(
            "sql", "--http", http, "--database", db, "SELECT count() FROM runs", env={"WRM_KEY": key}
        )
        assert counted.returncode == 0 and counted.stdout.strip() == str(len(RUNS)), counted.stderr
        shown = wrm_here(
            "indicators",
            "--http",
            http,
            "--database",
            db,
            "--workflow",
            "refund",
            "--format",
            "csv",
            env={"WRM_KEY": key},
        )
        assert shown.returncode == 0 and "refund" in shown.stdout, shown.stderr
        assert (
            wrm_here("sql", "--http", http, "--database", db, "SELECT 1").returncode == 1
        )  # no key: refused
        assert wrm_here("keys", "--http", http, "revoke", key.split("_")[1], env=env).returncode == 0
        assert (
            httpx.get(f"http://{http}/v1/runs", headers={"Authorization": f"Bearer {key}"}).status_code == 401
        )
    finally:
        srv.stop()
