"""What needs no token: metrics, health and the FHIR CapabilityStatement."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata as package_metadata
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import Response

from connectors.fhir.mapping import GRAVITY_BASE
from connectors.gateway.dependencies import Running
from connectors.gateway.rest import fhir

router = APIRouter()

#: when this gateway process started: the CapabilityStatement's ``date``
STARTED: Final = datetime.now(UTC).replace(microsecond=0)
#: the SDOHCC (Gravity) profiles the gateway reads and writes, by resource type
PROFILES: Final = {
    "Task": ["SDOHCC-TaskForReferralManagement"],
    "ServiceRequest": ["SDOHCC-ServiceRequest"],
    "Consent": ["SDOHCC-Consent"],
}


def _version() -> str:
    try:
        return package_metadata.version("refnet")
    except package_metadata.PackageNotFoundError:
        return "unknown"


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


def _profiled(resource: dict[str, Any]) -> dict[str, Any]:
    names = PROFILES.get(resource["type"]) or []
    if names:
        return {**resource, "supportedProfile": [f"{GRAVITY_BASE}/{n}" for n in names]}
    return resource


def capability_statement() -> dict[str, Any]:
    """What the gateway serves, as a FHIR CapabilityStatement (``date``: when it started)."""
    statement = _statement()
    rest = statement["rest"][0]
    rest["resource"] = [_profiled(r) for r in rest["resource"]]
    # a Consent is read inside the screening or referral (contained or a Bundle entry)
    rest["resource"].append(_profiled({"type": "Consent"}))
    return statement


def _statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STARTED.isoformat(),
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "software": {"name": "refnet", "version": _version()},
        "implementation": {"description": "refnet gateway"},
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <api_token from refnet provision>"
                },
                "interaction": [{"code": "transaction"}],
                "resource": [
                    {
                        "type": "QuestionnaireResponse",
                        "interaction": _interactions("create", "read"),
                    },
                    {"type": "ServiceRequest", "interaction": _interactions("create", "read")},
                    {"type": "Patient", "interaction": _interactions("read")},
                    {
                        "type": "Task",
                        "interaction": _interactions("read", "search-type", "patch", "update"),
                        "versioning": "versioned",
                        "conditionalUpdate": True,
                        "searchParam": [
                            {"name": "requester", "type": "reference"},
                            {"name": "owner", "type": "reference"},
                            {"name": "status", "type": "token"},
                            {"name": "_count", "type": "number"},
                            {"name": "_sort", "type": "special", "documentation": "_lastUpdated"},
                        ],
                        "searchInclude": ["Task:focus", "Task:patient"],
                    },
                    {
                        "type": "HealthcareService",
                        "interaction": _interactions("read", "search-type", "update"),
                    },
                    {"type": "Encounter", "interaction": _interactions("create", "read")},
                    {"type": "Communication", "interaction": _interactions("read", "search-type")},
                    {
                        "type": "Organization",
                        "interaction": _interactions("read"),
                        "documentation": "organizations the directory names (any party's token)",
                    },
                    {
                        "type": "Subscription",
                        "interaction": _interactions("create", "read", "delete"),
                    },
                ],
            }
        ],
    }


__all__ = ["capability_statement", "router"]
