"""The console's effectiveness and compare pages in headless Chromium, against a server that
requires keys, fed by the OTel SDK with runs of known truth (tests/indicator_data.py): the page
shows the report's own strings, small samples read "not enough runs", charts are inline SVG with
names, failure examples link to their runs, downloads are the report, bad parameters are shown by
their field, and another tenant sees none of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from analytics import reports
from analytics.reports.render import view
from tests.browser import needs_chromium, shot, sign_in, visit
from tests.conftest import module_server, settle
from tests.indicator_data import TODAY, VersionPlan, plan, send
from wrm.server import WrmServer

pytestmark = needs_chromium
ADMIN_KEY = "platform-admin-" + "e" * 40
# as tests/test_reports.py, on fewer days: v1 in the 7 days before a 7-day report, v2 in its days
# (first-pass 18 → 26 of 30 runs a day; 60 runs a side is enough for a significant difference)
V1 = VersionPlan("v1", range(14, 12, -1), 30, first_pass=18, retries=8, median_s=20, tokens=(1000, 200),
                 human_every=5, quality=0.7, cx=3.5)  # fmt: skip
V2 = VersionPlan("v2", range(2, 0, -1), 30, first_pass=26, retries=2, median_s=12, tokens=(800, 150),
                 human_every=10, quality=0.85, cx=4.25)  # fmt: skip
SMALL = [VersionPlan("s1", range(9, 8, -1), 10, 6, 2, 5, (10, 1), 5, 0.5),
         VersionPlan("s2", range(3, 2, -1), 10, 9, 0, 5, (10, 1), 5, 0.5)]  # fmt: skip
GLOBEX = VersionPlan("g1", range(2, 0, -1), 3, 2, 0, 5, (100, 10), 99, 0.7)
SINCE, UNTIL = (TODAY - timedelta(days=7)).date(), (TODAY - timedelta(days=1)).date()


@dataclass
class Env:
    server: WrmServer
    url: str
    keys: dict[str, str]


@pytest.fixture(scope="module")
def env(engine_dir: object) -> Iterator[Env]:
    with module_server(engine_dir, auth="required", admin_key=ADMIN_KEY) as srv:  # type: ignore[arg-type]
        ingest = srv.create_key("acme", "ingest", "acme-ingest")
        send(srv.otlp_address, plan([V1, V2]), "triage", key=ingest)
        send(srv.otlp_address, plan(SMALL, seed=3), "small", key=ingest)
        globex = plan([GLOBEX], seed=5)
        send(srv.otlp_address, globex, "billing", key=srv.create_key("globex", "ingest", "globex-ingest"))
        settle(srv)
        keys = {
            "viewer": srv.create_key("acme", "viewer", "ana (viewer)"),
            "globex": srv.create_key("globex", "viewer", "gil (viewer)"),
        }
        yield Env(srv, f"http://{srv.http_address}", keys)


def _expected(env: Env, workflow: str) -> reports.ReportData:
    assert env.server.warehouse is not None
    return reports.build(env.server.warehouse.reader, reports.ReportRequest(workflow, "acme", SINCE, UNTIL))


def _snapshot(page: Page) -> dict[str, list[str]]:
    rows = page.locator("table.eff-snapshot tbody tr")
    return {
        (r.locator("th").inner_text()).strip(): [c.strip() for c in r.locator("td").all_inner_texts()]
        for r in rows.all()
    }


def test_the_page_is_the_report_figures_charts_linked_failures_and_downloads(env: Env, page: Page) -> None:
    sign_in(page, env.keys["viewer"], "/ui/effectiveness?workflow=triage&since=7d")
    expect(page.get_by_role("heading", name="Effectiveness snapshot")).to_be_visible()
    data = _expected(env, "triage")
    shown = _snapshot(page)
    for r in view(data).snapshot:
        verdict = f"{r.verdict}\n{r.note}" if r.note else r.verdict
        assert shown[r.label] == [r.current, r.before, r.change, r.relative, r.n, verdict], r.label
    first = shown["First-pass success"]
    assert first[:2] == ["86.7%", "60.0%"] and first[5].startswith("better")
    assert first[4] == "n = 60 / 60"
    charts = page.locator(".eff-charts figure img")
    expect(charts).to_have_count(4)
    names = [c.get_attribute("alt") or "" for c in charts.all()]
    for title in ("First-pass and success rate", "p95 duration", "Cost per run", "Runs per day"):
        assert any(n.startswith(title) for n in names), names
    for chart in charts.all():  # an SVG document drawn in place, nothing fetched
        assert (chart.get_attribute("src") or "").startswith("data:image/svg+xml;base64,")
        assert chart.evaluate("img => img.complete && img.naturalWidth > 300 && img.naturalHeight > 50")
    example = data.failures[0].example_run_ids[0]
    link = page.locator("table.eff-failures a", has_text=example).first
    expect(link).to_have_attribute("href", f"/ui/runs/{example}")
    expect(page.get_by_role("heading", name="Time to benefit")).to_be_visible()
    expect(page.locator("table[aria-label='Time to benefit per version']")).to_contain_text("v2")
    # retries by step read every step (seconds at 10M): in the downloaded report, not on the page
    expect(page.locator("#h-retries + p")).to_contain_text("in the")
    assert page.locator("table[aria-label='Retries by step']").count() == 0
    shot(page, "console-effectiveness-laptop")
    export = page.get_by_role("link", name="CSV").get_attribute("href") or ""
    assert export == f"/ui/export?workflow=triage&since={SINCE}&until={UNTIL}&format=csv"
    # the downloads are the report of the same choice
    hrefs = {n: page.get_by_role("link", name=n, exact=True).get_attribute("href") for n in ("PDF", "HTML")}
    with httpx.Client(base_url=env.url, timeout=60) as c:
        c.cookies.set("wrm_key", env.keys["viewer"], path="/ui")
        pdf = c.get(hrefs["PDF"] or "")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-disposition"].startswith("attachment;")
        html = c.get(hrefs["HTML"] or "")
        csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        assert html.status_code == 200 and html.headers["content-security-policy"] == csp
        assert "86.7%" in html.text
        assert c.get("/ui/effectiveness/report.md?workflow=triage&since=soon").status_code == 400


def test_a_small_workflow_reads_not_enough_runs_on_a_phone(env: Env, browser: Browser) -> None:
    with visit(browser, env.url, phone=True) as page:
        sign_in(page, env.keys["viewer"], "/ui/effectiveness?workflow=small&since=7d&until=" + str(UNTIL))
        verdicts = page.locator("table.eff-snapshot .eff-badge.few")
        expect(verdicts.first).to_have_text("not enough runs")
        assert "better" not in page.locator("table.eff-snapshot").inner_text()
        shot(page, "console-effectiveness-phone")
        # the snapshot stacks into cards: nothing wider than the phone
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        page.goto("/ui/compare?workflow=triage&baseline=v1&candidate=v2")
        expect(page.locator("table.eff-compare")).to_be_visible()
        shot(page, "console-compare-phone")


def test_compare_two_versions(env: Env, page: Page) -> None:
    sign_in(page, env.keys["viewer"], "/ui/compare?workflow=triage")
    expect(page.locator("main .notice")).to_have_text(
        "Pick a baseline version (before) and a candidate version (after) to compare."
    )
    page.get_by_label("Baseline (before)").select_option("v1")
    page.get_by_label("Candidate (after)").select_option("v2")
    page.get_by_role("button", name="Compare").click()
    row = page.locator("table.eff-compare tr", has=page.locator("th", has_text="First-pass success"))
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[:2] == ["60.0%", "86.7%"] and cells[4] == "n = 60 / 60"
    assert cells[5].startswith("<") or cells[5].startswith("0.")
    expect(row.locator(".eff-badge")).to_have_text("better")
    shot(page, "console-compare-laptop")
    page.goto("/ui/compare?workflow=small&baseline=s1&candidate=s2")
    expect(page.locator("table.eff-compare .eff-badge.few").first).to_have_text("not enough runs")
    page.goto("/ui/compare?workflow=triage&baseline=v1&candidate=v1")
    expect(page.locator("#err-candidate")).to_have_text("pick a version other than the baseline")


def test_bad_parameters_are_shown_by_their_field(env: Env, page: Page) -> None:
    sign_in(page, env.keys["viewer"], "/ui/effectiveness?workflow=triage&until=2026-13-40")
    expect(page.locator("#err-until")).to_be_visible()
    page.get_by_label("Last day").fill("")
    page.get_by_label("Period").fill("last week")
    page.get_by_label("Compare with").fill("v1..v1")
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#err-since")).to_have_text("7d, 30d, 90d (any Nd) or a first day YYYY-MM-DD")
    expect(page.locator("#err-compare")).to_have_text("previous, none, or two different versions V1..V2")
    expect(page.get_by_label("Period")).to_have_attribute("aria-invalid", "true")
    assert page.locator("table.eff-snapshot").count() == 0


def test_another_tenant_sees_none_of_acmes_workflows(env: Env, page: Page) -> None:
    sign_in(page, env.keys["globex"], "/ui/effectiveness")
    options = page.locator("select[name=workflow] option").all_inner_texts()
    assert options == ["billing"]
    page.goto("/ui/effectiveness?workflow=triage&since=30d")
    expect(page.locator("main .notice").first).to_contain_text("No runs of triage")
    assert "86.7%" not in page.content()
    page.goto("/ui/compare?workflow=triage&baseline=v1&candidate=v2")
    assert page.locator("table.eff-compare").count() == 0
    expect(page.locator("select[name=workflow]")).to_contain_text("triage (no runs)")
    page.goto("/ui/compare?workflow=billing")
    expect(page.locator("main .notice")).to_contain_text("one version only (g1)")


def test_a_platform_admin_reads_a_tenant_named_in_the_address(env: Env, page: Page) -> None:
    sign_in(page, ADMIN_KEY, "/ui/effectiveness?tenant=acme&workflow=small&since=7d")
    expect(page.get_by_label("Tenant")).to_have_value("acme")
    pdf = page.get_by_role("link", name="PDF", exact=True).get_attribute("href") or ""
    assert pdf.startswith("/ui/effectiveness/report.pdf?tenant=acme&workflow=small")
    run = page.locator("table.eff-failures a").first.get_attribute("href") or ""
    assert run.startswith("/ui/runs/") and run.endswith("?tenant=acme")
    assert "tenant=acme" in (page.get_by_role("link", name="CSV").get_attribute("href") or "")
    page.goto("/ui/effectiveness?tenant=nobody")
    expect(page.locator("main .notice")).to_have_text("No runs yet for this tenant: nothing to report.")
