"""`pip install .` (not editable) gives a wrm that migrates a new warehouse from anywhere: the SQL
and the .proto ship as package data (package wrm_sql, mapped to sql/ in pyproject.toml)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"tests", "bench", "build", "data", "docs"}


def _config() -> tuple[list[str], dict[str, str]]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return list(setuptools["packages"]), dict(setuptools.get("package-dir", {}))


def _package_dirs() -> dict[str, Path]:
    """Every package of the checkout, by import name, and its directory (the folders of sql/ are
    data packages: wrm_sql.views, …)."""
    _, mapping = _config()
    found: dict[str, Path] = {}
    data_dirs = [d for folder in mapping.values() for d in (ROOT / folder).iterdir() if d.is_dir()]
    for init in [*ROOT.rglob("__init__.py"), *(d / "__init__.py" for d in data_dirs)]:
        rel = init.parent.relative_to(ROOT)
        if not rel.parts or rel.parts[0] in NOT_SHIPPED or rel.parts[0].startswith("."):
            continue
        if "__pycache__" in rel.parts or any(p.endswith(".egg-info") for p in rel.parts):
            continue
        top = next((name for name, folder in mapping.items() if folder == rel.parts[0]), rel.parts[0])
        found[".".join((top, *rel.parts[1:]))] = init.parent
    return found


def test_every_package_of_the_checkout_is_listed() -> None:
    packages, _ = _config()
    assert sorted(_package_dirs()) == sorted(packages)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(240)
def test_non_editable_install_migrates_a_new_warehouse(tmp_path: Path) -> None:
    # Build from a copy, so the build leaves nothing in the shared checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in {d.relative_to(ROOT).parts[0] for d in _package_dirs().values()}:
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(src)],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    shipped = sorted(p.relative_to(ROOT / "sql").as_posix() for p in (ROOT / "sql").rglob("*") if p.is_file())
    shipped = [p for p in shipped if "__pycache__" not in p]
    installed = sorted(p.relative_to(site / "wrm_sql").as_posix() for p in (site / "wrm_sql").rglob("*"))
    assert set(shipped) <= set(installed)

    # Run it from elsewhere, importing only the installed copy (the venv supplies the dependencies).
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRM_")}
    env["PYTHONPATH"] = str(site)
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import wrm_sql, warehouse, receiver.envelope as e; "
            "print(wrm_sql.__file__); print(warehouse.__file__); print(e.SCHEMA)",
        ],
        cwd=away,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where

    wrm = [sys.executable, str(site / "bin" / "wrm")]
    dsn = f"chdb://{tmp_path / 'warehouse'}"
    done = subprocess.run(
        [*wrm, "migrate", "--warehouse", dsn], cwd=away, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    migrations = len(list((Path(__file__).parent.parent / "sql").glob("[0-9][0-9][0-9]_*.sql")))
    assert f"wrm migrate: {migrations} applied" in done.stdout
    assert "007_run_api" in done.stdout

    query = (
        "SELECT (SELECT count() FROM schema_migrations), "
        "(SELECT count() FROM system.tables WHERE database = currentDatabase() AND engine = 'View'), "
        "(SELECT count() FROM system.functions WHERE name = 'wrm_run_span_value'), "
        "(SELECT count() FROM effectiveness_window(since = today() - 30, until = today(), by_day = 0)), "
        "(SELECT count() FROM runs)"
    )
    views = len(list((ROOT / "sql" / "views").glob("*.sql")))
    asked = subprocess.run(
        [*wrm, "sql", "--warehouse", dsn, "--http", f"127.0.0.1:{_free_port()}", "--format", "TSV", query],
        cwd=away,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.split() == [str(migrations), str(views), "1", "0", "0"]
