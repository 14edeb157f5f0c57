"""On a secured broker the gateway's one reader reads every inbox as the gateway; an inbox
the broker refuses it (a party provisioned before the gateway's READ existed) is left out
and said so, and every other party's view is read on. A clinic's Bundle is one
transaction under the clinic's own principal and transactional ids."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from connectors.kafka.admin import Acl, delete_acls
from deploy.provision.principals import network_principal
from schemas.events import EncounterAlerted
from tests.connectors.gateway.test_bundles import _bundle
from tests.network.test_gateway_flows import CLINIC, GatewayProcess, auth, eventually
from tests.network.test_secure_flows import SecureNetwork, secure_network  # noqa: F401
from tests.secure_clients import consume, fresh_group, kafka_config, produce

pytestmark = pytest.mark.integration

ORG, REFUSED = "bronx-pantry", "old-pantry"


async def test_an_inbox_the_broker_refuses_the_gateway_stops_no_other_party(
    secure_network: SecureNetwork,  # noqa: F811
) -> None:
    net = secure_network
    t = net.topics
    await net.provision([], [ORG, REFUSED])
    rule = Acl(f"User:{network_principal(t)}", "topic", t.org_referrals(REFUSED), "READ")
    assert await asyncio.to_thread(delete_acls, net.bootstrap, [rule], auth=net.admin.auth) == 1
    tokens = {org: json.loads(net.files[org].read_text())["api_token"] for org in (ORG, REFUSED)}
    network_login = kafka_config(net.files["network"])
    alert = EncounterAlerted.new(
        referral_id="ref-1",
        event="ed-visit",
        encounter_class="EMER",
        encounter_on="2026-12-05",
        encounter_event_id=uuid.uuid4(),
    )
    for org in (ORG, REFUSED):
        sent = await asyncio.to_thread(produce, network_login, t.org_referrals(org), [("r", alert)])
        assert sent.delivered == 1, sent.errors
    gateway = GatewayProcess(net)
    gateway.start()
    try:
        await gateway.up()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            refused = await client.get("/fhir/Communication", headers=auth(tokens[REFUSED]))
            assert refused.status_code == 503, refused.text

            async def alerts() -> list[Any] | None:
                got = await client.get("/fhir/Communication", headers=auth(tokens[ORG]))
                assert got.status_code == 200, got.text
                return got.json().get("entry") or None

            (entry,) = await eventually(alerts, timeout=30, what="the organization's alert")
            assert entry["resource"]["id"] == str(alert.event_id)
        assert t.org_referrals(REFUSED) in gateway.log(), gateway.log()
    finally:
        gateway.stop()


async def test_a_clinics_bundle_is_one_transaction_under_its_own_login(
    secure_network: SecureNetwork,  # noqa: F811
) -> None:
    net = secure_network
    t = net.topics
    await net.provision([CLINIC], [])
    token = json.loads(net.files[CLINIC].read_text())["api_token"]
    gateway = GatewayProcess(net)
    gateway.start()
    try:
        await gateway.up()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            sent = await client.post("/fhir", json=_bundle("call after 5pm"), headers=auth(token))
            assert sent.status_code == 200, sent.text
        committed = {**kafka_config(net.files["network"]), "isolation.level": "read_committed"}
        read = await asyncio.to_thread(
            consume,
            committed,
            t.clinic_submissions(CLINIC),
            group=fresh_group(f"{net.app_id}-"),
            count=2,
            timeout=30,
        )
        assert not read.errors, read.errors
        assert [v["event_type"] for v in read.values] == [
            "screening.submitted",
            "referral.requested",
        ]
        assert "AuthorizationFailed" not in gateway.log(), gateway.log()
    finally:
        gateway.stop()
