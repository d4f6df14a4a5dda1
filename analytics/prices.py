"""Model prices: the rules that turn tokens into cost when a span carries no cost attribute.

Rules come from three levels, first match wins: a tenant's `tenant_prices`, then the global
`prices`, then the shipped, dated table (analytics/default_prices.toml) unless `default_prices` is
off. Settings keys are an exact model name or a glob (`*`, `?`); within one level an exact name
beats a pattern, and patterns keep their written order. Everything is compiled here to anchored,
case-insensitive regular expressions in the syntax Python's re and the engine's Hyperscan share,
and stored at every start as a new generation of `price_rules`, which the views
(priced_span_facts, unpriced_models) match per distinct model name with multiMatchAllIndices.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from warehouse import Warehouse

TENANT, GLOBAL, SHIPPED = 0, 1, 2
LEVEL_NAMES = {TENANT: "tenant_prices", GLOBAL: "prices", SHIPPED: "default"}
MAX_KEY = 256
_FLAGS = "(?is)"


class ModelPrice(BaseModel):
    """Price of a model, used for spans that carry tokens but no cost attribute."""

    model_config = ConfigDict(extra="forbid")
    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    cached_input_usd_per_mtok: float | None = Field(
        None, ge=0, description="for input tokens read from a prompt cache; unset: the input price"
    )


class PriceLike(Protocol):
    """What a price entry offers (ModelPrice, or a row of the shipped table)."""

    @property
    def input_usd_per_mtok(self) -> float: ...
    @property
    def output_usd_per_mtok(self) -> float: ...
    @property
    def cached_input_usd_per_mtok(self) -> float | None: ...


@dataclass(frozen=True)
class PriceRule:
    """One compiled rule; `regex` is anchored and case-insensitive, `pattern` is as written."""

    tenant_id: str
    level: int
    pattern: str
    regex: str
    input_usd_per_mtok: float
    cached_input_usd_per_mtok: float
    output_usd_per_mtok: float


@dataclass(frozen=True)
class ShippedTable:
    """The shipped table: when its prices were read, from where, and its rules in order."""

    as_of: str
    compiled: str  # when the table was written from the prices published on as_of
    sources: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    rules: tuple[PriceRule, ...]


def is_pattern(key: str) -> bool:
    """A settings key with `*` or `?` is a glob; any other key is an exact model name."""
    return "*" in key or "?" in key


def _literal(text: str) -> str:
    # ASCII punctuation, spaces and controls as \xHH, so no character of a key is ever regex
    # syntax; letters, digits and non-ASCII characters as themselves (the engine's Hyperscan reads
    # patterns and names as UTF-8, as Python's re reads str).
    return "".join(c if c.isalnum() or not c.isascii() else f"\\x{ord(c):02x}" for c in text)


def glob_regex(key: str) -> str:
    """The anchored, case-insensitive regex of a settings key: `*` any run of characters, `?`
    one character, everything else itself (regex metacharacters included)."""
    if len(key) > MAX_KEY:
        raise ValueError(f"price key {key[:40]!r}… is longer than {MAX_KEY} characters")
    parts = re.split(r"([*?])", key)
    body = "".join(".*" if p == "*" else "." if p == "?" else _literal(p) for p in parts)
    return f"{_FLAGS}^{body}$"


def _settings_rules(tenant: str, level: int, prices: Mapping[str, PriceLike]) -> list[PriceRule]:
    keys = [k for k in prices if not is_pattern(k)] + [k for k in prices if is_pattern(k)]
    rules = []
    for key in keys:
        p = prices[key]
        cached = p.cached_input_usd_per_mtok
        rules.append(
            PriceRule(
                tenant, level, key, glob_regex(key), float(p.input_usd_per_mtok),
                float(p.input_usd_per_mtok if cached is None else cached), float(p.output_usd_per_mtok),
            )
        )  # fmt: skip
    return rules


def load_shipped(text: str | None = None) -> ShippedTable:
    """The shipped table (or the TOML `text` given), each row compiled to a rule."""
    if text is None:
        text = resources.files("analytics").joinpath("default_prices.toml").read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    prefixes: dict[str, str] = doc["prefixes"]
    rows = tuple(doc["model"])
    rules = []
    for row in rows:
        regex = f"{_FLAGS}^{prefixes[row['provider']]}(?:{row['match']})$"
        re.compile(regex)  # a row that does not compile stops here, naming nothing else
        rules.append(
            PriceRule(
                "", SHIPPED, row["name"], regex, float(row["input"]),
                float(row.get("cached_input", row["input"])), float(row["output"]),
            )
        )  # fmt: skip
    return ShippedTable(doc["as_of"], doc["compiled"], tuple(doc["sources"]), rows, tuple(rules))


def compile_rules(
    prices: Mapping[str, PriceLike],
    tenant_prices: Mapping[str, Mapping[str, PriceLike]],
    default_prices: bool = True,
) -> list[PriceRule]:
    """Every rule in precedence order: all tenants' own (each applies to its tenant only), then
    the global ones, then the shipped table's."""
    rules: list[PriceRule] = []
    for tenant, own in tenant_prices.items():
        rules += _settings_rules(tenant, TENANT, own)
    rules += _settings_rules("", GLOBAL, prices)
    if default_prices:
        rules += load_shipped().rules
    return rules


def resolve(rules: Sequence[PriceRule], tenant: str, model: str) -> PriceRule | None:
    """The rule that prices `model` for `tenant` (the views' matching, in Python), or None."""
    if not model:
        return None
    for rule in rules:
        if rule.tenant_id in ("", tenant) and re.match(rule.regex, model):
            return rule
    return None


def store_rules(warehouse: Warehouse, rules: Sequence[PriceRule]) -> int:
    """Store `rules` as the newest generation of price_rules and drop the older ones; returns
    the generation. Readers use the newest generation present, so the one INSERT switches them
    over and no assembly sees an empty table (unless there are no rules at all)."""
    regexes = [r.regex for r in rules]
    # The engine compiles the set as the views will: a pattern it refuses stops the start here.
    warehouse.rows("SELECT multiMatchAny('', {p:Array(String)})", {"p": regexes})
    generation = int(warehouse.rows("SELECT max(generation) FROM price_rules")[0][0]) + 1
    if rules:
        warehouse.insert_columns(
            "price_rules",
            ["generation", "rank", "tenant_id", "level", "pattern", "regex", "input_usd_per_mtok",
             "cached_input_usd_per_mtok", "output_usd_per_mtok"],
            [[generation] * len(rules), list(range(1, len(rules) + 1)), [r.tenant_id for r in rules],
             [r.level for r in rules], [r.pattern for r in rules], regexes,
             [r.input_usd_per_mtok for r in rules], [r.cached_input_usd_per_mtok for r in rules],
             [r.output_usd_per_mtok for r in rules]],
        )  # fmt: skip
    warehouse.command("DELETE FROM price_rules WHERE generation < {g:UInt64}", {"g": generation})
    return generation


def store_prices(
    warehouse: Warehouse,
    prices: Mapping[str, PriceLike],
    tenant_prices: Mapping[str, Mapping[str, PriceLike]],
    default_prices: bool = True,
) -> int:
    """Compile the price settings and store them (every `wrm serve` start)."""
    return store_rules(warehouse, compile_rules(prices, tenant_prices, default_prices))
