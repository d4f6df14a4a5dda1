"""Each tenant's own database of views on the SQL port: what a tenant key's queries read.

For tenant T the database `{database}_t_{slug}` holds one view per exposed object, each
`SELECT * FROM {database}.name WHERE tenant_id = 'T'`, and wrappers of the parameterized views
that fix the tenant (a `tenant_id` parameter set to T, else the same filter on their rows). The
embedded engine refuses CREATE USER and CREATE ROW POLICY, so the filter is ours, in the views.

They are created (or replaced) on a tenant's first query in this process, on the warehouse's
writer handle, so they follow schema changes after each restart; anything else found in a
tenant's database is dropped, so it holds only what this code made.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from typing import Any

from warehouse.tenants import TENANT_RE

log = logging.getLogger(__name__)

# What a tenant key reads: views of these, each filtered to the tenant's rows.
EXPOSED = (
    "spans", "span_facts", "priced_span_facts", "steps", "steps_store", "runs", "runs_store",
    "runs_by_time", "runs_listing", "runs_daily_store", "effectiveness", "throughput",
    "throughput_hourly", "time_to_benefit", "run_actions", "run_annotations", "run_tags", "trace_runs",
    "trace_links", "lifecycle_events",
)  # fmt: skip
# Parameterized views, called as table functions. comparison_sides, window_comparison and
# comparison_window_sides are there also because the engine resolves a parameterized view called
# inside another (version_comparison's) in the caller's database.
PARAMETERIZED = (
    "effectiveness_window", "version_comparison", "comparison_sides", "window_comparison",
    "comparison_window_sides", "workflow_days", "failure_reasons", "step_retries", "unpriced_models",
)  # fmt: skip
# Objects with tenant rows that a tenant key deliberately does not read: keys and the audit trail
# (the admin API only), retention settings, redaction policies and the hashing secret, webhook
# subscriptions (their signing secrets), delivery log and cursors, alert rules and history (the
# admin API: /v1/webhooks, /v1/alerts), the price rules (settings; other tenants' overrides), the run
# assembler's and summarizer's bookkeeping and working views, and the materialized views
# (triggers; their rows are in the tables exposed).
INTERNAL = frozenset(
    {
        "api_keys", "audit_log", "retention_policies", "redaction_policies", "redaction_secrets",
        "webhooks", "webhook_attempts", "webhook_cursors", "alert_rules", "alert_history", "reports",
        "price_rules", "price_rules_current",
        "assembly_parts", "dirty_traces", "run_queue",
        "summary_dirty", "assemble_runs", "assemble_steps", "assembly_window", "cycle_parts",
        "cycle_runs", "queued_runs", "relinked_traces", "stale_runs", "summarize_runs", "trace_keys",
        "dirty_traces_mv", "spans_from_otlp_mv", "span_facts_mv", "runs_by_time_mv", "trace_links_mv",
    }
)  # fmt: skip
# Ends every view of a tenant's database. The engine pushes a query's WHERE down into the views
# it reads and on to PREWHERE, where it can run before the view's tenant filter (a condition on
# the sort key stays in WHERE for the index): a user's `toUInt8(name)` then read other tenants'
# span names in its error message, and a throwIf answered yes or no about their rows. No filter
# may move below a LIMIT (it would change which rows the LIMIT keeps), so with one the tenant
# filter always runs first, and the user's predicates see the tenant's rows only. Measured with
# chdb 4.4 on a table: PREWHERE in the view held too (but a view over a view has no PREWHERE);
# turning the pushdown settings off inside the view did not. The cost: a user's own filter no
# longer reaches the index (the tenant filter still does).
BARRIER = " LIMIT 18446744073709551615"
_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}")


def readable(what: str) -> str:
    """What a tenant key may read, for refusal messages: `what` says what it may not."""
    return (
        f"{what}. A tenant key reads its own tenant's views in its default database ({', '.join(EXPOSED)}, "
        f"{', '.join(n + '(…)' for n in PARAMETERIZED[:2])}), generators such as numbers() and values(), "
        "and constant system tables such as system.one, system.settings and system.functions"
    )


def tenant_database(database: str, tenant: str) -> str:
    """The name of `tenant`'s database: readable characters of the id and a hash of it, so that
    distinct tenants never share one (`Acme` and `acme` differ in their hash)."""
    if not TENANT_RE.match(tenant):
        raise ValueError(f"{tenant[:80]!r} is not a tenant id")
    readable = re.sub(r"[^a-z0-9]+", "_", tenant.lower()).strip("_")[:24]
    return f"{database}_t_{readable}_{hashlib.sha256(tenant.encode()).hexdigest()[:12]}"


def quote(text: str) -> str:
    """A ClickHouse string literal of `text`."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parameters(view_text: str) -> list[tuple[str, str]]:
    """The `{name:Type}` parameters a parameterized view's text takes, each once, in order."""
    seen: dict[str, str] = {}
    for name, kind in _PARAM_RE.findall(view_text):
        seen.setdefault(name, kind)
    return list(seen.items())


def wrapper_sql(database: str, target: str, name: str, tenant: str, view_text: str) -> str:
    """The statement that makes `target`.`name`, the tenant's version of parameterized view
    `database`.`name` whose text is `view_text`: other parameters are passed through."""
    params = parameters(view_text)
    given = [f"{p} = {{{p}:{kind}}}" for p, kind in params if p != "tenant_id"]
    fixed = any(p == "tenant_id" for p, _ in params)
    args = ", ".join(([f"tenant_id = {quote(tenant)}"] if fixed else []) + given)
    where = "" if fixed else f" WHERE tenant_id = {quote(tenant)}"
    source = f"`{database}`.`{name}`({args})"
    return f"CREATE OR REPLACE VIEW `{target}`.`{name}` AS SELECT * FROM {source}{where}{BARRIER}"


class TenantSpaces:
    """Makes each tenant's database once per process; `client` is a handle that may run DDL."""

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = database
        self._lock = threading.Lock()
        self._ready: set[str] = set()

    def ensure(self, tenant: str) -> str:
        """The tenant's database, made first if this process has not made it yet."""
        target = tenant_database(self.database, tenant)
        if target in self._ready:
            return target
        with self._lock:  # concurrent first queries: one makes it, the others wait for it
            if target not in self._ready:
                self._make(tenant, target)
                self._ready.add(target)
        return target

    def _make(self, tenant: str, target: str) -> None:
        rows = self.client.query(
            "SELECT name, create_table_query FROM system.tables "
            "WHERE database = {db:String} AND name IN {names:Array(String)}",
            parameters={"db": self.database, "names": [*EXPOSED, *PARAMETERIZED]},
        ).result_rows
        found = {str(r[0]): str(r[1]) for r in rows}
        self.client.command(f"CREATE DATABASE IF NOT EXISTS `{target}`")
        made: list[str] = []
        for name in EXPOSED:
            if name in found:
                self.client.command(
                    f"CREATE OR REPLACE VIEW `{target}`.`{name}` AS SELECT * FROM `{self.database}`.`{name}` "
                    f"WHERE tenant_id = {quote(tenant)}{BARRIER}"
                )
                made.append(name)
        for name in PARAMETERIZED:
            if name in found:
                self.client.command(wrapper_sql(self.database, target, name, tenant, found[name]))
                made.append(name)
        missing = sorted(set(EXPOSED + PARAMETERIZED) - set(made))
        if missing:
            log.warning("tenant views: %s missing from database %s", ", ".join(missing), self.database)
        stale = self.client.query(
            "SELECT name FROM system.tables "
            "WHERE database = {db:String} AND name NOT IN {names:Array(String)}",
            parameters={"db": target, "names": made},
        ).result_rows
        for (name,) in stale:
            self.client.command(f"DROP TABLE IF EXISTS `{target}`.`{str(name).replace('`', '``')}`")
