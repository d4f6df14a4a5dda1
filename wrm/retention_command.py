"""`wrm retention show|apply`: the retention policy the settings describe, and bringing stored
rows in line with it. Applying writes, so it opens the warehouse itself; an embedded warehouse
held by a running `wrm serve` cannot be opened, and that server applies a changed policy when
it starts."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from warehouse import Warehouse, WarehouseLocked, migrate
from warehouse.retention import TIERS, apply_retention, store_policy, stored_policy_rows
from wrm.settings import Settings


def add_parser(sub: Any, common: Any) -> None:
    ret = sub.add_parser("retention", help="show the retention policy, or apply it to stored rows")
    common(ret)
    ret.add_argument("action", choices=["show", "apply"])
    ret.add_argument("--purge", action="store_true", help="after applying, merge so expired rows go now")


def run(settings: Settings, args: argparse.Namespace) -> int:
    policy = settings.retention()
    header = f"{'tenant':<24} " + " ".join(f"{t + ' days':>14}" for t in TIERS)
    if args.action == "show":
        print("retention policy from the settings:")
        print(header)
        for row in policy.rows():
            days = (row.spans_days, row.steps_days, row.runs_days, row.summaries_days)
            print(f"{row.tenant:<24} " + " ".join(f"{d:>14}" for d in days))
    try:
        wh = Warehouse.open(settings.warehouse, settings.database)
    except WarehouseLocked as exc:
        if args.action == "show":
            return 0
        print(
            f"wrm retention: {exc}. Restart `wrm serve` with the new settings instead: it applies a "
            "changed policy at start-up.",
            file=sys.stderr,
        )
        return 1
    try:
        migrate(wh)
        if args.action == "show":
            stored = stored_policy_rows(wh)
            same = "the same" if stored == policy.rows() else "different: run `wrm retention apply`"
            print(f"policy last applied to {wh.dsn.describe()} database {wh.database}: {same}")
            return 0
        changes = apply_retention(wh, policy, wait=True, purge=args.purge)
        store_policy(wh, policy)
    finally:
        wh.close()
    if not changes:
        print("wrm retention: every stored row already follows the policy")
    for c in changes:
        print(f"wrm retention: {c.table}: {c.rows} rows of {c.tenants} now kept {c.days} days")
    if changes and not args.purge:
        print("wrm retention: rows now past their retention are removed at the next merge (or use --purge)")
    return 0
