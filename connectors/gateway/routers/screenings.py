"""What clinics post: screenings (QuestionnaireResponse), referrals (ServiceRequest), Bundles
(a facility's Bundle of Patients and Encounters goes to :mod:`.encounters`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors.fhir.inputs import GatewayInputError, operation_outcome
from connectors.fhir.mapping import fhir_id
from connectors.fhir.patients import Resolver
from connectors.fhir.screening_reads import questionnaire_response, screening_record
from connectors.fhir.screenings import referral_from, screening_from
from connectors.gateway.dependencies import Clinic, Party, Running
from connectors.gateway.rest import JSON_BODY, fhir, mapped, read_answer, resource_body
from connectors.gateway.routers.encounters import facility_transaction
from schemas.events import Event

router = APIRouter(tags=["clinic"])


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
    events, answers = _transaction(entries)
    if not events:
        raise GatewayInputError("the Bundle holds no QuestionnaireResponse or ServiceRequest")
    for key, event in events:
        await gateway.publish(who, key, event)
    return fhir(
        {
            "resourceType": "Bundle",
            "type": f"{bundle['type']}-response",
            "entry": [{"response": a} for a in answers],
        }
    )


def _transaction(
    entries: list[Any],
) -> tuple[list[tuple[str, Event]], list[dict[str, Any]]]:
    """The events of a Bundle's entries, keyed for publishing, and each entry's answer."""
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
    for resource in ordered:
        kind = resource["resourceType"]
        if kind == "QuestionnaireResponse":
            screening, _ = mapped(lambda r=resource: screening_from(r, resolver))  # type: ignore[misc]
            events.append((screening.patient.id, screening))
            answers.append(
                {
                    "status": "201 Created",
                    "location": f"QuestionnaireResponse/{fhir_id(screening.screening_id)}",
                }
            )
        elif kind == "ServiceRequest":
            referral = mapped(lambda r=resource: referral_from(r, resolver))  # type: ignore[misc]
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
