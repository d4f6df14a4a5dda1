"""`wrm redact`: clean text or attributes before they go to an LLM, with exactly the rules WRM
stores spans under. Reads stdin and writes it redacted to stdout; a summary of what was redacted
(rule names and counts) goes to stderr.

    wrm redact < prompt.txt                  all of stdin is one text, as one attribute value
                                             is: a secret over several lines (a PEM key) goes whole
    wrm redact --json < items.jsonl          each line a JSON value: a string is text, an object
                                             a mapping of attributes (arrays: each element)

Through the running server (`POST /v1/redact`, with setting `key`: an ingest or admin key) when
one answers, so policies set through the API apply; else on the warehouse directly (the settings,
the policies stored there, and its hashing secret). Says on stderr which it did; the output is
the same byte for byte either way. A text is never split: one over the server's bound of a
request (1 MiB) is refused there, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

from access.keys import key_id_of
from access.store import KeyStore
from analytics.api.redaction_api import MAX_ITEMS, MAX_REDACT_BYTES, unfit
from redaction.book import PolicyBook
from redaction.policy import PolicyError
from redaction.store import hashing_secret
from warehouse import Warehouse, migrate
from warehouse.tenants import TENANT_RE
from wrm.reading import NoWarehouse, auth_headers, opened_directly, server_answers, server_url
from wrm.settings import Settings

BATCH_BYTES = MAX_REDACT_BYTES // 2  # a request's items, as JSON: well under the server's bound
BLANK = object()  # a blank line of JSON lines: written back blank


class BadInput(ValueError):
    """A line of stdin that is not what the mode reads."""


def add_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("redact", help="redact stdin (text, or JSON lines with --json) as WRM stores spans")
    common(p)
    p.add_argument("--http", metavar="HOST:PORT", help="where to look for a running server")
    p.add_argument("--json", action="store_true", help="each line is a JSON value (string or object)")
    p.add_argument("--tenant", help="whose policy applies (default: the key's tenant, else `default`)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.tenant is not None and not TENANT_RE.match(args.tenant):
        print(f"wrm redact: --tenant {args.tenant[:80]!r} is not a tenant id", file=sys.stderr)
        return 2
    try:
        lines = list(_read(sys.stdin.buffer)) if args.json else [_read_text(sys.stdin.buffer)]
    except BadInput as exc:
        print(f"wrm redact: {exc}", file=sys.stderr)
        return 2
    items = [item for item in lines if item is not BLANK]
    url = server_url(settings)
    tally: Counter[str] = Counter()
    if server_answers(url):
        print(f"wrm redact: via the running server at {url}", file=sys.stderr)
        size = 0 if args.json else len(_body(items))
        if size > MAX_REDACT_BYTES:
            print(f"wrm redact: {_too_large(size)}", file=sys.stderr)
            return 2
        done = iter(_via_server(settings, url, args.tenant, items, tally))
    else:
        with opened_directly(settings, url, "redact") as wh:
            try:
                migrate(wh)  # a fresh warehouse: the tables the policies and the secret live in
                redactor = policy_book(settings, wh).redactor(args.tenant or _key_tenant(settings, wh))
            except PolicyError as exc:
                print(f"wrm redact: {exc}", file=sys.stderr)
                return 1
            done = iter([redactor.redact(item, tally) for item in items])
    out = sys.stdout.buffer
    if args.json:
        for item in lines:
            out.write(b"\n" if item is BLANK else _line(next(done)))
        count = len(lines)
    else:
        text = lines[0]
        out.write(str(next(done)).encode())
        count = text.count("\n") + (not text.endswith("\n") and bool(text))
    out.flush()
    found = ", ".join(f"{rule} {n}" for rule, n in sorted(tally.items())) or "nothing"
    print(f"wrm redact: {count} line(s); redacted: {found}", file=sys.stderr)
    return 0


def _read_text(stream: Any) -> str:
    """All of stdin, one text (bytes that are not UTF-8 read as U+FFFD): redacted whole, as an
    attribute value is, so a secret over several lines (a PEM key's body) is found whole."""
    return str(stream.read().decode("utf-8", "replace"))


def _too_large(size: int) -> str:
    return (
        f"stdin makes a request of {size} bytes, over the server's bound of {MAX_REDACT_BYTES} (1 MiB); "
        "a text is redacted whole, never split, as a secret may span a cut: split it yourself where "
        "none can (at blank lines, say) and redact each part, or redact it on the warehouse "
        "directly, where there is no bound (with no server answering at --http)"
    )


def _body(batch: list[Any]) -> bytes:
    """A POST /v1/redact body (UTF-8 as it is: the bound is on bytes)."""
    return json.dumps({"items": batch}, ensure_ascii=False, separators=(",", ":")).encode()


def _read(stream: Any) -> Iterator[Any]:
    """The items of JSON lines: each line's JSON value (BLANK for a blank line). A value the
    server would refuse (nested too deep, NaN, a lone surrogate) is refused here too, so both
    ways agree."""
    for number, raw in enumerate(stream, 1):
        text = raw.removesuffix(b"\n").decode("utf-8", "replace")
        if not text.strip():
            yield BLANK
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise BadInput(f"line {number} is not JSON ({exc}); without --json stdin is text") from None
        problem = unfit(value)
        if problem:
            raise BadInput(f"line {number} {problem}")
        yield value


def _line(item: Any) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _via_server(
    settings: Settings, url: str, tenant: str | None, items: list[Any], tally: Counter[str]
) -> list[Any]:
    headers = {**auth_headers(settings), "Content-Type": "application/json"}
    if tenant:
        headers["X-WRM-Tenant"] = tenant
    out: list[Any] = []
    for batch in _batches(items):
        data = _body(batch)
        request = urllib.request.Request(f"{url}/v1/redact", data, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
            hint = " (set WRM_KEY to an ingest or admin key)" if exc.code in (401, 403) else ""
            raise NoWarehouse(f"the server refused: {exc.code} {detail}{hint}") from None
        out += answer["items"]
        tally.update(answer["redacted"])
    return out


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    """Items in requests of at most BATCH_BYTES (one larger item goes alone: the server may refuse it)."""
    batch: list[Any] = []
    size = 0
    for item in items:
        n = len(json.dumps(item).encode()) + 1
        if batch and (size + n > BATCH_BYTES or len(batch) >= MAX_ITEMS):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def policy_book(settings: Settings, wh: Warehouse) -> PolicyBook:
    """The policies as the server would apply them, on a migrated warehouse opened directly:
    the settings' policies, those set through the API (stored in the warehouse), and the hashing
    secret the server uses. PolicyError when a settings policy cannot be compiled."""
    given = settings.redaction_secret
    secret = given.get_secret_value().encode() if given is not None else hashing_secret(wh)
    return PolicyBook(settings.redaction, settings.tenant_redaction, secret, wh)


def _key_tenant(settings: Settings, wh: Warehouse) -> str:
    """The tenant of setting `key` when it is a tenant's key this warehouse knows, else `default`."""
    key_id = key_id_of(settings.key.get_secret_value()) if settings.key else None
    record = KeyStore(wh).get(key_id) if key_id else None
    return record.tenant if record is not None else "default"
