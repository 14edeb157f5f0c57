"""What clinics post: screenings (QuestionnaireResponse), referrals (ServiceRequest), Bundles
(a facility's Bundle of Patients and Encounters goes to :mod:`.encounters`)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError, nonblank, operation_outcome
from connectors.fhir.mapping import fhir_id
from connectors.fhir.patients import Resolver
from connectors.fhir.screening_reads import questionnaire_response, screening_record
from connectors.fhir.screenings import referral_from, screening_from
from connectors.gateway.dependencies import Clinic, Party, Running
from connectors.gateway.rest import JSON_BODY, fhir, mapped, read_answer, resource_body
from connectors.gateway.routers.encounters import facility_transaction
from schemas.events import Event

router = APIRouter(tags=["clinic"])

#: the namespace of the ids a Bundle's events derive (uuid5)
BUNDLE_NAMESPACE = uuid.UUID("5d0c8a4e-3f1b-5b7e-9a62-1f0e6c2b7d41")


@router.post("/fhir/QuestionnaireResponse", openapi_extra=JSON_BODY, status_code=201)
async def post_questionnaire_response(request: Request, who: Clinic, gateway: Running) -> Response:
    qr = await resource_body(request, "QuestionnaireResponse")
    event, consented = mapped(lambda: screening_from(qr, Resolver()))
    await gateway.publish(who, event.patient.id, event)
    kept = screening_record(event.model_dump(mode="json"))
    gateway.view(who).keep_screening(kept)
    location = f"{gateway.config.base_url}/fhir/QuestionnaireResponse/{fhir_id(event.screening_id)}"
    return _accepted(event.screening_id, consented, location)


@router.get("/fhir/QuestionnaireResponse/{response_id}")
async def read_questionnaire_response(response_id: str, who: Party, gateway: Running) -> Response:
    """A screening the clinic posted (404 to any other party): what the network knows of
    it without answers or demographics (:mod:`connectors.fhir.screening_reads`)."""
    view = await gateway.ready_view(who) if who.kind == "clinic" else None
    for screening_id, kept in list(view.screenings.items() if view else ()):
        if response_id in (screening_id, fhir_id(screening_id)):
            return read_answer(questionnaire_response(kept), kept["at"])
    raise StarletteHTTPException(404, "no such QuestionnaireResponse")


@router.post("/fhir/ServiceRequest", openapi_extra=JSON_BODY, status_code=201)
async def post_service_request(request: Request, who: Clinic, gateway: Running) -> Response:
    sr = await resource_body(request, "ServiceRequest")
    event = mapped(lambda: referral_from(sr, Resolver()))
    await gateway.publish(who, event.patient.id, event)
    task_id = fhir_id(event.referral_id)
    return fhir(
        operation_outcome(
            f"accepted as referral {event.referral_id}; GET /fhir/Task/{task_id} follows it",
            severity="information",
            code="informational",
        ),
        201,
        {"Location": f"{gateway.config.base_url}/fhir/ServiceRequest/{task_id}"},
    )


@router.post("/fhir", openapi_extra=JSON_BODY, tags=["clinic", "facility"])
async def post_transaction(request: Request, who: Party, gateway: Running) -> Response:
    if who.kind not in ("clinic", "facility"):
        raise StarletteHTTPException(403, "only a clinic's or a facility's token may do this")
    bundle = await resource_body(request, "Bundle")
    if who.kind == "facility":
        return await facility_transaction(bundle, who, gateway)
    if bundle.get("type") not in ("transaction", "batch"):
        raise GatewayInputError("POST /fhir takes a transaction (or batch) Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries or len(entries) > 100:
        raise GatewayInputError("the Bundle needs 1 to 100 entries")
    events, answers = _transaction(entries, _bundle_seed(who.label, entries))
    if not events:
        raise GatewayInputError("the Bundle holds no QuestionnaireResponse or ServiceRequest")
    await gateway.publish_all(who, events)
    return fhir(
        {
            "resourceType": "Bundle",
            "type": f"{bundle['type']}-response",
            "entry": [{"response": a} for a in answers],
        }
    )


def _bundle_seed(party: str, entries: list[Any]) -> str:
    """What a Bundle's event ids derive from: the party and the Bundle's entries, so that
    the same Bundle sent again gives the same events (the network drops the repeat)."""
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"), default=str)
    return f"{party}|{hashlib.sha256(canonical.encode()).hexdigest()}"


def _derived(seed: str, index: int, what: str) -> uuid.UUID:
    return uuid.uuid5(BUNDLE_NAMESPACE, f"{seed}|{index}|{what}")


def _carries_id(resource: dict[str, Any]) -> bool:
    identifier = resource.get("identifier")
    if isinstance(identifier, list):
        identifier = identifier[0] if identifier else None
    return bool(nonblank(resource.get("id"))) or (
        isinstance(identifier, dict) and bool(nonblank(identifier.get("value")))
    )


def _transaction(
    entries: list[Any], seed: str
) -> tuple[list[tuple[str, Event]], list[dict[str, Any]]]:
    """The events of a Bundle's entries, keyed for publishing, and each entry's answer.

    Each event's id, and the screening's or referral's id when the resource names
    none, derive from ``seed`` and the entry's place: the same Bundle, sent again
    after a failure, publishes the same events."""
    index: dict[str, dict[str, Any]] = {}
    ordered: list[dict[str, Any]] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise GatewayInputError("each Bundle entry needs a resource")
        ordered.append(resource)
        if isinstance(entry.get("fullUrl"), str):
            index[entry["fullUrl"]] = resource
        if isinstance(resource.get("id"), str):
            index[f"{resource['resourceType']}/{resource['id']}"] = resource
    resolver = Resolver(index)
    events: list[tuple[str, Event]] = []
    answers: list[dict[str, Any]] = []
    for place, resource in enumerate(ordered):
        kind = resource["resourceType"]
        if kind in ("QuestionnaireResponse", "ServiceRequest") and not _carries_id(resource):
            resource = {**resource, "id": str(_derived(seed, place, "id"))}
        event_id = {"event_id": _derived(seed, place, "event")}
        if kind == "QuestionnaireResponse":
            screening, _ = mapped(lambda r=resource: screening_from(r, resolver))  # type: ignore[misc]
            screening = screening.model_copy(update=event_id)
            events.append((screening.patient.id, screening))
            answers.append(
                {
                    "status": "201 Created",
                    "location": f"QuestionnaireResponse/{fhir_id(screening.screening_id)}",
                }
            )
        elif kind == "ServiceRequest":
            referral = mapped(lambda r=resource: referral_from(r, resolver))  # type: ignore[misc]
            referral = referral.model_copy(update=event_id)
            events.append((referral.patient.id, referral))
            answers.append(
                {"status": "201 Created", "location": f"Task/{fhir_id(referral.referral_id)}"}
            )
        elif kind in ("Patient", "Consent"):
            answers.append({"status": "200 OK"})
        else:
            raise GatewayInputError(
                f"a Bundle entry of type {kind[:40]!r} is not taken (Patient, Consent, "
                "QuestionnaireResponse, ServiceRequest)"
            )
    return events, answers


def _accepted(ident: str, consented: bool, location: str) -> Response:
    outcome = operation_outcome(
        f"accepted as screening {ident}", severity="information", code="informational"
    )
    if not consented:
        outcome["issue"].append(
            {
                "severity": "warning",
                "code": "business-rule",
                "diagnostics": "no Consent of the screening's patient (Consent.patient its "
                "subject) came with it: it is scored, and nothing is disclosed to any "
                "organization",
            }
        )
    return fhir(outcome, 201, {"Location": location})


__all__ = ["router"]
