"""The console's run list in headless Chromium, against a server that requires keys and is fed by
the OTel SDK exporter: signing in, the list and its filters, paging, export of the filter, the
auto-refresh, another tenant's runs never shown, forms from elsewhere refused, and `/` sending a
browser to the console while ClickHouse clients keep it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import clickhouse_connect
import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser import needs_chromium, shot, sign_in
from tests.conftest import module_server, settle
from tests.indicator_data import VersionPlan, plan, send
from wrm.server import WrmServer

pytestmark = needs_chromium
ADMIN_KEY = "platform-admin-" + "u" * 40
# acme: 2 days × 6 runs of triage v1 (2 first-pass, 2 retried, 2 failed a day); globex: 2 runs
ACME = plan([VersionPlan("v1", range(2, 0, -1), 6, 2, 2, 5, (100, 10), 3, 0.7)])
GLOBEX = plan([VersionPlan("g1", range(1, 0, -1), 2, 2, 0, 5, (100, 10), 99, 0.7)], seed=5)


@dataclass
class Env:
    server: WrmServer
    url: str
    keys: dict[str, str]


@pytest.fixture(scope="module")
def env(engine_dir: object) -> Iterator[Env]:
    with module_server(engine_dir, auth="required", admin_key=ADMIN_KEY) as srv:  # type: ignore[arg-type]
        send(srv.otlp_address, ACME, "triage", key=srv.create_key("acme", "ingest", "acme-ingest"))
        send(srv.otlp_address, GLOBEX, "triage", key=srv.create_key("globex", "ingest", "globex-ingest"))
        settle(srv)
        keys = {
            "viewer": srv.create_key("acme", "viewer", "ana (viewer)"),
            "globex": srv.create_key("globex", "viewer", "gil (viewer)"),
        }
        yield Env(srv, f"http://{srv.http_address}", keys)


def _run_ids(page: Page) -> list[str]:
    return [a.get_attribute("href") or "" for a in page.locator("#run-rows a").all()]


def test_a_browser_at_the_root_lands_on_the_console_and_clickhouse_clients_keep_it(env: Env) -> None:
    with httpx.Client(base_url=env.url) as c:
        browser_like = c.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert browser_like.status_code == 303 and browser_like.headers["location"] == "/ui/"
        assert c.get("/").text == "Ok.\n" and c.get("/ping").text == "Ok.\n"
    client = clickhouse_connect.get_client(
        host=env.server.http_address.split(":")[0], port=int(env.server.http_address.split(":")[1]),
        username="default", password=env.keys["viewer"], database=env.server.settings.database,
    )  # fmt: skip
    assert client.query("SELECT count() FROM runs").result_rows[0][0] == len(ACME)


def test_signing_in_shows_the_tenants_runs_only(env: Env, page: Page) -> None:
    page.goto("/ui/")
    expect(page).to_have_url(f"{env.url}/ui/signin?next=%2Fui%2F&why=needed")
    expect(page.locator(".notice")).to_have_text("Sign in with an API key.")
    page.get_by_label("API key").fill("wrm_0123456789ab_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, revoked or mistyped")
    sign_in(page, env.keys["viewer"])
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.locator("header .who")).to_contain_text("ana (viewer) (viewer, tenant acme)")
    rows = page.locator("#run-rows tr")
    expect(rows).to_have_count(len(ACME))
    assert page.locator("#run-rows").get_by_text("g1").count() == 0  # globex's version
    expect(page.locator("#run-rows .chip.s-failed")).to_have_count(4)
    first = rows.first
    for cell in ("triage", "v1", "production"):
        expect(first).to_contain_text(cell)
    expect(first.locator("td.num").nth(1)).to_have_text("$0.001")  # a cost, read as money
    shot(page, "console-runs")
    # a tenant key cannot ask for another tenant: ?tenant= is ignored
    page.goto("/ui/?tenant=globex")
    expect(page.locator("#run-rows tr")).to_have_count(len(ACME))


def test_filters_narrow_the_list_and_bad_values_are_shown_by_their_field(env: Env, page: Page) -> None:
    sign_in(page, env.keys["viewer"])
    page.get_by_role("checkbox", name="failed").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#run-rows tr")).to_have_count(4)
    expect(page.locator("#run-rows .chip")).to_have_text(["failed"] * 4)
    page.get_by_label("Started from").fill("yesterday")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#err-since")).to_have_text("a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)")
    expect(page.get_by_label("Started from")).to_have_attribute("aria-invalid", "true")
    assert page.locator("#run-rows").count() == 0
    page.goto("/ui/?workflow=no-such-flow")
    expect(page.locator("#run-rows")).to_contain_text("No runs match these filters.")


def test_export_downloads_the_current_filter(env: Env, page: Page) -> None:
    sign_in(page, env.keys["viewer"], "/ui/?status=failed")
    with page.expect_download() as got:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(got.value.path().read_text())))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"failed"}


def test_paging_by_cursor(env: Env, page: Page) -> None:
    sign_in(page, env.keys["viewer"])
    with httpx.Client(base_url=env.url, headers={"Authorization": f"Bearer {env.keys['viewer']}"}) as c:
        api = [r["run_id"] for r in c.get("/v1/runs", params={"limit": 50}).json()["runs"]]
    shown = [h.rsplit("/", 1)[1] for h in _run_ids(page)]
    assert shown == api  # the same runs in the same order as the API
    assert page.get_by_role("link", name="Next page »").count() == 0  # 12 runs: one page


def test_the_first_page_refreshes_itself(env: Env, page: Page) -> None:
    page.clock.install()
    sign_in(page, env.keys["viewer"])
    before = len(_run_ids(page))
    late = plan([VersionPlan("v9", range(0, -1, -1), 1, 1, 0, 5, (100, 10), 99, 0.7)], seed=77)
    send(env.server.otlp_address, late, "triage", key=env.server.create_key("acme", "ingest", "late"))
    settle(env.server)
    page.clock.run_for(10_500)
    expect(page.locator("#run-rows tr")).to_have_count(before + 1)
    expect(page.locator("#run-rows tr").first).to_contain_text("v9")


def test_a_form_from_elsewhere_is_refused(env: Env) -> None:
    with httpx.Client(base_url=env.url, follow_redirects=False) as c:
        c.cookies.set("wrm_key", env.keys["viewer"], path="/ui")
        refused = c.post("/ui/signout", data={"csrf": "forged"})
        assert refused.status_code == 400 and "did not come from this console" in refused.text
        page = c.get("/ui/")
        assert page.status_code == 200
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert page.headers["x-content-type-options"] == "nosniff"
        token = c.cookies.get("wrm_csrf")
        # the right token from another origin (another port of this host shares the cookies)
        elsewhere = c.post("/ui/signout", data={"csrf": token}, headers={"Origin": "http://127.0.0.1:1"})
        assert elsewhere.status_code == 400 and "another site" in elsewhere.text
        assert token and c.post("/ui/signout", data={"csrf": token}).status_code == 303
        # nobody else's page signs a browser in with their key: the sign-in form has a token too
        key = env.keys["viewer"]
        assert c.post("/ui/signin", data={"key": key}).status_code == 400
        # an open redirect is not offered: sign-in only returns to console pages
        back = c.post("/ui/signin", data={"key": key, "next": "https://evil.example/", "csrf": token})
        assert back.status_code == 303 and back.headers["location"] == "/ui/"
        # the sign-in page says only what the console wrote, whatever the link says
        assert "paste your key at" not in c.get("/ui/signin", params={"why": "paste your key at x"}).text


def test_an_ingest_key_cannot_read_runs(env: Env, page: Page) -> None:
    ingest = env.server.create_key("acme", "ingest", "collector")
    page.goto("/ui/signin")
    page.get_by_label("API key").fill(ingest)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("it sends spans but cannot read runs")
    with httpx.Client(base_url=env.url, cookies={"wrm_key": ingest}) as c:
        for path in ("/ui/", "/ui/export?format=csv", f"/ui/runs/{ACME[0].version}"):
            got = c.get(path)
            assert got.status_code == 403 and "may send spans but not read runs" in got.text, path
