"""The layers stay true: receiver/ imports only the shared warehouse, access and redaction
packages, analytics/ those and events/ (receiver and analytics never each other), derivation/
only warehouse, access/, redaction/ and events/ only warehouse, and
warehouse/ imports none of them. Each package is
imported whole in a fresh interpreter, so an import hidden in any module is seen."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

OURS = ("warehouse", "access", "redaction", "events", "receiver", "derivation", "analytics", "wrm")
_PROBE = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    importlib.import_module(info.name)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


@pytest.mark.parametrize(
    ("package", "may_import"),
    [
        ("warehouse", set()),
        ("access", {"warehouse"}),
        ("redaction", {"warehouse"}),
        ("events", {"warehouse"}),
        ("receiver", {"warehouse", "access", "redaction"}),
        ("derivation", {"warehouse"}),
        ("analytics", {"warehouse", "access", "redaction", "events"}),
    ],
)
def test_package_imports_only_the_layers_below_it(package: str, may_import: set[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, package], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(out.stdout)) & set(OURS)
    assert loaded - {package} - may_import == set()
