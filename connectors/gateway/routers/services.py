"""An organization's HealthcareServices and their places left (capacity)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from connectors.fhir.capacity import available_from, healthcare_service
from connectors.gateway.dependencies import Org, Running
from connectors.gateway.rest import JSON_BODY, fhir, mapped, resource_body
from connectors.gateway.search import parse_search, searchset
from schemas.events import ServiceCapacityChanged

router = APIRouter(tags=["organization"])


@router.get("/fhir/HealthcareService")
async def search_services(request: Request, who: Org, gateway: Running) -> Response:
    search = parse_search(
        "HealthcareService", request.query_params.multi_items(), (), request.headers.get("prefer")
    )
    services = await gateway.store.capacities(who.id)
    found: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
        (healthcare_service(who.id, sid, available), [])
        for sid, (available, _) in sorted(services.items())
    ]
    return fhir(searchset(gateway.config.base_url, search, found))


@router.put("/fhir/HealthcareService/{service_id}", openapi_extra=JSON_BODY)
async def put_service(service_id: str, request: Request, who: Org, gateway: Running) -> Response:
    resource = await resource_body(request, "HealthcareService")
    available = available_from(resource)
    event = mapped(lambda: ServiceCapacityChanged.new(service_id=service_id, available=available))
    await gateway.publish(who, service_id, event)
    await gateway.store.set_capacity(who.id, service_id, available)
    return fhir(healthcare_service(who.id, service_id, available))


__all__ = ["router"]
