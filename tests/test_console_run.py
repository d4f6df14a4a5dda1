"""The console's run detail page in headless Chromium, against a server that requires keys and is
fed by the OTel SDK: the facts, timeline (retry, failure and its reason, the decision with actor and
wait) and steps; operators re-run, cancel, annotate and tag through confirm pages and see the
resulting state, which the API shows too; a viewer sees no action and is refused one; a forged
form is refused; another tenant's run is not found."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import needs_chromium, shot, sign_in, visit
from tests.conftest import module_server, settle
from tests.indicator_data import VersionPlan, plan, send, start_running_run
from wrm.server import WrmServer

pytestmark = needs_chromium
ADMIN_KEY = "platform-admin-" + "r" * 40
# one day of 3 runs, each with a review: first pass, retried (a failed first attempt), failed
ACME = plan([VersionPlan("v1", range(1, 0, -1), 3, 1, 1, 5, (100, 10), 1, 0.7)])
GLOBEX = plan([VersionPlan("g1", range(1, 0, -1), 1, 1, 0, 5, (100, 10), 99, 0.7)], seed=5)
LIVE = ("live-cancel", "live-keep")


def _trace_hex(name: str) -> str:  # the run id start_running_run's trace gets
    return format(int.from_bytes(name.encode().ljust(16, b"x")[:16]), "032x")


@dataclass
class Env:
    server: WrmServer
    url: str
    keys: dict[str, str]
    runs: dict[str, str]  # retried (with a review), failed, live-cancel, live-keep, globex

    def api(self, key: str = "operator") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.keys[key]}"})

    def run(self, name: str) -> dict[str, Any]:
        with self.api() as c:
            got = c.get(f"/v1/runs/{self.runs[name]}")
            assert got.status_code == 200, got.text
            return dict(got.json())


@pytest.fixture(scope="module")
def env(engine_dir: object) -> Iterator[Env]:
    with module_server(engine_dir, auth="required", admin_key=ADMIN_KEY) as srv:  # type: ignore[arg-type]
        ingest = srv.create_key("acme", "ingest", "acme-ingest")
        send(srv.otlp_address, ACME, "triage", key=ingest)
        send(srv.otlp_address, GLOBEX, "triage", key=srv.create_key("globex", "ingest", "globex-ingest"))
        for name in LIVE:
            start_running_run(srv.otlp_address, name, key=ingest)
        settle(srv)
        keys = {
            "viewer": srv.create_key("acme", "viewer", "vic (viewer)"),
            "operator": srv.create_key("acme", "operator", "ola (operator)"),
            "globex": srv.create_key("globex", "viewer", "gil (viewer)"),
        }
        url = f"http://{srv.http_address}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['operator']}"}) as c:
            done = c.get("/v1/runs", params={"has_human_decisions": "true", "status": "completed"}).json()
            failed = c.get("/v1/runs", params={"status": "failed"}).json()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['globex']}"}) as c:
            theirs = c.get("/v1/runs").json()["runs"][0]["run_id"]
        runs = {
            "retried": next(r["run_id"] for r in done["runs"] if r["retries"] > 0),
            "failed": failed["runs"][0]["run_id"],
            "globex": theirs,
            **{name: _trace_hex(name) for name in LIVE},
        }
        yield Env(srv, url, keys, runs)


def test_the_run_shows_its_timeline_steps_and_decision_to_a_viewer(env: Env, browser: Browser) -> None:
    rid = env.runs["retried"]
    for phone in (False, True):
        with visit(browser, env.url, phone=phone) as page:
            sign_in(page, env.keys["viewer"], f"/ui/runs/{rid}")
            expect(page.locator("h1")).to_contain_text(rid)
            expect(page.locator("h1 .chip.s-completed")).to_have_text("completed")
            timeline = page.locator("ol.timeline li")
            expect(timeline.filter(has_text="Retry: step classify, attempt 2")).to_have_count(1)
            failed = timeline.filter(has_text="Step failed: classify")
            expect(failed).to_have_class("ev k-step-failed bad")
            expect(failed.locator(".detail")).to_contain_text("model timed out")
            expect(timeline.filter(has_text="Decision: approved by ana after 1.0 min")).to_have_count(1)
            classify = page.locator("li.step", has_text="classify").filter(has_text="failed")
            expect(classify).to_contain_text("test-model")
            expect(classify).to_contain_text("100 / 10")
            expect(classify.locator(".error-text")).to_contain_text("model timed out")
            expect(page.locator("li.step", has_text="check")).to_contain_text("schema: passed, quality 0.7")
            review = page.locator("li.step", has_text="review")
            expect(review).to_contain_text("approved by ana, waited 1.0 min")
            expect(page.locator(".run-facts")).to_contain_text("1 passed, 0 failed")
            # a viewer is offered no action at all
            assert page.locator(".run-actions").count() == 0 and page.locator("main form").count() == 0
            assert page.locator("a[href*='/confirm/']").count() == 0
            shot(page, "console-run-phone" if phone else "console-run")


def test_a_failed_run_shows_where_and_why_it_failed(env: Env, page: Page) -> None:
    api = env.run("failed")
    assert api["failure_reason"]
    sign_in(page, env.keys["viewer"], f"/ui/runs/{env.runs['failed']}")
    expect(page.locator(".failure")).to_contain_text(api["failure_reason"])
    expect(page.locator("ol.timeline li.k-run-failed")).to_have_class("ev k-run-failed bad")


def test_an_operator_cancels_a_running_run_through_the_confirm_page(env: Env, page: Page) -> None:
    rid = env.runs["live-cancel"]
    sign_in(page, env.keys["operator"], f"/ui/runs/{rid}")
    expect(page.locator("h1 .chip")).to_have_text("running")
    page.get_by_role("link", name="Cancel run…").click()
    expect(page.get_by_role("heading", name="Cancel this run")).to_be_visible()
    shot(page, "console-run-confirm-cancel")
    page.get_by_label("Reason").fill("stuck on a tool")
    page.get_by_role("button", name="Request the cancel").click()
    expect(page.get_by_role("status")).to_contain_text("Cancel requested")
    expect(page.get_by_role("status")).to_contain_text("is pending; the run now reads cancel requested")
    expect(page.locator("h1 .chip")).to_have_text("cancel requested")
    expect(page.locator("tr.action")).to_contain_text("pending")
    expect(page.locator(".run-actions")).to_contain_text("A cancel is already pending")
    shot(page, "console-run-canceled")
    page.goto(f"/ui/runs/{rid}/confirm/cancel")
    expect(page.get_by_role("alert")).to_contain_text("A cancel is already pending")
    api = env.run("live-cancel")
    assert api["status"] == "cancel_requested"
    assert [(a["kind"], a["state"], a["reason"]) for a in api["actions"]] == [
        ("cancel", "pending", "stuck on a tool")
    ]
    assert api["actions"][0]["requested_by"].startswith("ola (operator)")


def test_a_finished_run_cannot_be_canceled(env: Env, page: Page) -> None:
    rid = env.runs["retried"]
    sign_in(page, env.keys["operator"], f"/ui/runs/{rid}/confirm/cancel")
    expect(page.get_by_role("alert")).to_contain_text("Cannot be canceled: the run is completed;")
    assert page.get_by_role("button", name="Request the cancel").count() == 0
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "wrm_csrf")
    got = page.request.post(
        f"/ui/runs/{rid}/cancel", form={"csrf": token, "key": str(uuid.uuid4()), "reason": "x"}
    )
    assert got.status == 409 and "already completed" in got.text()
    assert env.run("retried")["actions"] == []


def test_a_rerun_with_context_is_recorded_as_the_api_shows(env: Env, page: Page) -> None:
    rid = env.runs["failed"]
    sign_in(page, env.keys["operator"], f"/ui/runs/{rid}")
    page.get_by_role("link", name="Re-run with context…").click()
    page.get_by_label("Context").fill('{"temperature": 0.2,')
    page.get_by_role("button", name="Request the re-run").click()
    expect(page.locator("#err-context")).to_contain_text("not JSON")
    shot(page, "console-run-rerun-refused")
    expect(page.get_by_label("Context")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Context").fill("[1, 2]")
    page.get_by_role("button", name="Request the re-run").click()
    expect(page.locator("#err-context")).to_contain_text("a JSON object")
    assert env.run("failed")["actions"] == []
    page.get_by_label("Reason").fill("try a cooler model")
    page.get_by_label("Context").fill('{"temperature": 0.2, "model": "test-model-2"}')
    sent = {f: page.locator(f"main input[name={f}]").input_value() for f in ("csrf", "key", "reason")}
    page.get_by_role("button", name="Request the re-run").click()
    expect(page.get_by_role("status")).to_contain_text("Re-run requested")
    again = page.request.post(f"/ui/runs/{rid}/rerun", form={**sent, "context": "{}"})
    assert again.ok and "Re-run requested" in again.text()  # the same form sent twice: one request
    expect(page.get_by_role("status")).to_contain_text("is pending")
    expect(page.locator("tr.action")).to_contain_text('"temperature": 0.2')
    actions = env.run("failed")["actions"]
    assert [(a["kind"], a["state"], a["reason"]) for a in actions] == [
        ("rerun", "pending", "try a cooler model")
    ]
    assert actions[0]["context"] == {"temperature": 0.2, "model": "test-model-2"}


def test_notes_and_tags_from_the_page_reach_the_api(env: Env, page: Page) -> None:
    rid = env.runs["retried"]
    sign_in(page, env.keys["operator"], f"/ui/runs/{rid}")
    page.get_by_role("link", name="Add a note…").click()
    page.get_by_label("Note").fill("Checked by hand: the retry was the model's timeout.")
    page.get_by_label("Label").fill("reviewed")
    page.get_by_label("Score").fill("0.9")
    page.get_by_role("button", name="Add the note").click()
    expect(page.get_by_role("status")).to_contain_text("Note added")
    expect(page.locator("li.note")).to_contain_text("Checked by hand")
    expect(page.locator("li.note")).to_contain_text("label reviewed · score 0.9")
    expect(page.locator("ol.timeline li.k-annotation")).to_contain_text("Note by ola (operator)")
    page.get_by_role("link", name="Add or remove a tag…").click()
    page.get_by_role("textbox", name="Tag").fill("needs review")  # a space: not a tag
    page.get_by_role("button", name="Change the tag").click()
    expect(page.locator("#err-tag")).to_contain_text("1-64 letters")
    page.get_by_role("textbox", name="Tag").fill("needs-review")
    page.get_by_role("button", name="Change the tag").click()
    expect(page.get_by_role("status")).to_contain_text("tags now: needs-review")
    expect(page.locator(".run-what .tag")).to_have_text(["needs-review"])
    api = env.run("retried")
    assert api["tags"] == ["needs-review"]
    assert [(n["text"], n["label"], n["score"]) for n in api["annotations"]] == [
        ("Checked by hand: the retry was the model's timeout.", "reviewed", 0.9)
    ]
    page.get_by_role("link", name="Add or remove a tag…").click()
    page.get_by_role("link", name="Remove the tag needs-review").click()
    expect(page.get_by_role("textbox", name="Tag")).to_have_value("needs-review")
    expect(page.get_by_label("Remove it")).to_be_checked()
    page.get_by_role("button", name="Change the tag").click()
    expect(page.get_by_role("status")).to_contain_text("tags now: none")
    assert env.run("retried")["tags"] == []


def test_a_viewer_and_a_forged_form_are_refused_and_nothing_is_done(env: Env) -> None:
    rid = env.runs["live-keep"]
    form = {"key": str(uuid.uuid4()), "reason": "no"}
    with httpx.Client(base_url=env.url, follow_redirects=False) as c:
        c.cookies.set("wrm_key", env.keys["viewer"], path="/ui")
        assert c.get(f"/ui/runs/{rid}").status_code == 200
        token = c.cookies.get("wrm_csrf")
        assert token
        refused = c.post(f"/ui/runs/{rid}/cancel", data={**form, "csrf": token})
        assert refused.status_code == 403 and "Not allowed" in refused.text
        assert c.post(f"/ui/runs/{rid}/tag", data={"tag": "x", "csrf": token}).status_code == 403
        assert c.get(f"/ui/runs/{rid}/confirm/cancel").status_code == 403
    with httpx.Client(base_url=env.url, follow_redirects=False) as c:
        c.cookies.set("wrm_key", env.keys["operator"], path="/ui")
        assert c.get(f"/ui/runs/{rid}").status_code == 200
        forged = c.post(f"/ui/runs/{rid}/cancel", data={**form, "csrf": "f" * 43})
        assert forged.status_code == 400 and "did not come from this console" in forged.text
        assert c.post(f"/ui/runs/{rid}/cancel", data=form).status_code == 400
    api = env.run("live-keep")
    assert api["status"] == "running" and api["actions"] == [] and api["tags"] == []


def test_another_tenants_run_and_an_unknown_run_are_not_found(env: Env, page: Page) -> None:
    sign_in(page, env.keys["viewer"], f"/ui/runs/{env.runs['globex']}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    with httpx.Client(base_url=env.url) as c:
        c.cookies.set("wrm_key", env.keys["globex"], path="/ui")
        assert c.get(f"/ui/runs/{env.runs['retried']}").status_code == 404
        assert c.get(f"/ui/runs/{env.runs['globex']}").status_code == 200
        assert c.get("/ui/runs/no-such-run").status_code == 404
        c.cookies.set("wrm_key", ADMIN_KEY, path="/ui")  # the platform names the tenant
        assert c.get(f"/ui/runs/{env.runs['retried']}").status_code == 404
        theirs = c.get(f"/ui/runs/{env.runs['retried']}", params={"tenant": "acme"})
        assert theirs.status_code == 200 and 'href="/ui/runs/' in theirs.text
        assert f"/ui/runs/{env.runs['retried']}/confirm/rerun?tenant=acme" in theirs.text
