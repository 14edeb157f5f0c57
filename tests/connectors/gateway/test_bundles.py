"""A clinic's transaction Bundle reaches the network whole or not at all, and a Bundle sent
again publishes the same events (same event ids), so the network's idempotence drops it.

The broker fails midway for real: the clinic's submissions topic takes records of at
most 3,000 bytes, and the Bundle's ServiceRequest (a 3,900-character note) is bigger,
while its QuestionnaireResponse fits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from connectors.kafka.admin import apply_topics
from schemas.codes import SDOH_CATEGORY_SYSTEM
from tests.network import builders as b
from tests.network.conftest import Network, network  # noqa: F401
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


def _bundle(note: str) -> dict[str, Any]:
    the_patient = {**patient("pt-88"), "id": "pt-88"}
    the_consent = {**consent(), "patient": {"reference": "Patient/pt-88"}}
    del the_consent["id"]
    screening = {**ahc_screening(), "subject": {"reference": "Patient/pt-88"}}
    del screening["id"]  # its screening id derives from the Bundle
    referral = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": SDOH_CATEGORY_SYSTEM, "code": "food-insecurity"}]}],
        "subject": {"reference": "Patient/pt-88"},
        "note": [{"text": note}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:8a0e4a53-5a4e-4a9b-8f0e-2f1d7d1b0a11", "resource": the_patient},
            {"fullUrl": "urn:uuid:1c3b7a51-1b7e-4cde-9a55-2e0f3d1e9b21", "resource": the_consent},
            {"fullUrl": "urn:uuid:6d7c2f0e-61e4-4a8a-8f6c-0b9f7e7d3c31", "resource": screening},
            {"fullUrl": "urn:uuid:9e7c2f0e-61e4-4a8a-8f6c-0b9f7e7d3c41", "resource": referral},
        ],
    }


async def _committed(bootstrap: str, topic: str, seconds: float = 4.0) -> list[dict[str, Any]]:
    """Every committed record of ``topic`` (as the worker's ingress reads: read_committed)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    values: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                values += [json.loads(r.value) for r in records]
    finally:
        await consumer.stop()
    return values


async def test_a_bundle_the_broker_refuses_midway_publishes_nothing_and_a_retry_each_event_once(
    network: Network,  # noqa: F811
) -> None:
    t = network.topics
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [])
    submissions = next(
        s for s in t.clinic_catalog(CLINIC) if s.name == t.clinic_submissions(CLINIC)
    )
    small = dataclasses.replace(
        submissions, config={**submissions.config, "max.message.bytes": "3000"}
    )
    await asyncio.to_thread(apply_topics, network.bootstrap, [small])
    bundle = _bundle("Call after 5pm; " + "x" * 3900)
    gateway = GatewayProcess(network)
    gateway.start()
    try:
        await gateway.up()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            refused = await client.post("/fhir", json=bundle, headers=auth(tokens[CLINIC]))
            assert refused.status_code == 503, refused.text
            assert await _committed(network.bootstrap, submissions.name) == []

            roomy = dataclasses.replace(
                small, config={**small.config, "max.message.bytes": "1048588"}
            )
            await asyncio.to_thread(apply_topics, network.bootstrap, [roomy])
            retried = await client.post("/fhir", json=bundle, headers=auth(tokens[CLINIC]))
            assert retried.status_code == 200, retried.text
            first = await _committed(network.bootstrap, submissions.name)
            assert [e["event_type"] for e in first] == ["screening.submitted", "referral.requested"]

            again = await client.post("/fhir", json=bundle, headers=auth(tokens[CLINIC]))
            assert again.status_code == 200, again.text
            assert again.json() == retried.json()
            both = await _committed(network.bootstrap, submissions.name)
        ids = [e["event_id"] for e in both]
        assert len(ids) == 4 and ids[2:] == ids[:2] and len(set(ids)) == 2
        assert both[2]["screening_id"] == both[0]["screening_id"]
        assert both[3]["referral_id"] == both[1]["referral_id"]
        assert "Call after 5pm" not in gateway.log()
    finally:
        gateway.stop()


async def test_the_network_takes_a_bundle_sent_twice_once(
    network: Network,  # noqa: F811
) -> None:
    """The worker, reading the clinic's submissions, has no second effect of the same Bundle
    sent again: no second offer, no second answer."""
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [PANTRY])
    await network.publish(t.directory, "svc-food", b.service("svc-food", PANTRY))
    network.start_worker()
    gateway = GatewayProcess(network)
    gateway.start()
    bundle = _bundle("call after 5pm")
    try:
        await gateway.up()
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            first = await client.post("/fhir", json=bundle, headers=auth(tokens[CLINIC]))
            assert first.status_code == 200, first.text
            offers = await network.read(t.org_referrals(PANTRY), count=1, timeout=60)
            assert offers[0]["event_type"] == "referral.offered"
            await network.read(
                t.clinic_updates(CLINIC),
                until=lambda vs: any(v["event_type"] == "screening.answered" for v in vs),
                answers=True,
            )
            await asyncio.sleep(3)
            settled = await network.read(t.clinic_updates(CLINIC), to_end=True, answers=True)
            again = await client.post("/fhir", json=bundle, headers=auth(tokens[CLINIC]))
            assert again.status_code == 200, again.text
            await asyncio.sleep(8)
        assert len(await network.read(t.org_referrals(PANTRY), to_end=True)) == len(offers)
        after = await network.read(t.clinic_updates(CLINIC), to_end=True, answers=True)
        seen = sorted((v["event_type"], v["event_id"]) for v in settled)
        assert sorted((v["event_type"], v["event_id"]) for v in after) == seen
        network.assert_alive()
    finally:
        gateway.stop()
