"""analytics.figures: every number a person reads, in one reading (no e-notation, units that fit)."""

from __future__ import annotations

import math
import re

import pytest

from analytics import figures as f

E_NOTATION = re.compile(r"\d[eE][+-]?\d")


@pytest.mark.parametrize(
    ("unit", "value", "text"),
    [
        ("rate", 0.875, "87.5%"),
        ("rate", 1, "100.0%"),
        ("rate", -0.00001, "0.0%"),
        ("duration", 1930, "32 min"),
        ("duration", 0.85, "850 ms"),
        ("duration", 0.0005, "0.5 ms"),
        ("duration", 4.2, "4.2 s"),
        ("duration", 42.5, "42.5 s"),
        ("duration", 300, "5.0 min"),
        ("duration", 9000, "2.5 h"),
        ("duration", 3 * 86_400, "3 d"),
        ("duration", -45, "-45 s"),
        ("duration", 0, "0 s"),
        ("count", 22460, "22,460"),
        ("count", 2.246e4, "22,460"),
        ("count", 12_345_678_901, "12,345,678,901"),
        ("money", 0.0042, "$0.0042"),
        ("money", 0.425, "$0.425"),
        ("money", 0.5, "$0.50"),
        ("money", 1234.5, "$1,234.50"),
        ("money", 0, "$0.00"),
        ("money", -0.0009, "-$0.0009"),
        ("money", 0.9999, "$1.00"),
        ("per_run", 1.25, "1.25"),
        ("per_run", 1234.4, "1,234"),
        ("per_day", 3208.6, "3,209"),
        ("tokens", 12480, "12,480"),
        ("tokens", 2.5, "2.5"),
        ("score", 0.8712, "0.871"),
        ("p_value", 0.031, "0.031"),
        ("p_value", 0.00004, "<0.0001"),
    ],
)
def test_value_reads_as_a_person_writes_it(unit: f.Unit, value: float, text: str) -> None:
    assert f.value(unit, value) == text


@pytest.mark.parametrize("missing", [None, float("nan"), float("inf"), -math.inf])
@pytest.mark.parametrize(
    "unit", ["rate", "duration", "count", "per_run", "tokens", "money", "score", "p_value"]
)
def test_a_missing_or_infinite_value_reads_a_dash(unit: f.Unit, missing: float | None) -> None:
    assert f.value(unit, missing) == f.MISSING
    assert f.change(unit, missing) == f.MISSING


@pytest.mark.parametrize("unit", ["duration", "count", "per_run", "tokens", "money", "score"])
@pytest.mark.parametrize("exponent", range(-6, 13, 2))
def test_never_e_notation(unit: f.Unit, exponent: int) -> None:
    for v in (1.2345 * 10.0**exponent, -7.5 * 10.0**exponent):
        assert not E_NOTATION.search(f.value(unit, v)), (unit, v, f.value(unit, v))
        assert not E_NOTATION.search(f.plain(v))


def test_change_is_signed_in_the_unit() -> None:
    assert f.change("rate", 0.032) == "+3.2 pt"
    assert f.change("rate", -0.005) == "-0.5 pt"
    assert f.change("rate", 0) == "±0 pt"
    assert f.change("duration", -240) == "-4.0 min"
    assert f.change("money", 0.0012) == "+$0.0012"
    assert f.change("count", 1200) == "+1,200"
    assert f.change("money", 0) == "±$0.00"


def test_relative_change() -> None:
    assert f.relative(0.125) == "+12.5%"
    assert f.relative(-0.1765) == "-17.6%"
    assert f.relative(-0.00001) == "±0.0%"
    assert f.relative(25) == "+2,500%"
    assert f.relative(None) == f.MISSING


@pytest.mark.parametrize(
    ("p", "text"), [(0.0499, "0.0499"), (0.04996, "0.04996"), (0.05, "0.05"), (0.051, "0.051")]
)
def test_a_p_value_is_never_rounded_onto_or_across_alpha(p: float, text: str) -> None:
    assert f.p_value(p) == text
    assert (float(f.p_value(p)) < 0.05) == (p < 0.05)


@pytest.mark.parametrize("seconds", [0.004, 0.5, 1, 7, 59, 61, 1930, 3599, 3600, 50_000, 172_799, 200_000])
def test_duration_scale_is_the_unit_duration_reads_in(seconds: float) -> None:
    unit, size = f.duration_scale(seconds)
    assert f.duration(seconds).endswith(f" {unit}")
    assert size == {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86_400}[unit]


def test_percent_for_an_axis_and_sample_sizes() -> None:
    assert f.percent(0.8, 0) == "80%"
    assert f.percent(-0.0, 0) == "0%"
    assert f.sample_sizes(340, 310) == "n = 340 / 310"
    assert f.sample_sizes(22460) == "n = 22,460"
    assert f.plain(1250) == "1,250" and f.plain(0.25) == "0.25" and f.plain(None) == f.MISSING
