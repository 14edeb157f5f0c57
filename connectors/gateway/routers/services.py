"""HealthcareServices and their capacity in the Gravity IG's terms (capacity status).

An organization PUTs the capacity of its own services (the IG's ``capacityStatus``,
refnet's ``available``, or both); clinics, the referral sources the IG has query
capacity, and the organization itself read it back. The first organization to report
a service id through the gateway owns it here: another organization's PUT of it is 403
(the network also dead-letters a report for a service not the sender's).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.capacity import ServiceCapacity, capacity_from, healthcare_service
from connectors.fhir.mapping import fhir_id
from connectors.gateway.dependencies import Org, Referrer, Running
from connectors.gateway.rest import JSON_BODY, fhir, mapped, resource_body
from connectors.gateway.search import parse_search, searchset
from connectors.gateway.state import Gateway
from connectors.gateway.tokens import PartyRef
from schemas.events import ServiceCapacityChanged

router = APIRouter(tags=["organization", "clinic"])


async def _visible(gateway: Gateway, who: PartyRef) -> dict[str, tuple[str, dict[str, Any], float]]:
    """The services ``who`` may read: a clinic every one, an organization its own."""
    org = None if who.kind == "clinic" else who.id
    return await gateway.store.capacities(org)


@router.get("/fhir/HealthcareService")
async def search_services(request: Request, who: Referrer, gateway: Running) -> Response:
    search = parse_search(
        "HealthcareService", request.query_params.multi_items(), (), request.headers.get("prefer")
    )
    services = await _visible(gateway, who)
    found: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
        (healthcare_service(org, sid, ServiceCapacity.from_json(report)), [])
        for sid, (org, report, _) in sorted(services.items())
    ]
    return fhir(searchset(gateway.config.base_url, search, found))


@router.get("/fhir/HealthcareService/{service_id}")
async def read_service(service_id: str, who: Referrer, gateway: Running) -> Response:
    for sid, (org, report, _) in (await _visible(gateway, who)).items():
        if service_id in (sid, fhir_id(sid)):
            return fhir(healthcare_service(org, sid, ServiceCapacity.from_json(report)))
    raise StarletteHTTPException(404, "no such HealthcareService")


@router.put("/fhir/HealthcareService/{service_id}", openapi_extra=JSON_BODY)
async def put_service(service_id: str, request: Request, who: Org, gateway: Running) -> Response:
    resource = await resource_body(request, "HealthcareService")
    capacity = capacity_from(resource)
    owner = await gateway.store.capacity_owner(service_id)
    if owner not in (None, who.id):
        raise StarletteHTTPException(403, "this service is another organization's")
    event = mapped(
        lambda: ServiceCapacityChanged.new(
            service_id=service_id,
            available=capacity.available,
            capacity_status=capacity.status,
        )
    )
    await gateway.publish(who, service_id, event)
    if not await gateway.store.set_capacity(who.id, service_id, capacity.as_json()):
        raise StarletteHTTPException(403, "this service is another organization's")
    return fhir(healthcare_service(who.id, service_id, capacity))


__all__ = ["router"]
