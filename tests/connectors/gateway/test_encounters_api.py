"""`refnet gateway` for facilities and hospital alerts, against the real broker (no worker:
the test reads and writes the parties' topics itself).

A facility POSTs an Encounter (alone, or in a transaction Bundle) and a plain consumer
reads exactly the ``encounter.notified`` it maps to; bad bodies get 4xx
OperationOutcomes and publish nothing; ``encounter.alerted`` on an organization's
referrals topic (or a clinic's updates topic) is that party's Communication, its
webhook delivery or Subscription notification, and a card in its web inbox, and
nobody else's.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.kafka.auth import PLAINTEXT
from deploy.provision import Admin, provision_party
from schemas.events import EncounterAlerted
from tests.connectors.fhir.examples import ICD10, bundle, encounter, patient
from tests.network.conftest import Network, network  # noqa: F401 - the fixture
from tests.network.test_gateway_flows import GatewayProcess, Receiver, auth, eventually

pytestmark = pytest.mark.integration

FACILITY, OTHER_FACILITY = "st-agnes", "mercy"
CLINIC, ORG_A, ORG_B = "mott-haven", "bronx-pantry", "harlem-homes"
PARTIES = (
    ("facility", FACILITY),
    ("facility", OTHER_FACILITY),
    ("clinic", CLINIC),
    ("org", ORG_A),
    ("org", ORG_B),
)


def _provision(net: Network) -> dict[str, str]:
    admin = Admin(net.bootstrap, PLAINTEXT, net.data_dir)
    tokens = {}
    for kind, party in PARTIES:
        done = provision_party(admin, net.topics, kind, party)  # type: ignore[arg-type]
        assert done.api_token is not None
        tokens[party] = done.api_token
    return tokens


@pytest.fixture
async def running(network: Network) -> AsyncIterator[tuple[GatewayProcess, dict[str, str]]]:  # noqa: F811
    tokens = await asyncio.to_thread(_provision, network)
    process = GatewayProcess(network)
    process.start()
    try:
        await process.up()
        yield process, tokens
    finally:
        process.stop()


def _outcome(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", response.text
    return str(body["issue"][0]["diagnostics"])


async def test_a_facility_posts_an_encounter_and_a_plain_consumer_reads_exactly_one(
    network: Network,  # noqa: F811
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    topic = network.topics.facility_submissions(FACILITY)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        made = await client.post(
            "/fhir/Encounter", json=encounter(), headers=auth(tokens[FACILITY])
        )
        assert made.status_code == 201, made.text
        assert made.headers["location"].endswith("/fhir/Encounter/V-1001")
        values = await network.read(topic, timeout=3)
        assert len(values) == 1, values
        (sent,) = values
        assert sent["_key"] == "mrn-778"
        assert sent["event_type"] == "encounter.notified"
        assert (sent["event"], sent["encounter_class"], sent["encounter_id"]) == (
            "admit",
            "IMP",
            "V-1001",
        )
        assert datetime.fromisoformat(sent["encounter_at"]) == datetime.fromisoformat(
            "2026-12-05T22:14:00-05:00"
        )
        assert sent["patient"] == {
            "id": "mrn-778",
            "given_name": "Marisol",
            "family_name": "Rivera",
            "birth_date": "1987-04-12",
            "postal_code": "21201",
            "phone": "+14105550142",
        }
        assert [r["code"] for r in sent["reasons"]] == ["J45.901", "195967001"]

        # the facility reads it back (no demographics); nobody else does
        path = "/fhir/Encounter/V-1001"
        read = await client.get(path, headers=auth(tokens[FACILITY]))
        assert read.status_code == 200 and read.json() == made.json()
        assert "Marisol" not in read.text and "1987" not in read.text
        _outcome(await client.get(path, headers=auth(tokens[OTHER_FACILITY])), 404)
        _outcome(await client.get(path, headers=auth(tokens[CLINIC])), 403)

        # a transaction Bundle of Patient and Encounter: a discharge
        discharge = encounter("finished", contained=False, visit="V-1002")
        posted = await client.post(
            "/fhir",
            json=bundle({**patient("mrn-9"), "id": "p1"}, discharge),
            headers=auth(tokens[FACILITY]),
        )
        assert posted.status_code == 200, posted.text
        answers = [e["response"] for e in posted.json()["entry"]]
        assert answers == [
            {"status": "200 OK"},
            {"status": "201 Created", "location": "Encounter/V-1002"},
        ]
        values = await network.read(topic, count=2, timeout=30)
        assert (values[1]["_key"], values[1]["event"]) == ("mrn-9", "discharge")
        metrics = (await client.get("/metrics")).text
        assert 'refnet_gateway_encounters_total{outcome="published"} 2.0' in metrics
    log = gateway.log_path.read_text(errors="replace")
    assert "Marisol" not in log and "1987-04-12" not in log


async def test_bad_encounters_get_4xx_outcomes_and_publish_nothing(
    network: Network,  # noqa: F811
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    facility = auth(tokens[FACILITY])
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        post = client.post
        _outcome(await post("/fhir/Encounter", json=encounter(), headers=auth(tokens[CLINIC])), 403)
        _outcome(await post("/fhir/Encounter", json=encounter(), headers=auth(tokens[ORG_A])), 403)
        _outcome(await post("/fhir", json=bundle(encounter()), headers=auth(tokens[ORG_A])), 403)
        _outcome(await post("/fhir/Encounter", json=encounter()), 401)
        _outcome(await post("/fhir/Encounter", content=b"{not json", headers=facility), 400)
        _outcome(await post("/fhir/Encounter", json=patient(), headers=facility), 400)
        planned = await post("/fhir/Encounter", json=encounter("planned"), headers=facility)
        assert "Encounter.status" in _outcome(planned, 422)
        no_subject = encounter(contained=False)
        assert "Encounter.subject" in _outcome(
            await post("/fhir/Encounter", json=no_subject, headers=facility), 422
        )
        no_birth = encounter()
        no_birth["contained"][0]["birthDate"] = "12 April"
        message = _outcome(await post("/fhir/Encounter", json=no_birth, headers=facility), 422)
        assert "12 April" not in message
        wrong_type = encounter()
        wrong_type["class"] = "IMP"
        _outcome(await post("/fhir/Encounter", json=wrong_type, headers=facility), 422)
        one_bad = bundle(encounter(), encounter("cancelled"))
        _outcome(await post("/fhir", json=one_bad, headers=facility), 422)
        metrics = (await client.get("/metrics")).text
        assert 'refnet_gateway_encounters_total{outcome="refused"} 7.0' in metrics
        assert 'outcome="published"' not in metrics
    assert await network.read(network.topics.facility_submissions(FACILITY), timeout=3) == []


def _alert(**fields: Any) -> EncounterAlerted:
    return EncounterAlerted.new(
        event="ed-visit",
        encounter_class="EMER",
        encounter_on="2026-12-05",
        encounter_event_id=uuid.uuid4(),
        **fields,
    )


async def test_an_alert_is_its_recipients_communication_and_nobody_elses(
    network: Network,  # noqa: F811
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    t = network.topics
    async with (
        Receiver() as hook,
        Receiver() as sub_receiver,
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as client,
    ):
        made = await client.post("/webhooks", json={"url": hook.url}, headers=auth(tokens[ORG_A]))
        assert made.status_code == 201, made.text
        subscription = {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "alerts",
            "criteria": "urn:refnet:SubscriptionTopic:referral-task",
            "channel": {"type": "rest-hook", "endpoint": sub_receiver.url},
        }
        made = await client.post(
            "/fhir/Subscription", json=subscription, headers=auth(tokens[CLINIC])
        )
        assert made.status_code == 201, made.text

        to_org = _alert(referral_id="ref-1")
        to_clinic = _alert(
            patient_id="pt-8c21",
            facility_id=FACILITY,
            encounter_at="2026-12-05T22:14:00-05:00",
            reasons=[{"system": ICD10, "code": "J45.901"}],
        )
        await network.publish(t.org_referrals(ORG_A), "ref-1", to_org)
        await network.publish(t.clinic_updates(CLINIC), "pt-8c21", to_clinic)

        async def found(token: str) -> list[dict[str, Any]] | None:
            got = await client.get("/fhir/Communication", headers=auth(token))
            assert got.status_code == 200, got.text
            return [e["resource"] for e in got.json().get("entry", [])] or None

        (org_alert,) = await eventually(lambda: found(tokens[ORG_A]), timeout=30)
        assert org_alert["id"] == str(to_org.event_id)
        assert org_alert["about"] == [{"reference": "Task/ref-1"}]
        assert "subject" not in org_alert
        (clinic_alert,) = await eventually(lambda: found(tokens[CLINIC]), timeout=30)
        assert clinic_alert["subject"]["identifier"]["value"] == "pt-8c21"
        assert clinic_alert["reasonCode"][0]["coding"][0]["code"] == "J45.901"

        path = f"/fhir/Communication/{org_alert['id']}"
        read = await client.get(path, headers=auth(tokens[ORG_A]))
        assert read.status_code == 200 and read.json() == org_alert
        assert await found(tokens[ORG_B]) is None
        _outcome(await client.get(path, headers=auth(tokens[ORG_B])), 404)
        _outcome(await client.get(path, headers=auth(tokens[CLINIC])), 404)
        _outcome(await client.get("/fhir/Communication", headers=auth(tokens[FACILITY])), 403)

        # the organization's webhook and the clinic's Subscription hear of it
        await eventually(lambda: _async(hook.delivered or None), timeout=30)
        (headers, body, _status) = hook.delivered[0]
        assert json.loads(body)["type"] == "encounter.alerted"
        assert headers["webhook-id"] == str(to_org.event_id)
        await eventually(lambda: _async(sub_receiver.notifications or None), timeout=30)
        note = json.loads(sub_receiver.notifications[0][1])
        assert note["entry"][1]["fullUrl"].endswith(f"/fhir/Communication/{clinic_alert['id']}")

        await _inbox_shows(gateway.url, tokens)


async def _async(value: Any) -> Any:
    return value


async def _inbox_shows(url: str, tokens: dict[str, str]) -> None:
    """The web inbox lists the alert as "Hospital alerts" for its organization only."""
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "chromium is missing: deploy/bootstrap.sh installs it"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for party, expected in ((ORG_A, 1), (ORG_B, 0), (CLINIC, 1)):
                page = await browser.new_page(viewport={"width": 390, "height": 844})
                await page.goto(f"{url}/inbox")
                await page.fill("#token", tokens[party])
                await page.click("#signin-button")
                # locators, not wait_for_function: the inbox's CSP forbids eval
                await page.locator("#app").wait_for(state="visible", timeout=20_000)
                await page.locator(".alert, #no-alerts:not([hidden])").first.wait_for(
                    state="visible", timeout=20_000
                )
                body = await page.inner_text("body")
                assert "Hospital alerts" in body
                cards = page.locator(".alert[data-event='ed-visit']")
                assert await cards.count() == expected, body
                if expected:
                    text = await cards.first.inner_text()
                    assert "Seen in the emergency department" in text and "2026-12-05" in text
                    if party == CLINIC:
                        assert "pt-8c21" in text and FACILITY in text
                    else:
                        assert "ref-1" in text and "pt-8c21" not in text
                await page.close()
        finally:
            await browser.close()
