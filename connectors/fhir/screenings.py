"""What clinics post: a QuestionnaireResponse as a screening, a ServiceRequest as a referral.

* A QuestionnaireResponse without a Consent of its own subject (see
  :mod:`.consent`) is a screening without consent: scored, referred nowhere,
  and the answer says so.
* A ServiceRequest without a Consent is refused (it could never open). Its
  category is its SDOHCC category coding; its id (else an identifier) is the
  clinic's referral id; ``performer`` naming a ``HealthcareService/{id}`` asks
  for that service; its ``code`` codings travel as ``codes`` (a coding of a
  system refnet does not carry is refused: see :mod:`.codings`).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from connectors.fhir.codings import request_codes
from connectors.fhir.consent import consent_from, consent_of
from connectors.fhir.inputs import (
    GatewayInputError,
    first_text,
    first_value,
    json_array,
    json_object,
    nonblank,
    sdoh_category_codes,
    validation_message,
)
from connectors.fhir.mapping import FhirMappingError, questionnaire_response_to_answers
from connectors.fhir.patients import Resolver, patient_from
from schemas.codes import SDOH_CATEGORY_SYSTEM, Category
from schemas.events import ReferralRequested, ScreeningSubmitted


def _screening_id(qr: dict[str, Any]) -> str:
    identifier = qr.get("identifier")
    by_identifier = (
        identifier["value"]
        if isinstance(identifier, dict) and nonblank(identifier.get("value"))
        else None
    )
    return nonblank(qr.get("id")) or by_identifier or str(uuid.uuid4())


def screening_from(qr: dict[str, Any], resolver: Resolver) -> tuple[ScreeningSubmitted, bool]:
    """A QuestionnaireResponse as ``screening.submitted``; True if a Consent came with it."""
    if qr.get("resourceType") != "QuestionnaireResponse":
        raise GatewayInputError("expected a QuestionnaireResponse")
    patient = patient_from(qr, resolver, "subject")
    consent_resource = consent_of(qr, resolver)
    consent = consent_from(consent_resource)
    bare = {k: v for k, v in qr.items() if k not in ("contained", "subject", "source", "author")}
    try:
        instrument, answers = questionnaire_response_to_answers(bare)
    except FhirMappingError as exc:
        message = str(exc).split("\n", 1)[0] if "invalid" not in str(exc) else "invalid resource"
        raise GatewayInputError(f"QuestionnaireResponse: {message}") from None
    try:
        event = ScreeningSubmitted.new(
            screening_id=_screening_id(qr),
            patient=patient,
            consent=consent,
            instrument=instrument,
            answers=[{"question": q, "answer": a} for q, a in answers],
        )
    except ValidationError as exc:
        raise GatewayInputError(f"screening: {validation_message(exc)}") from None
    return event, consent_resource is not None


def _category_of(concepts: object) -> Category | None:
    for code in sdoh_category_codes(concepts, "category", "category"):
        try:
            return Category(code)
        except ValueError:
            raise GatewayInputError("category: not an SDOHCC category code") from None
    return None


def _service_id(sr: dict[str, Any]) -> str | None:
    service_id = None
    for performer in json_array(sr.get("performer"), "performer"):
        ref = nonblank(json_object(performer, "performer").get("reference"))
        if ref and ref.startswith("HealthcareService/"):
            service_id = ref.split("/", 1)[1]
    return service_id


def referral_from(sr: dict[str, Any], resolver: Resolver) -> ReferralRequested:
    """A ServiceRequest as ``referral.requested``."""
    if sr.get("resourceType") != "ServiceRequest":
        raise GatewayInputError("expected a ServiceRequest")
    category = _category_of(sr.get("category"))
    if category is None:
        raise GatewayInputError(
            f"ServiceRequest.category needs an SDOHCC category coding ({SDOH_CATEGORY_SYSTEM})"
        )
    patient = patient_from(sr, resolver, "subject")
    consent_resource = consent_of(sr, resolver)
    if consent_resource is None:
        raise GatewayInputError(
            "a referral needs the patient's SDOHCC Consent (contained, in supportingInfo, or "
            "in the Bundle): without it the network may disclose nothing"
        )
    by_identifier = first_value(sr.get("identifier"), "identifier", "value")
    referral_id = nonblank(sr.get("id")) or by_identifier
    service_id = _service_id(sr)
    note = first_text(sr.get("note"), "note")
    codes = request_codes(sr.get("code"))
    try:
        return ReferralRequested.new(
            referral_id=referral_id or str(uuid.uuid4()),
            patient=patient,
            consent=consent_from(consent_resource),
            category=category,
            service_id=service_id,
            priority=sr.get("priority"),
            note=note,
            codes=codes,
        )
    except ValidationError as exc:
        raise GatewayInputError(f"ServiceRequest: {validation_message(exc)}") from None


__all__ = ["referral_from", "screening_from"]
