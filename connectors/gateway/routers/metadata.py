"""What needs no token: metrics, health and the FHIR CapabilityStatement."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from connectors.gateway.dependencies import Running
from connectors.gateway.rest import fhir

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def _metrics() -> Response:
    """Prometheus metrics of the gateway (webhook deliveries), no labels with ids."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", tags=["gateway"])
async def healthz(gateway: Running) -> dict[str, Any]:
    return {"status": "ok", "parties": len(gateway.views)}


@router.get("/fhir/metadata", tags=["fhir"])
async def metadata() -> Response:
    return fhir(capability_statement())


def _interactions(*names: str) -> list[dict[str, str]]:
    return [{"code": n} for n in names]


def capability_statement() -> dict[str, Any]:
    """What the gateway serves, as a FHIR CapabilityStatement."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "refnet gateway"},
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <api_token from refnet provision>"
                },
                "interaction": [{"code": "transaction"}],
                "resource": [
                    {"type": "QuestionnaireResponse", "interaction": _interactions("create")},
                    {"type": "ServiceRequest", "interaction": _interactions("create")},
                    {
                        "type": "Task",
                        "interaction": _interactions("read", "search-type", "patch", "update"),
                        "searchParam": [
                            {"name": "requester", "type": "reference"},
                            {"name": "owner", "type": "reference"},
                            {"name": "status", "type": "token"},
                        ],
                        "searchInclude": ["Task:focus", "Task:patient"],
                    },
                    {
                        "type": "HealthcareService",
                        "interaction": _interactions("search-type", "update"),
                    },
                    {"type": "Encounter", "interaction": _interactions("create", "read")},
                    {"type": "Communication", "interaction": _interactions("read", "search-type")},
                    {
                        "type": "Subscription",
                        "interaction": _interactions("create", "read", "delete"),
                    },
                ],
            }
        ],
    }


__all__ = ["capability_statement", "router"]
