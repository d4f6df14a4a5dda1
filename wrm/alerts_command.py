"""`wrm alerts list|create|show|delete|history|evaluate`: alert rules through the running server's
/v1/alerts (rules are evaluated by the server, so there is nothing to do without one). The key
in WRM_KEY is sent as `Authorization: Bearer` (creating, deleting and evaluating need an admin
key once the server requires keys); `--tenant` names the tenant where the key allows (auth off,
or the platform key). `--json` prints the API's answer as it is."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from analytics.alerts.rules import METRIC_NAMES
from wrm.reading import auth_headers, server_url
from wrm.settings import Settings

_COLUMNS = ("rule_id", "name", "metric", "state", "value", "samples", "threshold", "enabled")


class _Refused(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_parser(sub: Any, common: Any) -> None:
    alerts = sub.add_parser("alerts", help="alert rules of a running server: list, create, show, …")
    common(alerts)
    alerts.add_argument("--http", metavar="HOST:PORT", help="where the running server answers")
    alerts.add_argument("--tenant", help="the tenant to act on (auth off, or the platform admin key)")
    actions = alerts.add_subparsers(dest="alerts_action", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="print the API's JSON answer")
        return p

    action("list", "the tenant's rules with their state")
    create = action("create", "make a rule")
    create.add_argument("--name", required=True)
    create.add_argument("--metric", required=True, choices=METRIC_NAMES)
    create.add_argument("--threshold", type=float, help="required but for waiting_human (0) and no_runs (1)")
    create.add_argument("--comparison", choices=("below", "above"), help="default: the metric's")
    create.add_argument("--recover-threshold", type=float, help="resolve only once back past this")
    create.add_argument("--window-s", type=int, help="runs started this many seconds ago (3600)")
    create.add_argument("--wait-s", type=int, help="waiting_human: waiting longer than this (3600)")
    create.add_argument("--min-samples", type=int, help="finished runs a rate needs for a verdict (10)")
    create.add_argument("--interval-s", type=int, help="evaluate every this many seconds (60)")
    create.add_argument("--workflow", default="", help="scope: only this workflow")
    create.add_argument("--version", default="", help="scope: only this workflow version")
    create.add_argument("--environment", default="", help="scope: only this environment")
    create.add_argument("--disabled", action="store_true", help="make it disabled")
    for name, text in (
        ("show", "a rule, its state and last evaluation"),
        ("delete", "delete a rule"),
        ("history", "a rule's transitions, newest first"),
        ("evaluate", "evaluate a rule now"),
    ):
        action(name, text).add_argument("rule_id")


def run(settings: Settings, args: argparse.Namespace) -> int:
    url = server_url(settings)
    headers = {**auth_headers(settings), "Content-Type": "application/json"}
    if args.tenant:
        headers["X-WRM-Tenant"] = args.tenant
    what = args.alerts_action
    try:
        body = _request(url, headers, *_call(args))
    except _Refused as exc:
        print(f"wrm alerts {what}: {exc}", file=sys.stderr)
        return exc.code
    if what == "delete":  # 204, no body
        print(f"wrm alerts: deleted {args.rule_id}", file=sys.stderr)
        return 0
    if args.json:
        print(json.dumps(body, indent=2))
    elif what == "list":
        _table([_row(a) for a in body["alerts"]])
    elif what == "history":
        for t in body["transitions"]:
            print(f"{t['at']}  {t['state']:<8}  value {t['value']} over {t['samples']} runs")
    elif what == "evaluate":
        change = f" ({body['transition']})" if body["transition"] else ""
        note = f"; {body['note']}" if body["note"] else ""
        value = "-" if body["value"] is None else f"{body['value']:g}"
        print(f"{body['rule_id']}: {body['state']}{change}, value {value} over {body['samples']} runs{note}")
    else:
        for key, value in body.items():
            print(f"{key}: {value}")
    return 0


def _call(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """The method, path and body for the action."""
    what = args.alerts_action
    if what == "list":
        return "GET", "/v1/alerts", None
    if what == "create":
        body: dict[str, Any] = {"name": args.name, "metric": args.metric, "enabled": not args.disabled}
        for name in (
            "threshold", "comparison", "recover_threshold", "window_s", "wait_s", "min_samples", "interval_s",
            "workflow", "version", "environment",
        ):  # fmt: skip
            value = getattr(args, name)
            if value is not None and value != "":
                body[name] = value
        return "POST", "/v1/alerts", body
    path = f"/v1/alerts/{urllib.parse.quote(args.rule_id, safe='')}"
    method, suffix = {
        "show": ("GET", ""),
        "delete": ("DELETE", ""),
        "history": ("GET", "/history"),
        "evaluate": ("POST", "/evaluate"),
    }[what]
    return method, path + suffix, None


def _request(url: str, headers: dict[str, str], method: str, path: str, body: dict[str, Any] | None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url + path, data, headers, method=method), timeout=30
        ) as r:
            raw = r.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        hint = " (set WRM_KEY to a key allowed to do this)" if exc.code in (401, 403) else ""
        raise _Refused(
            f"the server refused: {exc.code} {detail}{hint}", 2 if exc.code == 422 else 1
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Refused(
            f"no server answers at {url} ({reason}); alert rules live in a running `wrm serve`: start one, "
            "or point --http (WRM_HTTP) at it",
            1,
        ) from None


def _row(a: dict[str, Any]) -> tuple[str, ...]:
    shown = {
        **a,
        "value": "-" if a["value"] is None else f"{a['value']:g}",
        "enabled": "yes" if a["enabled"] else "no",
    }
    shown["threshold"] = f"{a['comparison']} {a['threshold']:g}"
    return tuple(str(shown[c]) for c in _COLUMNS)


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(_COLUMNS, *rows, strict=False)]
    for row in (_COLUMNS, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
