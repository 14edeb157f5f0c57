"""Tasks show the network's truth (issue 18, item 14), on the real broker with a real
worker and `refnet gateway` as its own process.

An organization answering through its own Kafka client (a plain aiokafka producer)
reads the network's status through the gateway and in the web inbox (completed, no
Accept or Reject); a PATCH the lifecycle forbids is refused before anything is
published; an update the network refuses shows as refused on the Task.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.fhir.mapping import fhir_id
from connectors.fhir.tasks import REFUSED_PREFIX
from schemas.events import DeadLetterSource, MessageRefused, OfferState, ReferralOffered, Refusal
from streams.decisions.commands import network_referral_id
from tests.network import builders as b
from tests.network.conftest import Network, network  # noqa: F401 - the fixture
from tests.network.test_gateway_flows import GatewayProcess, auth, eventually, provision

pytestmark = pytest.mark.integration

CLINIC, ORG = "truth-clinic", "truth-pantry"


def _answer(rid: str, status: str, offer: dict[str, Any], **fields: Any) -> Any:
    """What an organization's own Kafka client sends: bound to the offer it answers."""
    event = b.status(rid, status, **fields)
    return event.model_copy(update={"attempt": offer["attempt"], "service_id": offer["service_id"]})


class OrgTasks:
    """The organization's Tasks through the gateway."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {**auth(token), "Content-Type": "application/json-patch+json"}

    async def task(self, rid: str, status: str, note: str = "") -> dict[str, Any] | None:
        """The Task of ``rid`` once it reads ``status`` (and a network note holding ``note``)."""
        got = await self.client.get(f"/fhir/Task/{fhir_id(rid)}", headers=self.headers)
        body: dict[str, Any] = got.json()
        if got.status_code != 200 or body["status"] != status:
            return None
        texts = [n["text"] for n in body.get("note") or []]
        if note and not any(t.startswith(REFUSED_PREFIX) and note in t for t in texts):
            return None
        return body

    async def patch(self, rid: str, operations: list[dict[str, Any]]) -> httpx.Response:
        path = f"/fhir/Task/{fhir_id(rid)}"
        return await self.client.patch(path, json=operations, headers=self.headers)


async def test_tasks_show_the_networks_status_and_forbidden_moves_publish_nothing(
    network: Network,  # noqa: F811
) -> None:
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [ORG])
    await network.publish(t.directory, "svc-food", b.service("svc-food", ORG))
    network.start_worker()
    gateway = GatewayProcess(network)
    gateway.start()
    done_rid, open_rid = (network_referral_id(CLINIC, r) for r in ("ref-1", "ref-2"))
    try:
        await gateway.up()
        await network.publish(t.clinic_submissions(CLINIC), "pt-1", b.requested("ref-1"))
        second = b.requested("ref-2", patient_fields=b.patient("pt-2"))
        await network.publish(t.clinic_submissions(CLINIC), "pt-2", second)
        offers = await network.read(t.org_referrals(ORG), count=2, timeout=60)
        offer = {o["referral_id"]: o for o in offers}

        # the organization accepts and completes ref-1 through its own Kafka client
        accepted = _answer(done_rid, "accepted", offer[done_rid])
        await network.publish(t.org_updates(ORG), done_rid, accepted)
        completed = _answer(done_rid, "completed", offer[done_rid], outcome="enrolled")
        await network.publish(t.org_updates(ORG), done_rid, completed)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            tasks = OrgTasks(client, tokens[ORG])
            done = await eventually(lambda: tasks.task(done_rid, "completed"), what="completed")
            assert "enrolled" in str(done["output"])

            # a move the lifecycle forbids (requested -> completed) is refused and not sent
            refused = await tasks.patch(
                open_rid,
                [
                    {"op": "replace", "path": "/status", "value": "completed"},
                    {"op": "add", "path": "/output", "value": [{"valueString": "done"}]},
                ],
            )
            assert refused.status_code == 409, refused.text
            assert refused.json()["resourceType"] == "OperationOutcome"
            assert "requested" in refused.text and "completed" in refused.text
            sent = await network.read(t.org_updates(ORG), timeout=3)
            assert [v["referral_id"] for v in sent] == [done_rid, done_rid]

            await _refused_updates_show_on_the_task(network, tasks, open_rid, offer[open_rid])
        await _inbox_shows_completed_without_buttons(gateway, tokens[ORG])
    finally:
        gateway.stop()


async def _refused_updates_show_on_the_task(
    network: Network,  # noqa: F811
    tasks: OrgTasks,
    rid: str,
    offer: dict[str, Any],
) -> None:
    t = network.topics
    # an update the network refuses (in-progress before accepting, from the organization's
    # Kafka client) shows as refused; the status stays the network's
    await network.publish(t.org_updates(ORG), rid, _answer(rid, "in-progress", offer))
    await eventually(lambda: tasks.task(rid, "requested", "transition"), what="the refusal")

    # an allowed PATCH is answered with the network's decision, and the refusal is gone
    accepted = await tasks.patch(rid, [{"op": "replace", "path": "/status", "value": "accepted"}])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and "note" not in accepted.json()

    # the clinic cancels: the offer is withdrawn; a late update is refused, and shown so
    await network.publish(t.clinic_submissions(CLINIC), "pt-2", b.cancelled("ref-2"))
    await eventually(lambda: tasks.task(rid, "cancelled"), what="the withdrawal")
    await network.publish(t.org_updates(ORG), rid, _answer(rid, "in-progress", offer))
    await eventually(lambda: tasks.task(rid, "cancelled", "withdrawn"), what="the late refusal")


async def _inbox_shows_completed_without_buttons(gateway: GatewayProcess, token: str) -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "chromium is missing: deploy/bootstrap.sh installs it"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{gateway.url}/inbox")
            await page.fill("#token", token)
            await page.click("#signin-button")
            # locators, not wait_for_function: the inbox's CSP forbids eval
            done = page.locator(".task[data-status='completed']")
            await done.wait_for(timeout=20_000)
            assert await done.locator(".actions button").count() == 0
            assert await page.locator(".task[data-status='requested']").count() == 0
            refused = page.locator(".task[data-refused='true'] .refused")
            await refused.wait_for(timeout=20_000)
            assert (await refused.inner_text()).startswith(REFUSED_PREFIX)
        finally:
            await browser.close()


async def test_an_update_the_network_refuses_after_it_was_sent_answers_409_with_its_rule(
    network: Network,  # noqa: F811
) -> None:
    """No worker: the test plays the network, refusing the update the gateway published."""
    t = network.topics
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [ORG])
    gateway = GatewayProcess(network)
    gateway.start()
    rid = network_referral_id(CLINIC, "ref-9")
    offer = ReferralOffered.new(
        referral_id=rid,
        service_id="svc-1",
        category="food-insecurity",
        respond_by="2030-01-01T00:00:00Z",
        attempt=1,
        patient={"given_name": "Colin", "phone": "+17185550100", "postal_code": "10451"},
    )
    try:
        await gateway.up()
        await network.publish(t.org_referrals(ORG), rid, offer)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            tasks = OrgTasks(client, tokens[ORG])
            await eventually(lambda: tasks.task(rid, "requested"), what="the offer")
            accept = [{"op": "replace", "path": "/status", "value": "accepted"}]
            patching = asyncio.create_task(tasks.patch(rid, accept))
            (sent,) = await network.read(t.org_updates(ORG), count=1, timeout=30)
            refusal = MessageRefused.new(
                source=DeadLetterSource(topic=t.org_updates(ORG), partition=0, offset=0, key=rid),
                refused_event_id=sent["event_id"],
                refused_event_type="referral.status-changed",
                referral_id=rid,
                error=Refusal(kind="transition", rule="the offer was withdrawn meanwhile"),
                referral_state=OfferState(offer="withdrawn", attempt=1),
            )
            await network.publish(t.org_referrals(ORG), rid, refusal)
            answered = await patching
            assert answered.status_code == 409, answered.text
            assert answered.json()["resourceType"] == "OperationOutcome"
            assert "the offer was withdrawn meanwhile" in answered.text
            task = await tasks.task(rid, "requested", "withdrawn meanwhile")
            assert task is not None, "the Task keeps the network's status and shows the refusal"
    finally:
        gateway.stop()
