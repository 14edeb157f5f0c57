"""The web inbox in a real headless browser (Debian's chromium driven by Playwright) on a
phone-sized screen: sign in with the organization's token, accept an offer, reject another
with a reason, start the first and complete it with an outcome; the clinic sees each step.
Screenshots are kept in artifacts/."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.network import builders as b
from tests.network.conftest import Network, network  # noqa: F401 - the fixture
from tests.network.test_gateway_flows import GatewayProcess, provision

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CLINIC, PANTRY = "mott-haven", "bronx-pantry"


async def test_an_organization_without_it_accepts_and_completes_an_offer_in_the_inbox(
    network: Network,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "chromium is missing: deploy/bootstrap.sh installs it"
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [PANTRY])
    await network.publish(t.directory, "svc-food", b.service("svc-food", PANTRY))
    network.start_worker()
    gateway = GatewayProcess(network)
    gateway.start()
    try:
        await gateway.up()
        await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-1"))
        await network.read(t.org_referrals(PANTRY), count=1, timeout=60)
        second = b.requested("ref-2", patient_fields=b.patient("pt-2"))
        await network.publish(t.clinic_submissions(CLINIC), "pt-2", second)
        await network.read(t.org_referrals(PANTRY), count=2, timeout=60)
        ARTIFACTS.mkdir(exist_ok=True)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = await browser.new_page(
                    viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
                )
                await page.goto(f"{gateway.url}/inbox")
                await page.fill("#token", "rnt_not-a-token")
                await page.click("#signin-button")
                # locators, not wait_for_function: the inbox's CSP forbids eval
                await page.locator("#error", has_text="Sign-in failed").wait_for(timeout=20_000)
                await page.fill("#token", tokens[PANTRY])
                await page.click("#signin-button")
                requested = page.locator(".task[data-status='requested']")
                await requested.nth(1).wait_for(timeout=20_000)
                card = requested.first
                text = await card.inner_text()
                assert "Food Insecurity" in text and "Ana" in text and "+17185550100" in text
                assert "respond within" in text
                assert "1984" not in text, "the birth date is not disclosed"
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, "the inbox must not scroll sideways on a phone"
                await page.screenshot(path=str(ARTIFACTS / "inbox-offer.png"), full_page=True)

                await card.locator("button[data-action='accept']").click()
                await page.locator(".task[data-status='accepted']").wait_for(timeout=20_000)
                # the other offer is rejected: a reason is required, then sent
                other = page.locator(".task[data-status='requested']")
                await other.locator("button[data-action='reject']").click()
                await other.locator("button.confirm").click()
                await page.locator("#error", has_text="reason is required").wait_for(timeout=20_000)
                await other.locator("textarea.text").fill("no-capacity")
                await other.locator("button.confirm").click()
                await page.locator(".task[data-status='rejected']").wait_for(timeout=20_000)
                sent = await network.read(
                    t.org_updates(PANTRY),
                    until=lambda vs: any(v["status"] == "rejected" for v in vs),
                )
                assert next(v for v in sent if v["status"] == "rejected")["reason"] == "no-capacity"
                updates = await network.read(
                    t.clinic_updates(CLINIC),
                    until=lambda vs: any(v["status"] == "accepted" for v in vs),
                )
                assert next(u for u in updates if u["status"] == "accepted")["org_id"] == PANTRY

                await page.locator("button[data-action='start']").click()
                started = page.locator(".task[data-status='in-progress']")
                await started.wait_for(timeout=20_000)
                await started.locator("button[data-action='complete']").click()
                await started.locator("textarea.text").fill("Enrolled in the weekly pantry")
                await started.locator("button.confirm").click()
                done = page.locator(".task[data-status='completed']")
                await done.wait_for(timeout=20_000)
                assert await done.locator(".actions button").count() == 0
                await page.screenshot(path=str(ARTIFACTS / "inbox-completed.png"), full_page=True)
            finally:
                await browser.close()
        updates = await network.read(
            t.clinic_updates(CLINIC),
            until=lambda vs: any(v["status"] == "completed" for v in vs),
        )
        done_update = next(u for u in updates if u["status"] == "completed")
        assert done_update["outcome"] == "Enrolled in the weekly pantry"
    finally:
        gateway.stop()
