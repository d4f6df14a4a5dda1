"""Model prices: the shipped table, `prices` and `tenant_prices` over it, cached input tokens, and
the unpriced models a report names, through a real server fed by the OpenTelemetry SDK."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import set_span_in_context

from analytics.prices import (
    GLOBAL,
    SHIPPED,
    TENANT,
    ModelPrice,
    compile_rules,
    glob_regex,
    load_shipped,
    resolve,
    store_prices,
)
from analytics.sql.tenant_space import TenantSpaces, tenant_database
from tests.conftest import module_server, settle, start_server
from tests.otlp import flush, sdk_provider
from warehouse import Warehouse
from wrm.server import WrmServer

TABLE = tomllib.loads(resources.files("analytics").joinpath("default_prices.toml").read_text())
SHIPPED_ROWS = {row["name"]: row for row in TABLE["model"]}
WORKFLOW = "priced-wf"
QUOTED = 'it\'s "q" \\ model'
PRICES = {
    "gpt-4o-mini*": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0},
    "gpt-4o.*": {"input_usd_per_mtok": 3.0, "output_usd_per_mtok": 3.0},
    QUOTED: {"input_usd_per_mtok": 4.0, "output_usd_per_mtok": 4.0},
    "é?an*": {"input_usd_per_mtok": 5.0, "output_usd_per_mtok": 5.0},
}
TENANT_PRICES = {
    "acme": {
        "gpt-4o-mini*": {"input_usd_per_mtok": 7.0, "output_usd_per_mtok": 7.0},  # a pattern, written first
        "gpt-4o-mini-2024-07-18": {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 0.25},
    }
}
M = 1_000_000


def shipped_cost(name: str, tokens_in: int, tokens_out: int, cached: int = 0) -> float:
    row = SHIPPED_ROWS[name]
    cached_price = row.get("cached_input", row["input"])
    return float((tokens_in - cached) * row["input"] + cached * cached_price + tokens_out * row["output"]) / M


def price(p: dict[str, float], tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * p["input_usd_per_mtok"] + tokens_out * p["output_usd_per_mtok"]) / M


IN, OUT = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
SONNET = "claude-3-5-sonnet-20241022"
# Each run: tenant, then its LLM calls as (model, span attributes).
RUNS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "shipped": ("plain", [
        ("gpt-4o-2024-08-06", {IN: 1000, OUT: 200, "gen_ai.usage.cache_read.input_tokens": 400}),
        (SONNET, {IN: 3000, OUT: 500}),
        ("anthropic.claude-3-5-haiku-20241022-v1:0",
         {"llm.token_count.prompt": 2000, "llm.token_count.completion": 100,
          "llm.token_count.prompt_details.cache_read": 1500}),
        ("llama-3.1-70b-instruct", {IN: 500, OUT: 50}),
        ("gpt-4o", {IN: 999, OUT: 999, "wrm.cost.usd": 0.25}),
    ]),
    "global": ("plain", [("gpt-4o-mini-2024-07-18", {IN: 2000, OUT: 1000})]),
    "tenant": ("acme", [("gpt-4o-mini-2024-07-18", {IN: 2000, OUT: 1000}), (SONNET, {IN: 3000, OUT: 500})]),
    "hostile": ("plain", [
        ("gpt-4oX", {IN: 100, OUT: 10}), ("gpt-4o.beta", {IN: 100, OUT: 10}), (QUOTED, {IN: 100, OUT: 10}),
        ("ÉÜAN-7", {IN: 100, OUT: 10}),  # `?` is one character, and case folds beyond ASCII
    ]),
}  # fmt: skip


def _send(server: WrmServer) -> dict[str, str]:
    """Send every run with the SDK, one provider per tenant; returns run name → trace id (hex)."""
    traces: dict[str, str] = {}
    for tenant in ("plain", "acme"):
        provider = sdk_provider(
            server.otlp_address,
            service="pricing",
            **{"wrm.tenant.id": tenant, "deployment.environment.name": "prod"},
        )
        tracer = provider.get_tracer("tests.prices")
        for name, (owner, calls) in RUNS.items():
            if owner != tenant:
                continue
            root = tracer.start_span(WORKFLOW, attributes={"wrm.workflow.name": WORKFLOW})
            for model, attributes in calls:
                tracer.start_span(
                    "chat", context=set_span_in_context(root),
                    attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model, **attributes},
                ).end()  # fmt: skip
            root.end()
            traces[name] = format(root.get_span_context().trace_id, "032x")
        flush(provider)
        provider.shutdown()
    return traces


@pytest.fixture(scope="module")
def fed(engine_dir: Path) -> Iterator[tuple[WrmServer, dict[str, str]]]:
    with module_server(engine_dir, prices=PRICES, tenant_prices=TENANT_PRICES) as srv:
        traces = _send(srv)
        settle(srv)
        yield srv, traces


def _query(server: WrmServer, sql: str, **params: Any) -> list[dict[str, Any]]:
    assert server.warehouse is not None
    return list(server.warehouse.client.query(sql, parameters=params).named_results())


def _run_cost(server: WrmServer, tenant: str, trace: str) -> float:
    rows = _query(server, "SELECT cost_usd FROM runs WHERE tenant_id = {t:String} AND trace_id = {tr:String}",
                  t=tenant, tr=trace)  # fmt: skip
    assert len(rows) == 1, rows
    return float(rows[0]["cost_usd"])


def _step_costs(server: WrmServer, tenant: str, trace: str) -> dict[str, float]:
    sql = "SELECT model, cost_usd FROM steps WHERE tenant_id = {t:String} AND trace_id = {tr:String}"
    rows = _query(server, sql, t=tenant, tr=trace)
    return {r["model"]: r["cost_usd"] for r in rows}


def test_shipped_table_prices_hosted_models_and_cached_tokens(fed: tuple[WrmServer, dict[str, str]]) -> None:
    server, traces = fed
    costs = _step_costs(server, "plain", traces["shipped"])
    expected = {
        "gpt-4o-2024-08-06": shipped_cost("gpt-4o", 1000, 200, cached=400),
        "claude-3-5-sonnet-20241022": shipped_cost("claude-3-5-sonnet", 3000, 500),
        "anthropic.claude-3-5-haiku-20241022-v1:0": shipped_cost("claude-3-5-haiku", 2000, 100, cached=1500),
        "llama-3.1-70b-instruct": 0.0,
        "gpt-4o": 0.25,  # the cost attribute wins over any price
    }
    assert costs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert _run_cost(server, "plain", traces["shipped"]) == pytest.approx(sum(expected.values()), rel=1e-12)
    cached = _query(server, "SELECT model, cached_input_tokens FROM priced_span_facts "
                    "WHERE tenant_id = 'plain' AND trace_id = {tr:String} AND cached_input_tokens > 0",
                    tr=traces["shipped"])  # fmt: skip
    assert {(r["model"], r["cached_input_tokens"]) for r in cached} == {
        ("gpt-4o-2024-08-06", 400),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", 1500),
    }


def test_tenant_beats_global_beats_shipped(fed: tuple[WrmServer, dict[str, str]]) -> None:
    server, traces = fed
    mini = "gpt-4o-mini-2024-07-18"
    assert _step_costs(server, "plain", traces["global"]) == {mini: price(PRICES["gpt-4o-mini*"], 2000, 1000)}
    acme = _step_costs(server, "acme", traces["tenant"])
    assert acme == {  # acme's exact name beats its own pattern written before it
        mini: price(TENANT_PRICES["acme"][mini], 2000, 1000),
        "claude-3-5-sonnet-20241022": shipped_cost("claude-3-5-sonnet", 3000, 500),
    }


def test_keys_are_literal_globs_and_quotes_are_data(fed: tuple[WrmServer, dict[str, str]]) -> None:
    server, traces = fed
    assert _step_costs(server, "plain", traces["hostile"]) == {
        "gpt-4oX": 0.0,  # `.` in `gpt-4o.*` is a dot, not any character
        "gpt-4o.beta": price(PRICES["gpt-4o.*"], 100, 10),
        QUOTED: price(PRICES[QUOTED], 100, 10),
        "ÉÜAN-7": price(PRICES["é?an*"], 100, 10),
    }


def test_unpriced_models_names_the_models_without_a_price(fed: tuple[WrmServer, dict[str, str]]) -> None:
    server, _ = fed
    today = datetime.now(UTC).date()
    window = {"w": WORKFLOW, "s": today - timedelta(days=1), "u": today + timedelta(days=1)}
    sql = (
        "SELECT * FROM unpriced_models(tenant_id = {t:String}, workflow = {w:String}, "
        "environment = {e:String}, since = {s:Date}, until = {u:Date})"
    )
    rows = _query(server, sql, t="plain", e="", **window)
    assert [(r["model"], r["steps"], r["runs"], r["unpriced_runs"], r["scope_runs"]) for r in rows] == [
        ("gpt-4oX", 1, 1, 2, 3),
        ("llama-3.1-70b-instruct", 1, 1, 2, 3),
    ]
    assert _query(server, sql, t="plain", e="staging", **window) == []
    assert _query(server, sql, t="acme", e="prod", **window) == []  # every acme model has a price
    # A tenant's SQL user calls it in the tenant's own database, for its own rows only: a
    # tenant_id passed there does not reach the view (the wrapper fixes it).
    assert server.warehouse is not None
    wh = server.warehouse
    TenantSpaces(wh.client, wh.database).ensure("acme")
    own = f"`{tenant_database(wh.database, 'acme')}`.unpriced_models"
    assert (
        _query(
            server,
            sql.replace("tenant_id = {t:String}, ", "").replace("unpriced_models", own),
            e="",
            **window,
        )
        == []
    )
    try:
        forged = _query(server, sql.replace("unpriced_models", own), t="plain", e="", **window)
    except Exception:  # refused outright is as good as ignored
        forged = []
    assert forged == []


def test_default_prices_off_and_a_new_generation_replaces_the_old(warehouse: Warehouse) -> None:
    server = start_server(
        warehouse, default_prices=False, prices={"x*": {"input_usd_per_mtok": 1, "output_usd_per_mtok": 1}}
    )
    try:
        assert warehouse.rows("SELECT patterns FROM price_rules_current") == [(["x*"],)]
        store_prices(warehouse, {}, {}, default_prices=True)
        assert warehouse.rows("SELECT count(DISTINCT generation) FROM price_rules") == [(1,)]
        assert warehouse.rows("SELECT length(patterns) FROM price_rules_current") == [(len(TABLE["model"]),)]
        store_prices(warehouse, {}, {}, default_prices=False)
        assert warehouse.rows("SELECT count() FROM price_rules") == [(0,)]
    finally:
        server.stop()


# Pure: the compiled rules.

P = ModelPrice(input_usd_per_mtok=1, output_usd_per_mtok=2)


@pytest.mark.parametrize(
    ("model", "shipped"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"), ("GPT-4o", "gpt-4o"), ("azure/gpt-4o", "gpt-4o"),
        ("openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini"), ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("o3-mini", "o3-mini"), ("gpt-35-turbo", "gpt-3.5-turbo"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"), ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"), ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("gemini-1.5-pro-002", "gemini-1.5-pro"), ("mistral-large-latest", "mistral-large"),
        ("eu.amazon.nova-pro-v1:0", "amazon.nova-pro"),
        ("meta.llama3-70b-instruct-v1:0", "meta.llama3-70b-instruct"),
        ("llama-3.1-70b-instruct", None), ("mixtral-8x7b", None), ("gpt-4o-audio-preview", None),
        ("xgpt-4o", None), ("gpt-4o-2024", None),
    ],
)  # fmt: skip
def test_shipped_patterns(model: str, shipped: str | None) -> None:
    rule = resolve(load_shipped().rules, "t", model)
    assert (rule.pattern if rule else None) == shipped


def test_globs_are_literal_but_for_star_and_question_mark() -> None:
    rules = compile_rules(
        {"a+b": P, "gpt-4o.*": P, "x?z": P, "(q|r)[s]": P, "é*": P, "ü?x": P}, {}, default_prices=False
    )
    names = ["a+b", "aab", "gpt-4o.x", "gpt-4oX", "xyz", "XYZ", "xz", "(q|r)[s]", "q", "élan", "e"]
    names += ["Üßx", "üx"]
    found = {m: (r.pattern if (r := resolve(rules, "t", m)) else None) for m in names}
    assert found == {
        "a+b": "a+b", "aab": None, "gpt-4o.x": "gpt-4o.*", "gpt-4oX": None, "xyz": "x?z", "XYZ": "x?z",
        "xz": None, "(q|r)[s]": "(q|r)[s]", "q": None, "élan": "é*", "e": None,
        "Üßx": "ü?x", "üx": None,
    }  # fmt: skip
    with pytest.raises(ValueError, match="longer than"):
        glob_regex("a" * 300)


def test_precedence_tenant_then_global_then_shipped_exact_before_pattern() -> None:
    cheap = ModelPrice(input_usd_per_mtok=0.1, output_usd_per_mtok=0.1, cached_input_usd_per_mtok=0.01)
    rules = compile_rules({"gpt-4o*": P, "gpt-4o-2024-08-06": cheap}, {"acme": {"gpt-*": cheap}})
    assert [(r.level, r.pattern) for r in rules[:4]] == [
        (TENANT, "gpt-*"), (GLOBAL, "gpt-4o-2024-08-06"), (GLOBAL, "gpt-4o*"), (SHIPPED, "gpt-4o-mini")
    ]  # fmt: skip
    assert resolve(rules, "acme", "gpt-4o-2024-08-06").pattern == "gpt-*"  # type: ignore[union-attr]
    assert resolve(rules, "other", "gpt-4o-2024-08-06").pattern == "gpt-4o-2024-08-06"  # type: ignore[union-attr]
    assert resolve(rules, "other", "gpt-4o-2024-11-20").pattern == "gpt-4o*"  # type: ignore[union-attr]
    assert resolve(rules, "other", "claude-3-haiku").level == SHIPPED  # type: ignore[union-attr]
    assert rules[0].cached_input_usd_per_mtok == 0.01 and rules[2].cached_input_usd_per_mtok == 1.0
    assert resolve(rules, "acme", "") is None


def test_shipped_table_is_dated_and_sourced() -> None:
    table = load_shipped()
    assert datetime.strptime(table.as_of, "%Y-%m-%d").year >= 2025 and table.sources
    assert all(s.startswith("https://") for s in table.sources)
    assert len({r.pattern for r in table.rules}) == len(table.rules)
    for row in table.rows:
        assert 0 <= row.get("cached_input", row["input"]) <= row["input"] and row["output"] >= 0
    # models out before as_of are in, each under its own row (not a broader one)
    rules = compile_rules({}, {})
    for model, shipped in [
        ("gpt-5.1", "gpt-5.1"),
        ("gpt-5.1-2025-11-13", "gpt-5.1"),
        ("gpt-5", "gpt-5"),
        ("gemini-3-pro-preview", "gemini-3-pro"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
    ]:
        found = resolve(rules, "t", model)
        assert found is not None and found.pattern == shipped, (model, found)
