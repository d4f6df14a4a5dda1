"""Where a read-only command gets its data: the running `wrm serve` (through its SQL endpoint),
or the warehouse opened directly when no server answers. Commands say which on stderr."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from access.keys import key_id_of
from warehouse import Warehouse, WarehouseLocked
from wrm.settings import Settings, split_hostport


class NoWarehouse(RuntimeError):
    """Neither a running server nor the warehouse itself can be reached."""


@dataclass(frozen=True)
class Source:
    client: Client
    description: str  # "via the running server at …" or "opened … directly"
    scoped: bool = False  # through a server with a key: the port shows only the key's tenant


def server_address(settings: Settings) -> tuple[str, int]:
    """Where a local server would answer, given the address it listens on."""
    host, port = split_hostport(settings.http)
    return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host), port


def server_url(settings: Settings) -> str:
    host, port = server_address(settings)
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def auth_headers(settings: Settings) -> dict[str, str]:
    """The `Authorization` header carrying setting `key` (WRM_KEY), when one is set."""
    return {"Authorization": f"Bearer {settings.key.get_secret_value()}"} if settings.key else {}


def server_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
            return bool(json.load(resp).get("status") == "ok")
    except (OSError, ValueError):
        return False


@contextmanager
def read_source(settings: Settings, command: str) -> Iterator[Source]:
    """A clickhouse-connect client for reading, and a note of where it reads from."""
    url = server_url(settings)
    if server_answers(url):
        host, port = server_address(settings)
        key = settings.key.get_secret_value() if settings.key else ""
        client = clickhouse_connect.get_client(host=host, port=port, database=settings.database, password=key)
        # a tenant's key (wrm_<id>_…) sees its tenant only; the platform admin_key sees them all
        source = Source(client, f"via the running server at {url}", scoped=key_id_of(key) is not None)
        try:
            print(f"wrm {command}: {source.description}", file=sys.stderr)
            yield source
        finally:
            client.close()
        return
    with opened_directly(settings, url, command) as wh:
        yield Source(wh.reader, f"no server at {url}; opened {wh.dsn.describe()} directly")


@contextmanager
def opened_directly(settings: Settings, url: str, command: str) -> Iterator[Warehouse]:
    """The warehouse itself, when no server answers at `url`; says so on stderr."""
    try:
        wh = Warehouse.open(settings.warehouse, settings.database)
    except WarehouseLocked as exc:
        raise NoWarehouse(f"no server answers at {url}, and {exc}") from exc
    try:
        print(f"wrm {command}: no server at {url}; opened {wh.dsn.describe()} directly", file=sys.stderr)
        yield wh
    finally:
        wh.close()
