"""When keys are required (setting `auth`, or where the server listens), how the key cache sees a
key made by another process, and that a secret setting is never echoed."""

from __future__ import annotations

import logging
import time

import pytest

from access import Authenticator, Forbidden, Role, Unauthenticated, resolve_auth
from access.credentials import basic_password, bearer, sql_port_key
from access.store import KeyStore
from tests.conftest import start_server
from warehouse import Warehouse
from wrm.settings import SettingsError, load_settings

SECRET = "s3cret-" + "z" * 40


@pytest.mark.parametrize(
    ("setting", "hosts", "required"),
    [
        (None, ["127.0.0.1", "::1", "localhost"], False),
        (None, ["127.0.0.1", "0.0.0.0"], True),
        (None, ["10.1.2.3"], True),
        (None, ["wrm.internal"], True),  # a name may resolve anywhere
        ("off", ["0.0.0.0"], False),
        ("required", ["127.0.0.1"], True),
    ],
)
def test_mode_follows_the_setting_or_the_addresses(
    setting: str | None, hosts: list[str], required: bool
) -> None:
    assert resolve_auth(setting, hosts).required is required


def test_a_server_on_every_interface_requires_keys_unless_told(warehouse: Warehouse) -> None:
    srv = start_server(warehouse, http="0.0.0.0:0")
    try:
        assert srv.authenticator is not None and srv.authenticator.required
        assert "auth required" in srv.banner()
    finally:
        srv.stop()


def test_on_loopback_auth_is_off_by_default_and_says_so(
    warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wrm"):
        srv = start_server(warehouse)  # every listener on 127.0.0.1, setting auth unset
    try:
        assert srv.authenticator is not None and not srv.authenticator.required
        assert "auth OFF" in srv.banner()
        assert any(
            "auth is off" in r.getMessage() and "WRM_AUTH=required" in r.getMessage() for r in caplog.records
        )
    finally:
        srv.stop()


def test_auth_off_on_every_interface_is_allowed_but_said(
    warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wrm"):
        srv = start_server(warehouse, http="0.0.0.0:0", auth="off")
    try:
        assert srv.authenticator is not None and not srv.authenticator.required
        assert any("auth is OFF" in r.getMessage() and "0.0.0.0" in r.getMessage() for r in caplog.records)
    finally:
        srv.stop()


def test_a_key_made_elsewhere_is_seen_and_a_revoked_one_refused(warehouse: Warehouse) -> None:
    """Two authenticators over one warehouse stand for two processes: a key made through one is
    accepted by the other on first use; revoked through one, refused by the other within the
    refresh interval."""
    from warehouse import migrate

    migrate(warehouse)
    here = Authenticator(KeyStore(warehouse), required=True, refresh_s=0.2)
    there = KeyStore(warehouse.session())
    with pytest.raises(Unauthenticated):
        here.authenticate(None)
    record, key = there.create("acme", Role.VIEWER, "elsewhere", "test")
    principal = here.authenticate(key)
    assert principal is not None and (principal.tenant, principal.role) == ("acme", Role.VIEWER)
    with pytest.raises(Forbidden):
        here.authorize(key, Role.OPERATOR)
    there.revoke(record, "test")
    time.sleep(0.3)
    with pytest.raises(Unauthenticated) as refused:
        here.authenticate(key)
    assert key not in str(refused.value)
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(Unauthenticated):
        here.authenticate(tampered)


def test_roles_nest_and_ingest_stands_apart() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.VIEWER.allows(Role.INGEST)
    assert Role.INGEST.allows(Role.INGEST) and not Role.INGEST.allows(Role.VIEWER)
    assert Role.ADMIN.allows(Role.INGEST) and not Role.OPERATOR.allows(Role.INGEST)


def test_credentials_are_read_the_ways_clients_send_them() -> None:
    assert bearer("Bearer abc") == "abc" and bearer("Basic abc") is None and bearer("Bearer ") is None
    assert basic_password("Basic dXNlcjprZXk=") == "key"  # user:key
    assert basic_password("Basic !!!") is None
    assert sql_port_key({"x-clickhouse-key": "k1"}, {}) == "k1"
    assert sql_port_key({}, {"password": "k2"}) == "k2"
    assert sql_port_key({"authorization": "Bearer k3"}, {"password": "x"}) == "k3"


def test_secret_settings_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRM_ADMIN_KEY", "too-short-but-secret")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "admin_key" in str(err.value) and "too-short-but-secret" not in str(err.value)
    monkeypatch.setenv("WRM_ADMIN_KEY", SECRET)
    monkeypatch.setenv("WRM_AUTH", "sometimes")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "auth" in str(err.value) and SECRET not in str(err.value)
    monkeypatch.setenv("WRM_AUTH", "required")
    settings = load_settings()
    assert settings.auth == "required" and SECRET not in repr(settings)


def test_with_auth_off_keys_are_still_made_only_with_a_key(warehouse: Warehouse) -> None:
    """A key made by whoever reaches a loopback port would outlive a switch to auth required."""
    import httpx

    srv = start_server(warehouse, admin_key=SECRET)
    try:
        url = f"http://{srv.http_address}/v1/keys"
        body = {"tenant": "acme", "role": "admin", "name": "sneaky"}
        refused = httpx.post(url, json=body)
        assert refused.status_code == 401 and "admin key" in refused.json()["detail"]
        assert httpx.get(f"http://{srv.http_address}/v1/runs").status_code == 200  # reads stay open
        made = httpx.post(url, json=body, headers={"Authorization": f"Bearer {SECRET}"})
        assert made.status_code == 201, made.text
    finally:
        srv.stop()
