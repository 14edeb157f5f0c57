"""`refnet gateway` against the real broker, FHIR as implementers expect it (issue 18,
items 16, 18 and 20; no worker: the test writes the parties' topics itself).

References are readable by the party that may see them (404 to others); reads carry
``ETag`` and ``meta.versionId`` and an update with a stale ``If-Match`` is 412; a
PATCH never moves ``lastModified`` backwards; searches page with ``_count`` and
``next``, refuse or report unknown parameters, sort by ``_lastUpdated`` and leave out
an empty ``entry``; a ``text/plain`` body is 415; a new Subscription is ``requested``
until its endpoint answers the handshake.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from connectors.fhir.mapping import fhir_id
from connectors.fhir.subscriptions import TASK_TOPIC
from schemas.events import ReferralOffered, ReferralStatusRecorded, ReferralUpdated
from tests.network.conftest import Network, network  # noqa: F401 - the fixture
from tests.network.test_gateway_flows import (
    GatewayProcess,
    Receiver,
    auth,
    eventually,
    provision,
)

pytestmark = pytest.mark.integration

CLINIC, ORG, OTHER = "reads-clinic", "reads-org", "reads-org-2"


@pytest.fixture
async def running(network: Network) -> AsyncIterator[tuple[GatewayProcess, dict[str, str]]]:  # noqa: F811
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [ORG, OTHER])
    process = GatewayProcess(network)
    process.start()
    try:
        await process.up()
        yield process, tokens
    finally:
        process.stop()


def _offer(n: int) -> ReferralOffered:
    return ReferralOffered.new(
        referral_id=f"{CLINIC}:ref-{n}",
        service_id="svc-1",
        category="food-insecurity",
        respond_by="2030-01-01T00:00:00Z",
        attempt=1,
        patient={"given_name": "Colin", "phone": "+17185550100", "postal_code": "10451"},
    )


def _outcome(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome", answer.text
    return str(answer.json()["issue"][0]["diagnostics"])


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    for link in bundle.get("link", []):
        if link["relation"] == relation:
            parts = urlsplit(link["url"])
            return f"{parts.path}?{parts.query}"
    return None


async def _publish(network: Network) -> None:  # noqa: F811
    for n in range(3):
        await network.publish(network.topics.org_referrals(ORG), f"{CLINIC}:ref-{n}", _offer(n))
    update = ReferralUpdated.new(
        referral_id=f"{CLINIC}:ref-9",
        patient_id="pt-9",
        category="food-insecurity",
        status="requested",
        attempt=1,
    )
    await network.publish(network.topics.clinic_updates(CLINIC), "pt-9", update)


async def test_searches_page_sort_and_refuse_or_report_unknown_parameters(
    network: Network,  # noqa: F811
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    org = auth(tokens[ORG])
    await _publish(network)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:

        async def three() -> dict[str, Any] | None:
            got = (await client.get("/fhir/Task", headers=org)).json()
            return got if got.get("total") == 3 else None

        await eventually(three, timeout=30, what="three offers")
        first = await client.get("/fhir/Task?status=requested&_count=2", headers=org)
        assert first.status_code == 200, first.text
        page = first.json()
        assert page["total"] == 3 and len(page["entry"]) == 2
        assert ("status", "requested") in parse_qsl(urlsplit(page["link"][0]["url"]).query)
        ids = [e["resource"]["id"] for e in page["entry"]]
        following = _link(page, "next")
        assert following is not None
        rest = (await client.get(following, headers=org)).json()
        ids += [e["resource"]["id"] for e in rest["entry"]]
        assert _link(rest, "next") is None
        assert sorted(ids) == sorted(fhir_id(f"{CLINIC}:ref-{n}") for n in range(3))

        unknown = "/fhir/Task?status=requested&patient=Patient/x"
        assert "patient" in _outcome(await client.get(unknown, headers=org), 400)
        strict = {**org, "Prefer": "handling=strict"}
        _outcome(await client.get(unknown, headers=strict), 400)
        lenient = await client.get(unknown, headers={**org, "Prefer": "handling=lenient"})
        assert lenient.status_code == 200, lenient.text
        self_link = _link(lenient.json(), "self") or ""
        assert "status=requested" in self_link and "patient" not in self_link

        _outcome(await client.get("/fhir/Task?_sort=status", headers=org), 400)
        newest = (await client.get("/fhir/Task?_sort=-_lastUpdated", headers=org)).json()
        times = [e["resource"]["meta"]["lastUpdated"] for e in newest["entry"]]
        assert times == sorted(times, reverse=True)

        empty = await client.get("/fhir/Task", headers=auth(tokens[OTHER]))
        assert empty.status_code == 200 and empty.json()["total"] == 0
        assert "entry" not in empty.json()


async def test_references_are_readable_versioned_and_updated_on_condition(
    network: Network,  # noqa: F811
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    org, other, clinic = auth(tokens[ORG]), auth(tokens[OTHER]), auth(tokens[CLINIC])
    await _publish(network)
    ident = fhir_id(f"{CLINIC}:ref-0")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:

        async def offered() -> httpx.Response | None:
            got = await client.get(f"/fhir/Task/{ident}", headers=org)
            return got if got.status_code == 200 else None

        read = await eventually(offered, timeout=30, what="the offer")
        task = read.json()
        assert read.headers["etag"] == f'W/"{task["meta"]["versionId"]}"'
        assert task["basedOn"] == [{"reference": f"ServiceRequest/{ident}"}]
        for reference in (task["focus"]["reference"], task["for"]["reference"]):
            seen = await client.get(f"/fhir/{reference}", headers=org)
            assert seen.status_code == 200, seen.text
            assert f"{seen.json()['resourceType']}/{seen.json()['id']}" == reference
            assert "etag" in seen.headers
            _outcome(await client.get(f"/fhir/{reference}", headers=other), 404)

        async def clinic_sees() -> httpx.Response | None:
            got = await client.get(f"/fhir/Task/{fhir_id(f'{CLINIC}:ref-9')}", headers=clinic)
            return got if got.status_code == 200 else None

        clinic_task = (await eventually(clinic_sees, timeout=30, what="the update")).json()
        for reference in (clinic_task["focus"]["reference"], clinic_task["for"]["reference"]):
            assert (await client.get(f"/fhir/{reference}", headers=clinic)).status_code == 200
            _outcome(await client.get(f"/fhir/{reference}", headers=org), 404)

        accept = [{"op": "replace", "path": "/status", "value": "accepted"}]
        patch = {**org, "content-type": "application/json-patch+json"}
        stale = await client.patch(
            f"/fhir/Task/{ident}", json=accept, headers={**patch, "If-Match": 'W/"0ld"'}
        )
        _outcome(stale, 412)
        plain = await client.patch(
            f"/fhir/Task/{ident}",
            content=json.dumps(accept),
            headers={**org, "content-type": "text/plain"},
        )
        _outcome(plain, 415)
        pending = await client.patch(
            f"/fhir/Task/{ident}", json=accept, headers={**patch, "If-Match": read.headers["etag"]}
        )
        # no worker here: the network's answer is pending, the Task is as the network has it
        assert pending.status_code == 202, pending.text
        assert pending.json()["status"] == "requested"
        assert pending.headers["etag"] == read.headers["etag"]
        # the test plays the network: it records the organization's update
        (sent,) = await network.read(network.topics.org_updates(ORG), count=1)
        recorded = ReferralStatusRecorded.new(
            referral_id=f"{CLINIC}:ref-0", status="accepted", cause_event_id=sent["event_id"]
        )
        await network.publish(network.topics.org_referrals(ORG), f"{CLINIC}:ref-0", recorded)

        async def changed() -> httpx.Response | None:
            got = await client.get(f"/fhir/Task/{ident}", headers=org)
            return got if got.json()["status"] == "accepted" else None

        again = await eventually(changed, timeout=30, what="the network's record")
        assert again.headers["etag"] != read.headers["etag"]
        modified = [datetime.fromisoformat(t["lastModified"]) for t in (task, again.json())]
        assert modified[1] >= modified[0]
        # the version read before the change no longer updates
        _outcome(
            await client.patch(
                f"/fhir/Task/{ident}",
                json=accept,
                headers={**patch, "If-Match": read.headers["etag"]},
            ),
            412,
        )


async def test_a_new_subscription_is_active_after_its_handshake_or_in_error(
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    org = auth(tokens[ORG])
    async with (
        Receiver() as answering,
        Receiver(fail_first=1) as failing,
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as client,
    ):
        statuses = {}
        for receiver in (answering, failing):
            made = await client.post(
                "/fhir/Subscription",
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "referrals",
                    "criteria": TASK_TOPIC,
                    "channel": {"type": "rest-hook", "endpoint": receiver.url},
                },
                headers=org,
            )
            assert made.status_code == 201, made.text
            assert made.json()["status"] == "requested"
            location = urlsplit(made.headers["location"]).path

            async def settled(path: str = location) -> str | None:
                status = (await client.get(path, headers=org)).json()["status"]
                return None if status == "requested" else str(status)

            statuses[receiver.url] = await eventually(settled, timeout=30, what="the handshake")
        assert statuses == {answering.url: "active", failing.url: "error"}
        (call,) = answering.calls
        body = json.loads(call[1])
        parameters = body["entry"][0]["resource"]["parameter"]
        assert {"name": "type", "valueCode": "handshake"} in parameters


REFERRAL = {
    "resourceType": "ServiceRequest",
    "id": "ref-5",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "#pat"},
    "category": [
        {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/"
                    "SDOHCC-CodeSystemTemporaryCodes",
                    "code": "food-insecurity",
                }
            ]
        }
    ],
    "contained": [
        {"resourceType": "Patient", "id": "pat", "name": [{"given": ["Ana"]}]},
        {
            "resourceType": "Consent",
            "id": "c",
            "status": "active",
            "patient": {"reference": "#pat"},
        },
    ],
}


async def test_a_posted_referral_is_located_at_its_readable_service_request(
    network: Network,  # noqa: F811
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    clinic = auth(tokens[CLINIC])
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        posted = await client.post("/fhir/ServiceRequest", json=REFERRAL, headers=clinic)
        assert posted.status_code == 201, posted.text
        location = urlsplit(posted.headers["location"]).path
        assert location.startswith("/fhir/ServiceRequest/"), location
        found = re.search(r"accepted as referral (\S+);", posted.text)
        assert found is not None, posted.text
        referral_id = found[1]
        # the network answers the referral (as the worker would) on the clinic's updates topic
        update = ReferralUpdated.new(
            referral_id=referral_id,
            patient_id="pt-5",
            category="food-insecurity",
            status="requested",
            attempt=1,
        )
        await network.publish(network.topics.clinic_updates(CLINIC), "pt-5", update)

        async def readable() -> httpx.Response | None:
            got = await client.get(location, headers=clinic)
            return got if got.status_code == 200 else None

        read = await eventually(readable, timeout=30, what="the ServiceRequest")
        assert read.json()["resourceType"] == "ServiceRequest"
        assert read.json()["identifier"][0]["value"] == referral_id
        _outcome(await client.get(location, headers=auth(tokens[ORG])), 404)
