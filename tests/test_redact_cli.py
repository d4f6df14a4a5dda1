"""`wrm redact`: through the running server (POST /v1/redact with WRM_KEY) and on the warehouse
directly (the settings, the policies set through the API and the hashing secret stored there),
byte for byte the same, in text mode (all of stdin one text: a secret over several lines goes
whole) and JSON-lines mode. Both run in this process: the direct one opens this process's own
engine at a port where no server answers."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import module_server
from warehouse import Warehouse
from wrm.cli import main
from wrm.server import WrmServer

ADMIN_KEY = "platform-admin-" + "x" * 40
GLOBAL_POLICY = {"detectors": {"email": "mask"}}  # the server's settings, and the command's
TENANT_POLICIES = {"globex": {"detectors": {"email": "off"}}}
API_POLICY = {"rules": [{"name": "order_id", "pattern": "ORD-[0-9]{6}", "action": "hash"}]}
CARD = "4111-1111-1111-1111"
TEXT = (
    f"refund ORD-123456 for jane@example.com, card {CARD}\n"
    "nothing to see here\n"
    "\n"
    "Authorization: Bearer abc.def-123456789 and ORD-123456 again\r\n"
    "no newline at the end ünïcødé ORD-654321"
).encode()
JSON_LINES = (
    '{"user.email": "jane@example.com", "password": "hunter2", "note": "ORD-123456", "n": 3}\n'
    f'"plain text with card {CARD}"\n'
    "\n"
    '[1, "bob@example.com", {"api_key": "k"}]\n'
    "42\n"
    'null\n{"nested": {"token": "t0k3n", "deep": ["ORD-123456"]}}\n'
).encode()
PEM_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "LOLxS6tWA1iyvvL5rGbZbLvrvxVOoBBPsZzA0ZMm5ZmaCEO/AoGBAOFUWfdDp2Fb",
)
PEM = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *PEM_BODY, "-----END RSA PRIVATE KEY-----"])


@dataclass
class Ran:
    returncode: int
    stdout: bytes
    stderr: str


@pytest.fixture
def wrm_here(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """`wrm` in this process, with `stdin` as its standard input; stdout kept as bytes."""

    def run(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> Ran:
        for name in [k for k in os.environ if k.startswith("WRM_")]:
            monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        out, err = io.BytesIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, write_through=True))
        monkeypatch.setattr(sys, "stderr", err)
        code = main(list(args))
        sys.stdout.flush()
        return Ran(code, out.getvalue(), err.getvalue())

    return run


@dataclass
class Setup:
    server: WrmServer
    warehouse: Warehouse
    dsn: str
    ingest: str
    viewer: str


@pytest.fixture(scope="module")
def setup(engine_dir: Path) -> Iterator[Setup]:
    given = {"redaction": GLOBAL_POLICY, "tenant_redaction": TENANT_POLICIES}
    with module_server(engine_dir, auth="required", admin_key=ADMIN_KEY, **given) as srv:
        with httpx.Client(base_url=f"http://{srv.http_address}", timeout=30) as c:
            put = c.put(
                "/v1/tenants/acme/redaction",
                json=API_POLICY,
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
            assert put.status_code == 200, put.text
        assert srv.warehouse is not None
        yield Setup(
            srv, srv.warehouse, f"chdb://{engine_dir}", srv.create_key("acme", "ingest", "cli"),
            srv.create_key("acme", "viewer", "cli-viewer"),
        )  # fmt: skip


def _both(s: Setup, wrm_here: Callable[..., Ran], *args: str, stdin: bytes) -> tuple[Ran, Ran]:
    """The command through the server, then on the warehouse directly (the same settings)."""
    env = {
        "WRM_KEY": s.ingest,
        "WRM_REDACTION": json.dumps(GLOBAL_POLICY),
        "WRM_TENANT_REDACTION": json.dumps(TENANT_POLICIES),
    }
    served = wrm_here("redact", "--http", s.server.http_address, *args, stdin=stdin, env=env)
    direct = wrm_here(
        "redact", "--warehouse", s.dsn, "--database", s.warehouse.database, "--http", "127.0.0.1:9",
        *args, stdin=stdin, env=env,
    )  # fmt: skip
    assert served.returncode == 0 and direct.returncode == 0, (served.stderr, direct.stderr)
    assert "via the running server" in served.stderr
    assert "opened" in direct.stderr and "directly" in direct.stderr
    assert served.stderr.splitlines()[-1] == direct.stderr.splitlines()[-1]  # the same summary
    return served, direct


def test_text_through_the_server_and_directly_alike(setup: Setup, wrm_here: Callable[..., Ran]) -> None:
    served, direct = _both(setup, wrm_here, stdin=TEXT)
    assert served.stdout == direct.stdout
    lines = served.stdout.decode().split("\n")
    assert len(lines) == 5  # the text's lines, and no end of line added after the last
    assert lines[0].startswith("refund [HASH:order_id:") and "[REDACTED:email]" in lines[0]
    assert "[REDACTED:card_number]" in lines[0] and CARD not in lines[0]
    assert lines[1:3] == ["nothing to see here", ""]
    assert "[REDACTED:bearer_token]" in lines[3] and lines[3].endswith("\r")  # a CR stays the line's
    assert lines[4].startswith("no newline at the end ünïcødé [HASH:order_id:")
    digest = lines[0].split("[HASH:order_id:")[1].split("]")[0]
    assert f"[HASH:order_id:{digest}]" in lines[3]  # equal values, equal digests
    assert served.stderr.splitlines()[-1] == (
        "wrm redact: 5 line(s); redacted: bearer_token 1, card_number 1, email 1, order_id 3"
    )


def test_a_key_over_several_lines_goes_whole(setup: Setup, wrm_here: Callable[..., Ran]) -> None:
    """Stdin is one text, as an attribute value is: a PEM key's body lines are masked with it,
    not passed through one by one; the same through the server and directly."""
    prompt = f"deploy with this key:\n{PEM}\nand nothing else\n".encode()
    served, direct = _both(setup, wrm_here, stdin=prompt)
    assert served.stdout == direct.stdout
    assert served.stdout == b"deploy with this key:\n[REDACTED:private_key]\nand nothing else\n"
    assert served.stderr.splitlines()[-1] == "wrm redact: 7 line(s); redacted: private_key 1"


def test_a_json_text_over_several_lines_is_one_text(setup: Setup, wrm_here: Callable[..., Ran]) -> None:
    """A pretty-printed JSON document (text mode, not --json): the key inside a string, and a
    raw one pasted into a field of its own over several lines, each masked whole."""
    document = json.dumps({"private_key": PEM, "card": CARD, "note": "ORD-123456", "n": 3}, indent=2)
    raw = document.replace('"n": 3', '"pasted": ' + PEM)  # not JSON any more: text all the same
    served, direct = _both(setup, wrm_here, stdin=raw.encode() + b"\n")
    assert served.stdout == direct.stdout
    out = served.stdout.decode()
    assert out.endswith("\n") and not out.endswith("\n\n")
    for part in (*PEM_BODY, "PRIVATE KEY", CARD, "ORD-123456"):
        assert part not in out, part
    assert '"private_key": "[REDACTED:private_key]"' in out  # the escaped key, up to its END line
    assert '"pasted": [REDACTED:private_key]\n}' in out
    assert '"card": "[REDACTED:card_number]"' in out and '"note": "[HASH:order_id:' in out
    assert out.count("\n") == document.count("\n") + 1  # the raw key's lines went with it


def test_a_text_over_the_servers_bound_is_refused_not_split(
    setup: Setup, wrm_here: Callable[..., Ran]
) -> None:
    """Through the server a text goes in one request: one over 1 MiB is refused, saying what to
    do, before anything is written; directly there is no bound and the key still goes whole."""
    big = ("x" * 99 + "\n") * 10_500 + PEM + "\n"
    env = {"WRM_KEY": setup.ingest}
    served = wrm_here("redact", "--http", setup.server.http_address, stdin=big.encode(), env=env)
    assert served.returncode == 2 and served.stdout == b""
    assert "over the server's bound" in served.stderr and "split it" in served.stderr
    assert "directly" in served.stderr and PEM_BODY[0] not in served.stderr
    direct = wrm_here(
        "redact", "--warehouse", setup.dsn, "--database", setup.warehouse.database, "--http", "127.0.0.1:9",
        stdin=big.encode(), env=env,
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.endswith(b"x\n[REDACTED:private_key]\n") and len(direct.stdout) == 10_500 * 100 + 23


def test_json_lines_through_the_server_and_directly_alike(setup: Setup, wrm_here: Callable[..., Ran]) -> None:
    served, direct = _both(setup, wrm_here, "--json", stdin=JSON_LINES)
    assert served.stdout == direct.stdout
    out = served.stdout.decode().split("\n")
    assert out[-1] == "" and out[2] == ""  # a blank line stays blank
    first = json.loads(out[0])
    assert first["user.email"] == "[REDACTED:email]" and first["password"] == "[REDACTED:credential_key]"
    assert first["note"].startswith("[HASH:order_id:") and first["n"] == 3
    assert json.loads(out[1]) == "plain text with card [REDACTED:card_number]"
    assert json.loads(out[3]) == [1, "[REDACTED:email]", {"api_key": "[REDACTED:credential_key]"}]
    assert out[4:6] == ["42", "null"]
    nested = json.loads(out[6])["nested"]
    assert nested["token"] == "[REDACTED:credential_key]" and nested["deep"][0].startswith("[HASH:order_id:")


def test_refusals(setup: Setup, wrm_here: Callable[..., Ran]) -> None:
    http = setup.server.http_address
    viewer = wrm_here("redact", "--http", http, stdin=b"x\n", env={"WRM_KEY": setup.viewer})
    assert viewer.returncode == 1 and "403" in viewer.stderr and "ingest or admin" in viewer.stderr
    assert viewer.stdout == b""
    other = wrm_here(
        "redact", "--http", http, "--tenant", "globex", stdin=b"x\n", env={"WRM_KEY": setup.ingest}
    )
    assert other.returncode == 1 and "403" in other.stderr
    bad = wrm_here(
        "redact", "--http", http, "--json", stdin=b'{"a": 1}\nnot json\n', env={"WRM_KEY": setup.ingest}
    )
    assert bad.returncode == 2 and "line 2 is not JSON" in bad.stderr and bad.stdout == b""
    tenant = wrm_here("redact", "--http", http, "--tenant", "bad tenant!", stdin=b"x\n")
    assert tenant.returncode == 2 and "not a tenant id" in tenant.stderr
    platform = wrm_here(  # the platform admin names the tenant: globex turns email off
        "redact",
        "--http",
        http,
        "--tenant",
        "globex",
        stdin=b"jane@example.com\n",
        env={"WRM_KEY": ADMIN_KEY},
    )
    assert platform.returncode == 0 and platform.stdout == b"jane@example.com\n", platform.stderr
