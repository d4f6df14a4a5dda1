"""The SQL port asks for a key as ClickHouse asks for a password: without one, or with an unknown
or revoked one, a statement gets 401 and Code 516 (AUTHENTICATION_FAILED); a key whose role may
not read (ingest) gets 403 and Code 497. The key is never echoed; /ping stays open."""

from __future__ import annotations

import base64
import gzip
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from access.keys import key_id_of
from analytics.sql.tenant_space import tenant_database
from tests.conftest import module_server
from tests.otlp import make_span, request_of, send_raw
from tests.sql_http import Answer, bearer, post
from wrm.server import WrmServer

ADMIN = "y" * 40
UNKNOWN = "wrm_0123456789ab_" + "Q" * 43  # well-formed, never issued


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    with module_server(engine_dir, auth="required", admin_key=ADMIN) as srv:
        yield srv  # module_server drops the tenant databases with the test's own


@pytest.fixture(scope="module")
def viewer(server: WrmServer) -> str:
    return server.create_key("t1", "viewer", "reader")


def _basic(key: str, user: str = "default") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


def _unauthenticated(answer: Answer, what: str, key: str = "") -> None:
    assert (answer.status, answer.code) == (401, "516"), f"{what}: {answer}"
    assert answer.body.startswith("Code: 516. DB::Exception: ") and "(AUTHENTICATION_FAILED)" in answer.body
    assert answer.headers.get("www-authenticate") == 'Basic realm="wrm"', answer.headers
    if key:
        assert key not in answer.body and all(key not in v for v in answer.headers.values()), what


def test_a_statement_without_a_key_is_refused(server: WrmServer) -> None:
    _unauthenticated(post(server, "SELECT 1"), "no key")
    _unauthenticated(post(server, ""), "an empty POST")  # authentication first: nothing else is said
    _unauthenticated(post(server, "INSERT INTO spans FORMAT TSV\n\x00\x01"), "an insert")
    url = f"http://{server.http_address}/?query=" + urllib.parse.quote("SELECT 1")
    _unauthenticated(post(server, "", query="SELECT 1"), "a query in the URL")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 401


def test_unknown_malformed_and_revoked_keys_are_refused_and_never_echoed(server: WrmServer) -> None:
    for key in (UNKNOWN, "not-a-key-at-all", ADMIN + "z"):
        _unauthenticated(post(server, "SELECT 1", headers=bearer(key)), f"bearer {key[:8]}", key)
        _unauthenticated(post(server, "SELECT 1", headers=_basic(key)), f"basic {key[:8]}", key)
        _unauthenticated(post(server, "SELECT 1", password=key, user="u"), f"?password {key[:8]}", key)
    key = server.create_key("t1", "viewer", "soon revoked")
    assert post(server, "SELECT 1", headers=bearer(key)).body == "1\n"
    assert server.keys is not None and server.authenticator is not None
    record = server.keys.get(key_id_of(key) or "")
    assert record is not None
    server.authenticator.remember(server.keys.revoke(record, "test"))
    _unauthenticated(post(server, "SELECT 1", headers=bearer(key)), "revoked", key)


def test_every_way_a_clickhouse_client_sends_a_password_works(server: WrmServer, viewer: str) -> None:
    sql = "SELECT {n:UInt8} + 1"
    answers = {
        "bearer": post(server, sql, headers=bearer(viewer), param_n="1"),
        "basic auth, any user": post(server, sql, headers=_basic(viewer, "whoever"), param_n="1"),
        "X-ClickHouse-User/Key": post(
            server, sql, headers={"X-ClickHouse-User": "default", "X-ClickHouse-Key": viewer}, param_n="1"
        ),
        "?user=&password=": post(server, sql, user="default", password=viewer, param_n="1"),
    }
    for what, answer in answers.items():
        assert (answer.status, answer.body) == (200, "2\n"), f"{what}: {answer}"


def test_an_ingest_key_may_not_read(server: WrmServer) -> None:
    key = server.create_key("t1", "ingest", "sender")
    answer = post(server, "SELECT 1", headers=bearer(key))
    assert (answer.status, answer.code) == (403, "497"), answer
    assert "(ACCESS_DENIED)" in answer.body and "ingest" in answer.body and key not in answer.body


def test_ping_and_the_health_get_stay_open(server: WrmServer) -> None:
    for path in ("/ping", "/"):
        with urllib.request.urlopen(f"http://{server.http_address}{path}") as resp:
            assert resp.read() == b"Ok.\n"


def _client(server: WrmServer, **kwargs: Any) -> Any:
    host, port = server.http_address.rsplit(":", 1)
    return clickhouse_connect.get_client(host=host, port=int(port), **kwargs)


def test_clickhouse_connect_authenticates_with_the_key_as_password(server: WrmServer, viewer: str) -> None:
    with pytest.raises(DatabaseError, match="516"):
        _client(server)
    with pytest.raises(DatabaseError, match="516"):
        _client(server, username="default", password=UNKNOWN)
    client = _client(server, username="anyone", password=viewer)
    assert client.command("SELECT 1 + 1") == 2
    assert client.query("SELECT count() FROM runs").result_rows == [(0,)]


def test_the_platform_key_reads_as_before(server: WrmServer) -> None:
    client = _client(server, username="admin", password=ADMIN)
    assert client.command("SELECT count() > 0 FROM system.tables") == 1
    assert server.warehouse is not None
    assert client.command(f"SELECT count() FROM {server.warehouse.database}.api_keys") >= 1


def test_auth_off_reads_everything_without_a_key(engine_dir: Path) -> None:
    """The default test server: loopback only, auth off. No key reads as before; a tenant key
    presented anyway is still that tenant's."""
    with module_server(engine_dir) as srv:
        assert srv.authenticator is not None and not srv.authenticator.required
        send_raw(srv.otlp_address, request_of([make_span("open")]))
        assert post(srv, "SELECT count() FROM spans").body == "1\n"
        assert post(srv, "SELECT count() > 0 FROM system.tables").body == "1\n"
        key = srv.create_key("someone-else", "viewer", "v")
        assert post(srv, "SELECT count() FROM spans", headers=bearer(key)).body == "0\n"
        _unauthenticated(post(srv, "SELECT 1", headers=bearer(UNKNOWN)), "a bad key with auth off", UNKNOWN)
        assert srv.warehouse is not None
        srv.warehouse.command(
            f"DROP DATABASE `{tenant_database(srv.warehouse.database, 'someone-else')}` SYNC"
        )


def test_a_strangers_body_is_never_inflated_and_a_bomb_stops_at_the_bound(
    server: WrmServer, viewer: str
) -> None:
    """200 MiB of query in 200 KB of gzip: without a key it is refused before the body is read;
    with one, inflating stops at 16 MiB with Code 62, and the next statement runs."""
    bomb = gzip.compress(b" " * (200 * 1024 * 1024) + b"SELECT 1")
    url = f"http://{server.http_address}/"
    for key, status, code in (("", 401, "516"), (viewer, 400, "62")):
        headers = {"Content-Encoding": "gzip", **(bearer(key) if key else {})}
        request = urllib.request.Request(url, data=bomb, headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=60)
        assert (err.value.code, err.value.headers["X-ClickHouse-Exception-Code"]) == (status, code)
    assert post(server, "SELECT 1", headers=bearer(viewer)).body == "1\n"


def test_a_keyed_body_over_the_bound_is_refused_unread(server: WrmServer, viewer: str) -> None:
    """A plain body is bounded like an inflated one: a Content-Length past 16 MiB is refused
    before a byte of the body is sent (the client here sends none and still gets its answer)."""
    host, port = server.http_address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("POST", "/")
        for name, value in {**bearer(viewer), "Content-Length": str(17 * 1024 * 1024)}.items():
            conn.putheader(name, value)
        conn.endheaders()
        answer = conn.getresponse()
        assert (answer.status, answer.getheader("X-ClickHouse-Exception-Code")) == (400, "62")
        assert "too large" in answer.read().decode()
    finally:
        conn.close()


def test_host_functions_are_refused_to_a_tenant_key_and_format_null_works(
    server: WrmServer, viewer: str
) -> None:
    for sql in ("SELECT getServerSetting('path')", "SELECT filesystemAvailable()", "SELECT hostName()"):
        answer = post(server, sql, headers=bearer(viewer))
        assert (answer.status, answer.code) == (403, "497"), (sql, answer)
    assert post(server, "SELECT 1 FORMAT Null", headers=bearer(viewer)).status == 200


def test_one_tenants_slow_statements_leave_room_for_others(server: WrmServer, viewer: str) -> None:
    """Tenant t1 fires more sleeping statements than its share: the ones past it get 429 at
    once, and tenant t2's statement runs meanwhile (with two slots, t1 holds at most one)."""
    other = server.create_key("t2", "viewer", "other-reader")
    slow = "SELECT sum(sleepEachRow(0.5)) FROM numbers(6)"  # 3 s, holding a slot, no CPU
    with ThreadPoolExecutor(8) as pool:
        floods = [pool.submit(post, server, slow, 60, bearer(viewer)) for _ in range(7)]
        time.sleep(0.5)
        started = time.monotonic()
        answer = post(server, "SELECT 1", 30, bearer(other))
        waited = time.monotonic() - started
        codes = sorted(f.result().status for f in floods)
    assert answer.status == 200 and answer.body == "1\n", answer
    assert waited < 2.5, f"t2 waited {waited:.1f} s behind t1's statements"
    assert 429 in codes and 200 in codes, codes
