"""Consent through the gateway on the real broker and worker: in a Bundle each patient's
resources take that patient's own Consent, and a restriction refnet cannot represent is
refused at the door rather than dropped."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.network import builders as b
from tests.network.conftest import Network
from tests.network.test_gateway_flows import (
    CLINIC,
    PANTRY,
    GatewayProcess,
    ahc_screening,
    auth,
    consent,
    patient,
    provision,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def gateway(network: Network) -> AsyncIterator[GatewayProcess]:
    process = GatewayProcess(network)
    try:
        yield process
    finally:
        process.stop()


def _entry(url: str, resource: dict[str, Any]) -> dict[str, Any]:
    kind = resource["resourceType"]
    return {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": kind}}


def _two_patients() -> dict[str, Any]:
    """Ana (granted, food) first, then Bo, whose own Consent is rejected."""
    entries = []
    for n, (pid, given, status) in enumerate(
        (("pt-a", "Ana", "active"), ("pt-b", "Bo", "rejected"))
    ):
        person = {**patient(pid), "id": pid, "name": [{"given": [given]}]}
        their_consent = {**consent(["food-insecurity"]), "status": status}
        their_consent["patient"] = {"reference": f"Patient/{pid}"}
        del their_consent["id"]
        screening = copy.deepcopy(ahc_screening())
        screening["id"] = f"scr-{pid}"
        screening["subject"] = {"reference": f"Patient/{pid}"}
        entries += [
            _entry(f"urn:uuid:00000000-0000-4000-8000-00000000000{n}", person),
            _entry(f"urn:uuid:00000000-0000-4000-8000-00000000001{n}", their_consent),
            _entry(f"urn:uuid:00000000-0000-4000-8000-00000000002{n}", screening),
        ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def test_each_patient_in_a_bundle_is_sent_out_under_their_own_consent_only(
    network: Network, gateway: GatewayProcess
) -> None:
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [PANTRY])
    await network.publish(t.directory, "svc-food", b.service("svc-food", PANTRY))
    network.start_worker()
    gateway.start()
    await gateway.up()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:
        answer = await client.post("/fhir", json=_two_patients(), headers=auth(tokens[CLINIC]))
        assert answer.status_code == 200, answer.text
        offers = await network.read(t.org_referrals(PANTRY), count=1, timeout=60)
        assert [o["patient"]["given_name"] for o in offers] == ["Ana"]
        assert len(await network.read(t.org_referrals(PANTRY), timeout=6)) == 1
        screenings = await network.read(t.screenings, count=2, timeout=60)
        granted = {
            s["patient_id"].rsplit(":", 1)[-1]: s["consented_categories"] for s in screenings
        }
        assert granted == {"pt-a": ["food-insecurity"], "pt-b": []}

        limited = copy.deepcopy(_two_patients())
        limited["entry"][1]["resource"]["provision"]["actor"] = [
            {"reference": {"reference": "Organization/someone"}}
        ]
        refused = await client.post("/fhir", json=limited, headers=auth(tokens[CLINIC]))
        assert refused.status_code == 422, refused.text
        outcome = refused.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "Consent.provision.actor" in outcome["issue"][0]["diagnostics"]
