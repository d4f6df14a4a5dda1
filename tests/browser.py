"""Headless Chromium for the console tests: Debian's `chromium` (what `.ci/run` installs), driven
through Playwright, one browser per test module; screenshots go to $CONSOLE_SCREENSHOTS when set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (.ci/run installs it)"
)
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1366, "height": 900}


@contextmanager
def chromium() -> Iterator[Browser]:
    assert CHROMIUM is not None, "chromium is not installed: apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def visit(browser: Browser, base_url: str, phone: bool = False) -> Iterator[Page]:
    """A fresh context (no cookies) and page on `base_url`; JavaScript errors fail the test."""
    context: BrowserContext = browser.new_context(
        base_url=base_url, viewport=PHONE if phone else LAPTOP, locale="en-GB", timezone_id="UTC"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # script errors fail; a 4xx the page was meant to get (a refused sign-in) is the test's to check
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.set_default_timeout(15_000)
    try:
        yield page
        assert not errors, f"errors in the page: {errors}"
    finally:
        context.close()


def sign_in(page: Page, key: str, path: str = "/ui/") -> None:
    page.goto(path)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}*")


def shot(page: Page, name: str) -> None:
    """A full-page screenshot under $CONSOLE_SCREENSHOTS (nothing when unset): for looking, not asserting."""
    where = os.environ.get("CONSOLE_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / f"{name}.png"), full_page=True)


# Fixtures of the console test modules (tests/conftest.py imports them); `page` needs the module's
# `env`, an object whose `url` is the server's base URL.


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(env: Any, browser: Browser) -> Iterator[Page]:
    with visit(browser, env.url) as p:
        yield p
