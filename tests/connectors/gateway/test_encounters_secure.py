"""On a secured broker (SASL_SSL, ACLs) the gateway publishes a facility's Encounter with
the facility's own login, and reads an organization's alerts with the organization's."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from deploy.provision import provision_party
from schemas.events import EncounterAlerted
from tests.connectors.fhir.examples import encounter
from tests.network.test_gateway_flows import GatewayProcess, auth, eventually
from tests.network.test_secure_flows import SecureNetwork, secure_network  # noqa: F401
from tests.secure_clients import consume, fresh_group, kafka_config, produce

pytestmark = pytest.mark.integration

FACILITY, ORG = "st-agnes", "bronx-pantry"


async def test_the_gateway_acts_as_the_facility_and_as_the_organization(
    secure_network: SecureNetwork,  # noqa: F811
) -> None:
    net = secure_network
    t = net.topics
    await net.provision([], [ORG])
    facility = await asyncio.to_thread(provision_party, net.admin, t, "facility", FACILITY)
    assert facility.credentials is not None and facility.api_token
    org_token = json.loads(net.files[ORG].read_text())["api_token"]
    network_login = kafka_config(net.files["network"])
    gateway = GatewayProcess(net)
    gateway.start()
    try:
        await gateway.up()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            made = await client.post(
                "/fhir/Encounter",
                json=encounter("in-progress", "EMER"),
                headers=auth(facility.api_token),
            )
            assert made.status_code == 201, made.text
            read = await asyncio.to_thread(
                consume,
                network_login,
                t.facility_submissions(FACILITY),
                group=fresh_group(f"{net.app_id}-"),
                count=1,
                timeout=30,
            )
            assert not read.errors, read.errors
            assert [(v["event_type"], v["event"]) for v in read.values] == [
                ("encounter.notified", "ed-visit")
            ]

            alert = EncounterAlerted.new(
                referral_id="ref-1",
                event="ed-visit",
                encounter_class="EMER",
                encounter_on="2026-12-05",
                encounter_event_id=uuid.uuid4(),
            )
            sent = await asyncio.to_thread(
                produce, network_login, t.org_referrals(ORG), [("ref-1", alert)]
            )
            assert sent.delivered == 1, sent.errors

            async def alerts() -> list[Any] | None:
                got = await client.get("/fhir/Communication", headers=auth(org_token))
                assert got.status_code == 200, got.text
                return got.json().get("entry") or None

            (entry,) = await eventually(alerts, timeout=30, what="the organization's alert")
            assert entry["resource"]["id"] == str(alert.event_id)
        assert "AuthorizationFailed" not in gateway.log(), gateway.log()
    finally:
        gateway.stop()
