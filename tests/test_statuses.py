"""Run and step statuses are defined once in Python (warehouse/statuses.py); the SQL that derives
them spells its own strings. These checks read both and fail when they disagree: a status added,
renamed or misspelled on one side only."""

from __future__ import annotations

import re
from pathlib import Path

from analytics.runs import listing
from analytics.runs.schemas import RunSummary
from warehouse.statuses import (
    FINISHED_RUN_STATUSES,
    LIVE_RUN_STATUSES,
    RUN_STATUSES,
    STEP_STATUSES,
    STORED_RUN_STATUSES,
)

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
_LITERAL_RE = re.compile(r"'((?:[^'\\]|\\.)*)'")
# Comparisons with a column that holds a WRM run or step status (not source_status, which keeps
# what the source said, nor status_code, OTel's).
_COMPARISON_RE = re.compile(
    r"(?<![\w.])(?:\w+\.)?(?:status|rs_status|rs_run_status|unified_status)\s*(?:!=|=|\bIN\b)\s*"
    r"(\([^)]*\)|'[^']*')",
    re.IGNORECASE,
)


def _sql_texts() -> dict[str, str]:
    texts = {
        str(p.relative_to(SQL_DIR)): p.read_text(encoding="utf-8") for p in sorted(SQL_DIR.rglob("*.sql"))
    }
    assert texts, f"no SQL files under {SQL_DIR}"
    return texts


def _without_comments(text: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def _arguments(text: str, open_paren: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose `(` is at `open_paren`, and the index after its `)`."""
    args, depth, start, quoted = [], 0, open_paren + 1, False
    for i in range(open_paren, len(text)):
        ch = text[i]
        if ch == "'" and text[i - 1] != "\\":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:i].strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append(text[start:i].strip())
            start = i + 1
    raise AssertionError("unbalanced parentheses in SQL")


def _multiif_values(alias: str) -> list[set[str]]:
    """For each `multiIf(…) AS alias` in the SQL, the values it can take: its string results, and
    for a result that is a column, the strings its condition admits (`col IN ('a', 'b')`)."""
    found = []
    for text in _sql_texts().values():
        text = _without_comments(text)
        for m in re.finditer(r"\bmultiIf\s*\(", text):
            args, end = _arguments(text, m.end() - 1)
            if not re.match(rf"\s*AS\s+{alias}\b", text[end:]):
                continue
            values: set[str] = set()
            pairs = [*zip(args[0:-1:2], args[1::2], strict=True), ("", args[-1])]
            for condition, result in pairs:
                literal = _LITERAL_RE.fullmatch(result)
                if literal:
                    values.add(literal.group(1))
                    continue
                guard = re.search(rf"{re.escape(result)}\s+IN\s*\(([^)]*)\)", condition)
                assert guard, f"`{alias}` takes the column {result} without saying which values: {condition}"
                values |= set(_LITERAL_RE.findall(guard.group(1)))
            found.append(values)
    return found


def test_python_statuses_are_one_set() -> None:
    assert set(LIVE_RUN_STATUSES) | set(FINISHED_RUN_STATUSES) == set(STORED_RUN_STATUSES)
    assert not set(LIVE_RUN_STATUSES) & set(FINISHED_RUN_STATUSES)
    assert RUN_STATUSES[:-1] == STORED_RUN_STATUSES
    assert RUN_STATUSES[-1] == "cancel_requested"
    assert listing.STATUSES == RUN_STATUSES
    assert set(listing._STATUS_SQL) == set(RUN_STATUSES)
    assert RunSummary.model_json_schema()["properties"]["status"]["enum"] == list(RUN_STATUSES)


def test_run_assembly_derives_exactly_the_stored_run_statuses() -> None:
    # the status the spans give (an abandoned run is then `failed`, also a stored status)
    found = _multiif_values("live_status")
    assert found, "no `multiIf(…) AS live_status` (the run status) in the SQL"
    for values in found:
        assert values == set(STORED_RUN_STATUSES)


def test_span_facts_derive_exactly_the_step_statuses() -> None:
    found = _multiif_values("unified_status")
    assert found, "no `multiIf(…) AS unified_status` (the step status) in the SQL"
    for values in found:
        assert values == set(STEP_STATUSES)


def test_every_status_the_sql_compares_with_is_a_status() -> None:
    known = set(STORED_RUN_STATUSES) | set(STEP_STATUSES)
    texts = {**_sql_texts(), "analytics/runs/listing.py": " ".join(listing._STATUS_SQL.values())}
    compared: dict[str, str] = {}
    for name, text in texts.items():
        for m in _COMPARISON_RE.finditer(_without_comments(text)):
            for value in _LITERAL_RE.findall(m.group(1)):
                compared.setdefault(value, name)
    assert compared, "no status comparisons found in the SQL"
    unknown = {v: name for v, name in compared.items() if v not in known}
    assert not unknown, f"statuses the SQL compares with that Python does not define: {unknown}"
