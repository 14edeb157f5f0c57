"""`refnet gateway` against the real broker: the QuestionnaireResponse a clinic posts is
readable at the ``Location`` the POST answered (issue 18, item 16), by that clinic only
(404 to another), and still after the gateway restarts once the network has answered
the screening (``screening.answered`` on the clinic's updates topic; no worker here:
the test writes the network's answer itself)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from connectors.fhir.mapping import fhir_id
from schemas.events import ScreeningAnswered, ScreeningSubmitted
from tests.network.conftest import Network, network  # noqa: F401 - the fixture
from tests.network.test_gateway_flows import (
    GatewayProcess,
    auth,
    eventually,
    patient,
    provision,
)

pytestmark = pytest.mark.integration

CLINIC, OTHER, ORG = "qr-clinic", "qr-clinic-2", "qr-org"
QR = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "fixtures"
        / "fhir"
        / "SDOHCC-QuestionnaireResponseHungerVitalSignExample.json"
    ).read_text()
)


@pytest.fixture
async def tokens(network: Network) -> dict[str, str]:  # noqa: F811
    return await asyncio.to_thread(provision, network, [CLINIC, OTHER], [ORG])


@pytest.fixture
async def gateway(network: Network) -> AsyncIterator[GatewayProcess]:  # noqa: F811
    process = GatewayProcess(network)
    process.start()
    try:
        await process.up()
        yield process
    finally:
        process.stop()


def _posted() -> dict[str, Any]:
    return {**QR, "contained": [patient()], "subject": {"reference": "#pat"}}


async def test_the_location_of_a_posted_questionnaire_response_reads_back_to_its_clinic(
    network: Network,  # noqa: F811
    tokens: dict[str, str],
    gateway: GatewayProcess,
) -> None:
    clinic, other = auth(tokens[CLINIC]), auth(tokens[OTHER])
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        posted = await client.post("/fhir/QuestionnaireResponse", json=_posted(), headers=clinic)
        assert posted.status_code == 201, posted.text
        location = urlsplit(posted.headers["location"]).path
        assert location == f"/fhir/QuestionnaireResponse/{fhir_id(QR['id'])}"
        read = await client.get(location, headers=clinic)
        assert read.status_code == 200, read.text
        qr = read.json()
        assert (qr["resourceType"], qr["id"]) == ("QuestionnaireResponse", fhir_id(QR["id"]))
        assert qr["questionnaire"] == QR["questionnaire"].split("|")[0]
        assert qr["subject"] == {"reference": "Patient/" + fhir_id("pat-53234")}
        assert "Colin" not in read.text and "+17185550100" not in read.text
        for stranger in (other, auth(tokens[ORG])):
            unseen = await client.get(location, headers=stranger)
            assert unseen.status_code == 404, unseen.text
            assert unseen.json()["resourceType"] == "OperationOutcome"

    # the network answers the screening; another gateway (a restart, or a replica) reads it
    [sent] = await network.read(network.topics.clinic_submissions(CLINIC), count=1, timeout=30)
    submitted = ScreeningSubmitted.model_validate(sent)
    answered = ScreeningAnswered.new(
        screening_id=submitted.screening_id,
        patient_id=submitted.patient.id,
        instrument=submitted.instrument,
        cause_event_id=submitted.event_id,
        needs=[{"category": "food-insecurity", "rule": "hvs-positive"}],
    )
    await network.publish(network.topics.clinic_updates(CLINIC), submitted.screening_id, answered)
    gateway.stop()
    again = GatewayProcess(network)
    again.start()
    try:
        await again.up()
        async with httpx.AsyncClient(base_url=again.url, timeout=30) as client:

            async def readable() -> httpx.Response | None:
                got = await client.get(location, headers=clinic)
                return got if got.status_code == 200 else None

            qr = (await eventually(readable, timeout=30, what="the answered screening")).json()
            assert qr["id"] == fhir_id(QR["id"]) and qr["status"] == "completed"
            unseen = await client.get(location, headers=other)
            assert unseen.status_code == 404
    finally:
        again.stop()
