"""What facilities post: Encounters (alone, or with their Patient in a transaction Bundle).

Each becomes ``encounter.notified`` on the facility's submissions topic, keyed by
the facility's patient id; the facility reads back what it sent (without the
demographics) at ``GET /fhir/Encounter/{id}``. Every post is counted by outcome
(``refnet_gateway_encounters_total``: published, refused, unavailable; no ids).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.encounters import encounter_from, render_encounter
from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.patients import Resolver
from connectors.gateway.dependencies import Facility, Running
from connectors.gateway.rest import JSON_BODY, fhir, json_body, mapped
from connectors.gateway.state import Gateway
from connectors.gateway.tokens import PartyRef
from schemas.events.encounters import EncounterNotified

router = APIRouter(tags=["facility"])

#: at most this many entries in a facility's transaction Bundle
MAX_ENTRIES = 100

ENCOUNTERS = Counter(
    "refnet_gateway_encounters",
    "Encounters facilities posted to the gateway, by outcome (published, refused: bad input, "
    "unavailable: the broker could not be reached)",
    ["outcome"],
)


@router.post("/fhir/Encounter", openapi_extra=JSON_BODY, status_code=201)
async def post_encounter(request: Request, who: Facility, gateway: Running) -> Response:
    try:
        return await _post_encounter(request, who, gateway)
    except GatewayInputError as exc:
        ENCOUNTERS.labels("unavailable" if exc.status == 503 else "refused").inc()
        raise


async def _post_encounter(request: Request, who: PartyRef, gateway: Gateway) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or body.get("resourceType") not in ("Encounter", "Bundle"):
        raise GatewayInputError(
            "the body must be an Encounter resource (or a transaction Bundle of Patient and "
            "Encounter)",
            status=400,
            code="structure",
        )
    if body["resourceType"] == "Bundle":
        return await _transaction(body, who, gateway)
    event = mapped(lambda: encounter_from(body, Resolver()))
    resource = await _publish(gateway, who, event)
    return fhir(
        resource,
        201,
        {"Location": f"{gateway.config.base_url}/fhir/Encounter/{resource['id']}"},
    )


@router.get("/fhir/Encounter/{encounter_id}")
async def read_encounter(encounter_id: str, who: Facility, gateway: Running) -> Response:
    found = await gateway.store.encounter(who.id, encounter_id)
    if found is None:
        raise StarletteHTTPException(404, "no such Encounter of this facility")
    return fhir(found)


async def _publish(gateway: Gateway, who: PartyRef, event: EncounterNotified) -> dict[str, Any]:
    await gateway.publish(who, event.patient.id, event)
    ENCOUNTERS.labels("published").inc()
    resource = render_encounter(event)
    await gateway.store.set_encounter(who.id, resource["id"], resource)
    return resource


async def facility_transaction(bundle: dict[str, Any], who: PartyRef, gateway: Gateway) -> Response:
    """A facility's transaction (or batch) Bundle: Patients and Encounters; nothing is
    published unless every Encounter maps, and its Encounters are published in one Kafka
    transaction (all or none)."""
    try:
        return await _transaction(bundle, who, gateway)
    except GatewayInputError as exc:
        ENCOUNTERS.labels("unavailable" if exc.status == 503 else "refused").inc()
        raise


async def _transaction(bundle: dict[str, Any], who: PartyRef, gateway: Gateway) -> Response:
    if bundle.get("type") not in ("transaction", "batch"):
        raise GatewayInputError("a facility's Bundle must be a transaction (or batch) Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries or len(entries) > MAX_ENTRIES:
        raise GatewayInputError(f"the Bundle needs 1 to {MAX_ENTRIES} entries")
    index: dict[str, dict[str, Any]] = {}
    ordered: list[dict[str, Any]] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") not in (
            "Patient",
            "Encounter",
        ):
            raise GatewayInputError("each entry of a facility's Bundle is a Patient or Encounter")
        ordered.append(resource)
        if isinstance(entry.get("fullUrl"), str):
            index[entry["fullUrl"]] = resource
        if isinstance(resource.get("id"), str):
            index[f"{resource['resourceType']}/{resource['id']}"] = resource
    resolver = Resolver(index)
    events = [
        mapped(lambda r=resource: encounter_from(r, resolver))  # type: ignore[misc]
        if resource["resourceType"] == "Encounter"
        else None
        for resource in ordered
    ]
    if not any(events):
        raise GatewayInputError("the Bundle holds no Encounter")
    # every Encounter in one Kafka transaction: all reach the network, or none
    sent = [e for e in events if e is not None]
    await gateway.publish_all(who, [(e.patient.id, e) for e in sent])
    ENCOUNTERS.labels("published").inc(len(sent))
    answers = []
    for event in events:
        if event is None:
            answers.append({"status": "200 OK"})
            continue
        resource = render_encounter(event)
        await gateway.store.set_encounter(who.id, resource["id"], resource)
        answers.append({"status": "201 Created", "location": f"Encounter/{resource['id']}"})
    return fhir(
        {
            "resourceType": "Bundle",
            "type": f"{bundle['type']}-response",
            "entry": [{"response": a} for a in answers],
        }
    )


__all__ = ["ENCOUNTERS", "facility_transaction", "router"]
