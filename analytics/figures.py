"""Figures as a person reads them: `32 min`, `22,460`, `$0.0042`, `87.5%`, `+3.2 pt`.

Every place a person reads a number (reports, `wrm indicators`, `wrm compare`) formats it here,
so one figure reads the same everywhere. Machine formats (CSV, JSON, the API) keep raw values.
A missing value (None, NaN or an infinity) reads `–`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

Unit = Literal["rate", "duration", "count", "per_run", "tokens", "money", "score", "per_day", "p_value"]
MISSING = "–"
CURRENCY = "USD"


def missing(value: Any) -> bool:
    """None, NaN or an infinity: nothing a reader could use (and `round(inf)` would raise)."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _digits(value: float, significant: int = 3) -> str:
    """`value` with `significant` digits, thousands separated, never in e-notation."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, significant - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def count(value: Any) -> str:
    """A whole count: `22,460`."""
    if missing(value):
        return MISSING
    return f"{round(float(value)):,}"


def per_run(value: Any) -> str:
    """An average per run, e.g. decisions or retries: `1.25`, `1,234`."""
    if missing(value):
        return MISSING
    v = float(value)
    return f"{round(v):,}" if abs(v) >= 1000 else _digits(v)


def tokens(value: Any) -> str:
    """Tokens: whole above 10, `1,234`; a fraction below, `2.5`."""
    if missing(value):
        return MISSING
    v = float(value)
    return f"{round(v):,}" if abs(v) >= 10 else _digits(v, 2)


def duration(seconds: Any) -> str:
    """`850 ms`, `4.2 s`, `32 min`, `2.5 h`, `3.1 d`."""
    if missing(seconds):
        return MISSING
    s = float(seconds)
    sign, s = ("-" if s < 0 else ""), abs(s)
    if s == 0:
        return "0 s"
    if s < 1:
        return f"{sign}{_digits(s * 1000, 3 if s >= 0.1 else 2)} ms"
    if s < 60:
        return f"{sign}{_digits(s, 2 if s < 10 else 3)} s"
    if s < 3600:
        minutes = s / 60
        return f"{sign}{minutes:.1f} min" if minutes < 10 else f"{sign}{round(minutes)} min"
    if s < 86_400 * 2:
        return f"{sign}{_digits(s / 3600, 2 if s < 36_000 else 3)} h"
    return f"{sign}{_digits(s / 86_400, 2)} d"


def money(usd: Any, currency: str = CURRENCY) -> str:
    """`$1,234.50`, `$0.425`, `$0.0042`: cents above a dollar, 3 significant digits below."""
    if missing(usd):
        return MISSING
    v = float(usd)
    sign, v = ("-" if v < 0 else ""), abs(v)
    symbol = "$" if currency == "USD" else ""
    suffix = "" if symbol else f" {currency}"
    if v == 0:
        text = "0.00"
    elif v >= 1:
        text = f"{v:,.2f}"
    else:
        text = _digits(v, 3)
        if len(text.partition(".")[2]) < 2:
            text = f"{float(text):.2f}"
    return f"{sign}{symbol}{text}{suffix}"


def percent(rate: Any, decimals: int = 1) -> str:
    """A rate in [0, 1]: `87.5%` (`decimals=0` for an axis: `80%`)."""
    if missing(rate):
        return MISSING
    text = f"{float(rate) * 100:.{decimals}f}"
    return f"{text.lstrip('-') if float(text) == 0 else text}%"  # no `-0.0%`


def score(value: Any) -> str:
    """A quality or CX score: `0.87`, `4.2`."""
    if missing(value):
        return MISSING
    return _digits(float(value), 3)


def p_value(value: Any, alpha: float = 0.05) -> str:
    """`0.031`, `<0.0001`; never rounded onto or across `alpha` (0.0499 reads `0.0499`, not `0.05`)."""
    if missing(value):
        return MISSING
    v = float(value)
    if v < 1e-4:
        return "<0.0001"
    text = f"{v:.2g}"
    if (float(text) < alpha) != (v < alpha) or (float(text) == alpha and v != alpha):
        text = f"{v:.4g}"
    return text


def plain(value: Any, significant: int = 3) -> str:
    """A number with no unit (a chart's tick): `0.25`, `1,250`, never e-notation."""
    if missing(value):
        return MISSING
    return _digits(float(value), significant)


def duration_scale(seconds: Any) -> tuple[str, float]:
    """The unit `duration` would read `seconds` in, and its size in seconds: ("min", 60.0).
    A chart scales its whole axis by the unit of its largest value."""
    s = 0.0 if missing(seconds) else abs(float(seconds))
    for name, size, below in (("ms", 0.001, 1), ("s", 1, 60), ("min", 60, 3600), ("h", 3600, 172_800)):
        if s < below:
            return name, float(size)
    return "d", 86_400.0


def sample_sizes(current_n: Any, before_n: Any = None) -> str:
    """`n = 340 / 310` (current / before), or `n = 340` without a comparison."""
    if before_n is None:
        return f"n = {count(current_n)}"
    return f"n = {count(current_n)} / {count(before_n)}"


_FORMATS: dict[str, Callable[[Any], str]] = {
    "rate": percent,
    "duration": duration,
    "count": count,
    "per_run": per_run,
    "tokens": tokens,
    "money": money,
    "score": score,
    "per_day": per_run,
    "p_value": p_value,
}


def value(unit: Unit, v: Any) -> str:
    """`v` in `unit`'s reading."""
    return _FORMATS[unit](v)


def change(unit: Unit, delta: Any) -> str:
    """A signed difference in `unit`: `+3.2 pt` for rates, `-4 min`, `+$0.0012`, `+1,200`."""
    if missing(delta):
        return MISSING
    d = float(delta)
    if d == 0:
        return "±0 pt" if unit == "rate" else f"±{value(unit, 0)}"
    sign = "+" if d > 0 else "-"
    if unit == "rate":
        return f"{sign}{abs(d) * 100:.1f} pt"
    return sign + value(unit, abs(d))


def relative(rel: Any) -> str:
    """A relative change: `+12.5%`."""
    if missing(rel):
        return MISSING
    r = float(rel) * 100
    if round(r, 1) == 0:
        return "±0.0%"
    return f"{r:+.1f}%" if abs(r) < 1000 else f"{r:+,.0f}%"
