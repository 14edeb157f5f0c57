"""Codings end to end (issue 18, item 17): the IG's own example bodies go in through the
gateway, through a real worker on the real broker, and the other side reads them back in
the IG's terms: the clinic's ServiceRequest code, the organization's statusReason coding
and the completed Task's resulting-activity output."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest

from schemas.codes import RESULTING_ACTIVITY, SDOH_CATEGORY_SYSTEM
from tests.network import builders as b
from tests.network.conftest import Network
from tests.network.test_gateway_flows import (
    FIXTURES,
    GatewayProcess,
    auth,
    consent,
    eventually,
    gateway,  # noqa: F401
    patient,
    provision,
)

pytestmark = pytest.mark.integration

CLINIC, PANTRY = "mott-haven", "bronx-pantry"
SR_EXAMPLE = "SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample"
TASK_COMPLETED = "SDOHCC-TaskReferralManagementOrderFulfillmentCompletedExample"
PROCEDURE = "SDOHCC-ProcedureFoodPantryApplicationAssistanceExample"
NO_CAPACITY = {"system": SDOH_CATEGORY_SYSTEM, "code": "no-capacity", "display": "No Capacity"}
RESULTING = {
    "system": SDOH_CATEGORY_SYSTEM,
    "code": RESULTING_ACTIVITY,
    "display": "Resulting Activity",
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def ig_service_request() -> dict[str, Any]:
    sr = load(SR_EXAMPLE)
    sr["contained"] = [patient(), consent()]
    sr["subject"] = {"reference": "#pat"}
    return sr


async def test_the_igs_codings_reach_the_other_side_in_the_igs_terms(
    network: Network,
    gateway: GatewayProcess,  # noqa: F811
) -> None:
    t = network.topics
    await network.provision([], [])
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [PANTRY])
    await network.publish(t.directory, "svc-food", b.service("svc-food", PANTRY))
    network.start_worker()
    gateway.start()
    await gateway.up()
    clinic, org = auth(tokens[CLINIC]), auth(tokens[PANTRY])
    ig_code = load(SR_EXAMPLE)["code"]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:
        # a code of a system refnet does not carry is refused, naming the rule, not the code
        local = ig_service_request()
        local["code"]["coding"].append({"system": "http://example.org/local", "code": "FP-7"})
        refused = await client.post("/fhir/ServiceRequest", json=local, headers=clinic)
        assert refused.status_code == 422, refused.text
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert "system must be one refnet carries" in refused.text and "FP-7" not in refused.text

        posted = await client.post(
            "/fhir/ServiceRequest", json=ig_service_request(), headers=clinic
        )
        assert posted.status_code == 201, posted.text

        # the organization's ServiceRequest carries the clinic's own code, and the category
        async def offered() -> dict[str, Any] | None:
            found = await client.get("/fhir/Task", params={"_include": "Task:focus"}, headers=org)
            entries = found.json().get("entry") or []
            return found.json() if len(entries) == 2 else None

        bundle = await eventually(offered, what="the offer")
        task = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "match")
        focus = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include")
        assert focus["code"] == ig_code
        assert focus["category"] == load(SR_EXAMPLE)["category"]

        # a statusReason of a system refnet does not carry is refused; nothing changes
        unknown = {"coding": [{"system": "http://example.org/why", "code": "full"}]}
        refused = await client.patch(
            f"/fhir/Task/{task['id']}",
            json=[
                {"op": "replace", "path": "/status", "value": "rejected"},
                {"op": "add", "path": "/statusReason", "value": unknown},
            ],
            headers=org,
        )
        assert refused.status_code == 422, refused.text
        still = await client.get(f"/fhir/Task/{task['id']}", headers=org)
        assert still.json()["status"] == "requested"

        # accepted, then on hold for want of capacity, coded in the IG's code system
        for body in (
            [{"op": "replace", "path": "/status", "value": "accepted"}],
            [
                {"op": "replace", "path": "/status", "value": "on-hold"},
                {"op": "add", "path": "/statusReason", "value": {"coding": [NO_CAPACITY]}},
            ],
        ):
            changed = await client.patch(f"/fhir/Task/{task['id']}", json=body, headers=org)
            assert changed.status_code == 200, changed.text

        async def clinic_task(status: str) -> dict[str, Any] | None:
            found = await client.get("/fhir/Task", headers=clinic)
            tasks = [e["resource"] for e in found.json().get("entry") or []]
            return tasks[0] if tasks and tasks[0]["status"] == status else None

        held = await eventually(lambda: clinic_task("on-hold"), what="the clinic's Task on hold")
        assert held["statusReason"]["coding"][0] == NO_CAPACITY
        service_request = await client.get(f"/fhir/{held['focus']['reference']}", headers=clinic)
        assert service_request.status_code == 200, service_request.text
        assert service_request.json()["code"] == ig_code

        # the IG's completed Task, its Procedure contained: the clinic reads the output coded
        current = (await client.get(f"/fhir/Task/{task['id']}", headers=org)).json()
        completed = {**copy.deepcopy(current), **load(TASK_COMPLETED), "id": current["id"]}
        completed["contained"] = [load(PROCEDURE)]
        completed["output"][0]["valueReference"] = {"reference": f"#{PROCEDURE}"}
        done = await client.put(f"/fhir/Task/{task['id']}", json=completed, headers=org)
        assert done.status_code == 200, done.text

        closed = await eventually(
            lambda: clinic_task("completed"), what="the clinic's Task completed"
        )
        assert closed["output"] == [
            {
                "type": {"coding": [RESULTING]},
                "valueCodeableConcept": {"coding": ig_code["coding"]},
            }
        ]
