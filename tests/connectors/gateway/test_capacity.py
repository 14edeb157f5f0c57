"""`refnet gateway` against the real broker: capacity in the Gravity IG's terms (issue 18,
item 19). An organization PUTs the IG's HealthcareService capacity status (with or
without refnet's count), it travels on ``service.capacity-changed``, and a clinic (the
referral source the IG has query capacity) reads it back; another organization can
neither write nor read it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.fhir.capacity import CAPACITY_EXTENSION
from tests.network.conftest import Network, network  # noqa: F401 - the fixture
from tests.network.test_gateway_flows import GatewayProcess, auth, provision

pytestmark = pytest.mark.integration

CLINIC, ORG, OTHER = "cap-clinic", "cap-org", "cap-org-2"
EXAMPLE = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "fixtures"
        / "fhir"
        / "SDOHCC-HealthcareServiceSocialCareProgram.json"
    ).read_text()
)


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


def _status(resource: dict[str, Any]) -> tuple[str, str]:
    [ext] = [e for e in resource["extension"] if e["url"] == CAPACITY_EXTENSION]
    [part] = [p for p in ext["extension"] if p["url"] == "capacityStatus"]
    [coding] = part["valueCodeableConcept"]["coding"]
    return coding["system"], coding["code"]


async def test_the_igs_capacity_is_carried_and_read_by_clinics_and_only_its_org_writes_it(
    network: Network,  # noqa: F811
    running: tuple[GatewayProcess, dict[str, str]],
) -> None:
    gateway, tokens = running
    org, other, clinic = auth(tokens[ORG]), auth(tokens[OTHER]), auth(tokens[CLINIC])
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        put = await client.put("/fhir/HealthcareService/svc-hacc", json=EXAMPLE, headers=org)
        assert put.status_code == 200, put.text
        assert _status(put.json()) == _status(EXAMPLE)

        read = await client.get("/fhir/HealthcareService/svc-hacc", headers=clinic)
        assert read.status_code == 200, read.text
        assert _status(read.json()) == _status(EXAMPLE)
        assert read.json()["providedBy"] == {"reference": f"Organization/{ORG}"}
        found = (await client.get("/fhir/HealthcareService", headers=clinic)).json()
        assert [_status(e["resource"]) for e in found["entry"]] == [_status(EXAMPLE)]
        own = await client.get("/fhir/HealthcareService/svc-hacc", headers=org)
        assert own.status_code == 200 and _status(own.json()) == _status(EXAMPLE)

        # another organization can neither write this service's capacity nor read it
        taken = await client.put("/fhir/HealthcareService/svc-hacc", json=EXAMPLE, headers=other)
        assert taken.status_code == 403, taken.text
        assert taken.json()["resourceType"] == "OperationOutcome"
        unseen = await client.get("/fhir/HealthcareService/svc-hacc", headers=other)
        assert unseen.status_code == 404
        mine = (await client.get("/fhir/HealthcareService", headers=other)).json()
        assert mine["total"] == 0

        full = json.loads(json.dumps(EXAMPLE))
        coding = full["extension"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]
        coding.update(code="no-capacity", display="No Capacity")
        put = await client.put("/fhir/HealthcareService/svc-hacc", json=full, headers=org)
        assert put.status_code == 200, put.text
        read = await client.get("/fhir/HealthcareService/svc-hacc", headers=clinic)
        assert _status(read.json())[1] == "no-capacity"

    sent = await network.read(network.topics.org_updates(ORG), count=2, timeout=30)
    assert [(e["capacity_status"], e.get("available")) for e in sent] == [
        ("capacity", None),
        ("no-capacity", 0),
    ]
    assert not await network.read(network.topics.org_updates(OTHER), timeout=2)
