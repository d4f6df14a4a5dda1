"""`wrm keys create|list|revoke`: manage API keys through the running server's /v1/keys (with
an admin key in WRM_KEY), or on the warehouse directly when no server runs — the way to make the
first key of a server that requires one. Says on stderr which it did. A new key is the only
thing written to stdout, so `KEY=$(wrm keys create …)` captures it. A name the tenant's redaction
rules would change is refused either way (the server answers 422; directly, the policies are the
settings' and those stored in the warehouse, as `wrm redact` reads them)."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from access import Role
from access import audit as audit_log
from access.store import KeyRecord, KeyStore
from analytics.api.keys_api import name_problem
from redaction.policy import PolicyError
from warehouse import Warehouse, migrate
from wrm.reading import NoWarehouse, auth_headers, opened_directly, server_answers, server_url
from wrm.redact_command import policy_book
from wrm.settings import Settings

DIRECT_ACTOR = audit_log.Actor("", "wrm keys (warehouse opened directly)")


def add_parser(sub: Any, common: Any) -> None:
    keys = sub.add_parser("keys", help="create, list or revoke API keys")
    common(keys)
    keys.add_argument("--http", metavar="HOST:PORT", help="where to look for a running server")
    actions = keys.add_subparsers(dest="keys_action", required=True)
    create = actions.add_parser("create", help="make a key; prints it once, on stdout")
    create.add_argument("--tenant", help="the key's tenant (a tenant admin's own by default)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", required=True, help="who or what uses it, e.g. ci-exporter")
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")


def run(settings: Settings, args: argparse.Namespace) -> int:
    url = server_url(settings)
    if server_answers(url):
        print(f"wrm keys: via the running server at {url}", file=sys.stderr)
        return _via_server(settings, url, args)
    with opened_directly(settings, url, "keys") as wh:
        migrate(wh)  # a fresh warehouse gets its api_keys table
        return _direct(settings, KeyStore(wh), wh, args)


def _direct(settings: Settings, store: KeyStore, wh: Warehouse, args: argparse.Namespace) -> int:
    if args.keys_action == "create":
        if not args.tenant:
            print("wrm keys create: --tenant is required on the warehouse directly", file=sys.stderr)
            return 2
        try:
            problem = name_problem(policy_book(settings, wh), args.tenant, args.name)
        except PolicyError as exc:
            print(f"wrm keys create: {exc}", file=sys.stderr)
            return 1
        if problem:
            print(f"wrm keys create: --name {problem}", file=sys.stderr)
            return 2
        try:
            record, key = store.create(args.tenant, Role(args.role), args.name, DIRECT_ACTOR.name)
        except ValueError as exc:
            print(f"wrm keys create: {exc}", file=sys.stderr)
            return 2
        audit_log.record(
            wh, args.tenant, DIRECT_ACTOR, "key.create", record.key_id, name=args.name, role=args.role
        )
        _created(record.key_id, record.tenant, record.role.value, record.name, key)
        return 0
    if args.keys_action == "list":
        _table([_row(r) for r in store.all(args.tenant)])
        return 0
    found = store.get(args.key_id)
    if found is None:
        print(f"wrm keys revoke: no key {args.key_id!r}", file=sys.stderr)
        return 1
    store.revoke(found, DIRECT_ACTOR.name)
    if found.active:
        audit_log.record(wh, found.tenant, DIRECT_ACTOR, "key.revoke", found.key_id, name=found.name)
    print(f"wrm keys: revoked {found.key_id} ({found.name}, tenant {found.tenant})", file=sys.stderr)
    return 0


def _via_server(settings: Settings, url: str, args: argparse.Namespace) -> int:
    if args.keys_action == "create":
        body = {"role": args.role, "name": args.name, **({"tenant": args.tenant} if args.tenant else {})}
        made = _call(settings, "POST", f"{url}/v1/keys", body)
        _created(made["id"], made["tenant"], made["role"], made["name"], made["key"])
    elif args.keys_action == "list":
        query = f"?{urllib.parse.urlencode({'tenant': args.tenant})}" if args.tenant else ""
        _table([_row_json(k) for k in _call(settings, "GET", f"{url}/v1/keys{query}")["keys"]])
    else:
        gone = _call(settings, "DELETE", f"{url}/v1/keys/{urllib.parse.quote(args.key_id, safe='')}")
        print(f"wrm keys: revoked {gone['id']} ({gone['name']}, tenant {gone['tenant']})", file=sys.stderr)
    return 0


def _call(settings: Settings, method: str, url: str, body: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**auth_headers(settings), "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data, headers, method=method), timeout=30
        ) as r:
            return json.load(r)
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        hint = " (set WRM_KEY to an admin key)" if exc.code in (401, 403) else ""
        raise NoWarehouse(f"the server refused: {exc.code} {detail}{hint}") from None


def _created(key_id: str, tenant: str, role: str, name: str, key: str) -> None:
    print(f"wrm keys: created {key_id} ({name}, role {role}, tenant {tenant}); shown once:", file=sys.stderr)
    print(key, flush=True)


def _row(r: KeyRecord) -> tuple[str, ...]:
    used = r.last_used_at.isoformat(timespec="seconds") if r.last_used_at else "never"
    state = "active" if r.active else "revoked"
    return (r.key_id, r.tenant, r.role.value, r.name, state, r.created_at.isoformat(timespec="seconds"), used)


def _row_json(k: dict[str, Any]) -> tuple[str, ...]:
    state = "active" if k["active"] else "revoked"
    return (
        k["id"],
        k["tenant"],
        k["role"],
        k["name"],
        state,
        k["created_at"][:19],
        (k["last_used_at"] or "never")[:19],
    )


def _table(rows: list[tuple[str, ...]]) -> None:
    head = ("id", "tenant", "role", "name", "state", "created", "last used")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
