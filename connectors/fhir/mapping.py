"""FHIR R4 (R4B models) at the edge: screenings in, referrals out.

* :func:`questionnaire_response_to_answers` reads an SDC QuestionnaireResponse
  (as the Gravity IG examples carry them) into refnet's ``(question, answer)``
  pairs for :func:`streams.decisions.scoring.score`.
* :func:`render_referral` renders a referral as the Gravity ServiceRequest and
  Task For Referral Management a FHIR-speaking clinic expects.

Mapping decisions
-----------------
Reading a QuestionnaireResponse
    * Instrument: the ``instrument`` argument, else the ``questionnaire``
      canonical (the Gravity canonicals, or any canonical naming a panel code
      such as ``.../96777-8``), else a top-level group whose linkId names the
      panel (PRAPARE's ``/93025-5``). Otherwise :class:`FhirMappingError`.
    * Question: R4 QuestionnaireResponse items carry no code; the LHC-Forms/SDC
      convention (the IG examples) puts the LOINC code as the last segment of
      ``linkId`` (``/93042-0/71802-3``). Failing that, a LOINC code at the end
      of ``definition``. Items with neither are skipped (display/help items,
      local questions); groups are walked, as are items nested under answers.
    * Answer: ``valueCoding`` -> its code (a non-LOINC coding becomes
      ``system|code`` so that the scorer reports it as unknown rather than
      mistaking it); ``valueInteger``/``valueDecimal``/``valueQuantity.value``
      -> a number; ``valueBoolean`` -> LA33-6 Yes / LA32-8 No. Free text,
      dates, attachments and references are dropped: they are not codes and
      may identify the patient (an address, a name), and nothing scores them.
    * Unusable: not a QuestionnaireResponse, invalid, ``entered-in-error``, no
      instrument, or no usable answer at all.

Rendering a referral (Gravity STU 2.3 profiles)
    * ServiceRequest (SDOHCC-ServiceRequest): ``intent`` order; ``category`` the
      SNOMED "Social service procedure" coding and the SDOH category coding
      (as the IG example); ``code`` the clinic's own codings as it sent them
      (``codes`` of ``referral.requested``, with the displays refnet knows), else
      the given procedure coding, else SNOMED 410606002 "Social service
      procedure" (the profile binds ``code`` to US Core procedure codes,
      required); ``subject`` Patient; ``requester`` the
      clinic Organization; ``performer`` the organization and its service
      (HealthcareService) once matched; ``status`` active while the referral is
      open, completed, revoked (cancelled, rejected, failed), draft,
      entered-in-error.
    * Task (SDOHCC-TaskForReferralManagement): ``intent`` order, ``code``
      task-code#fulfill, ``focus`` the ServiceRequest, ``for`` the Patient,
      ``requester`` the clinic, ``owner`` the network (refnet is the
      coordination platform that owns the clinic's Task), ``businessStatus``
      refnet's business status, ``statusReason`` the reason: the organization's
      own coding as it sent it (e.g. SDOHCC ``no-capacity``), refnet's reason
      coding when the reason is one of refnet's codes, and the reason as text
      (the profile requires statusReason.text); on completed without a reason,
      the outcome. ``output``: the organization's coded outputs in the IG's
      shape (type ``resulting-activity``, ``valueCodeableConcept``), then a
      free-text outcome with a refnet output type (outside the profile's
      ``resulting-activity`` slices, which a free text is not).
    * Ids: the referral id and patient id when they are valid FHIR ids, else a
      stable digest; the referral id always travels verbatim in ``identifier``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
)
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from connectors.fhir.codings import (
    OUTPUT_TYPE_SYSTEM,
    code_concept,
    outcome_output,
    outcome_text,
    status_reason,
    task_output,
)
from schemas import instruments as loinc
from schemas.codes import (
    LOINC_SYSTEM,
    SDOH_CATEGORY_SYSTEM,
    BusinessStatus,
    Category,
    Instrument,
    Priority,
    TaskStatus,
)
from schemas.errors import RefnetError
from schemas.events.referrals import Coding, TaskOutput

AnswerValue = str | int | float

GRAVITY_BASE: Final = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition"
SERVICE_REQUEST_PROFILE: Final = f"{GRAVITY_BASE}/SDOHCC-ServiceRequest"
TASK_PROFILE: Final = f"{GRAVITY_BASE}/SDOHCC-TaskForReferralManagement"
SNOMED_SYSTEM: Final = "http://snomed.info/sct"
TASK_CODE_SYSTEM: Final = "http://hl7.org/fhir/CodeSystem/task-code"
#: refnet's own code systems (URNs: no web presence is implied).
REFERRAL_ID_SYSTEM: Final = "urn:refnet:referral-id"
BUSINESS_STATUS_SYSTEM: Final = "urn:refnet:codesystem:business-status"
REASON_SYSTEM: Final = "urn:refnet:codesystem:reason"

SOCIAL_SERVICE_PROCEDURE: Final = (SNOMED_SYSTEM, "410606002", "Social service procedure")
FULFILL: Final = (TASK_CODE_SYSTEM, "fulfill", "Fulfill the focal request")


def category_display(category: Category) -> str:
    """The display of a category in SDOHCCValueSetSDOHCategory."""
    if category is Category.SDOH_CATEGORY_UNSPECIFIED:
        return "SDOH Category Unspecified"
    return " ".join(word.capitalize() for word in category.value.split("-"))


class FhirMappingError(RefnetError, ValueError):
    """FHIR input refnet cannot use, or rendering input it cannot express."""


# ===================================================================== reading

_LOINC_CODE: Final = re.compile(r"^\d{1,7}-\d$")
_LOINC_TAIL: Final = re.compile(r"(\d{1,7}-\d)$")
_PANEL_TOKEN: Final = re.compile(r"(?<![\d-])(\d{4,7}-\d)(?![\d-])")


def _question_code(item: QuestionnaireResponseItem) -> str | None:
    tail = (item.linkId or "").rstrip("/").rsplit("/", 1)[-1]
    if _LOINC_CODE.fullmatch(tail):
        return tail
    found = _LOINC_TAIL.search(item.definition or "")
    return found.group(1) if found else None


def _number(value: Decimal | int) -> int | float:
    if isinstance(value, int):
        return value
    return int(value) if value == value.to_integral_value() else float(value)


def _answer_values(item: QuestionnaireResponseItem) -> Iterator[AnswerValue]:
    for answer in item.answer or []:
        if answer.valueCoding is not None and answer.valueCoding.code:
            system = answer.valueCoding.system
            code = answer.valueCoding.code
            yield code if system in (None, LOINC_SYSTEM) else f"{system}|{code}"
        elif answer.valueInteger is not None:
            yield int(answer.valueInteger)
        elif answer.valueDecimal is not None:
            yield _number(answer.valueDecimal)
        elif answer.valueQuantity is not None and answer.valueQuantity.value is not None:
            yield _number(answer.valueQuantity.value)
        elif answer.valueBoolean is not None:
            yield loinc.YES if answer.valueBoolean else loinc.NO


def _walk(items: Iterable[QuestionnaireResponseItem]) -> Iterator[QuestionnaireResponseItem]:
    for item in items:
        yield item
        yield from _walk(item.item or [])
        for answer in item.answer or []:
            yield from _walk(answer.item or [])


def _instrument_of(qr: QuestionnaireResponse) -> Instrument | None:
    canonical = (qr.questionnaire or "").split("|", 1)[0]
    if canonical in loinc.QUESTIONNAIRE_CANONICALS:
        return loinc.QUESTIONNAIRE_CANONICALS[canonical]
    for token in _PANEL_TOKEN.findall(canonical):
        if token in loinc.INSTRUMENT_BY_PANEL:
            return loinc.INSTRUMENT_BY_PANEL[token]
    for item in qr.item or []:
        code = _question_code(item)
        if code is not None and code in loinc.INSTRUMENT_BY_PANEL:
            return loinc.INSTRUMENT_BY_PANEL[code]
    return None


def _as_questionnaire_response(qr: object) -> QuestionnaireResponse:
    if isinstance(qr, QuestionnaireResponse):
        return qr
    if not isinstance(qr, Mapping):
        raise FhirMappingError(f"expected a QuestionnaireResponse, got a {type(qr).__name__}")
    kind = qr.get("resourceType")
    if kind != "QuestionnaireResponse":
        raise FhirMappingError(f"expected a QuestionnaireResponse, got resourceType {kind!r}")
    try:
        return QuestionnaireResponse.model_validate(dict(qr))
    except (ValueError, TypeError) as error:  # pydantic's ValidationError is a ValueError
        raise FhirMappingError(f"invalid QuestionnaireResponse: {error}") from error


def questionnaire_response_to_answers(
    qr: Mapping[str, Any] | QuestionnaireResponse,
    *,
    instrument: Instrument | None = None,
) -> tuple[Instrument, list[tuple[str, AnswerValue]]]:
    """The instrument and LOINC answers of a QuestionnaireResponse.

    Args:
        qr: the resource, as parsed JSON or as an R4B model.
        instrument: the instrument, when the caller knows better than the resource.

    Raises:
        FhirMappingError: the input is not a usable QuestionnaireResponse.
    """
    resource = _as_questionnaire_response(qr)
    if resource.status == "entered-in-error":
        raise FhirMappingError("the QuestionnaireResponse is entered-in-error")
    chosen = instrument or _instrument_of(resource)
    if chosen is None:
        raise FhirMappingError(
            f"cannot tell the instrument of questionnaire {resource.questionnaire!r}"
        )
    answers = [
        (question, value)
        for item in _walk(resource.item or [])
        if (question := _question_code(item)) is not None
        for value in _answer_values(item)
    ]
    if not answers:
        raise FhirMappingError("the QuestionnaireResponse has no coded or numeric answer")
    return chosen, answers


# ===================================================================== rendering

_FHIR_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

_SERVICE_REQUEST_STATUS: Final[Mapping[TaskStatus, str]] = {
    TaskStatus.DRAFT: "draft",
    TaskStatus.REQUESTED: "active",
    TaskStatus.ACCEPTED: "active",
    TaskStatus.IN_PROGRESS: "active",
    TaskStatus.ON_HOLD: "active",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.CANCELLED: "revoked",
    TaskStatus.REJECTED: "revoked",
    TaskStatus.FAILED: "revoked",
    TaskStatus.ENTERED_IN_ERROR: "entered-in-error",
}


def fhir_id(value: str) -> str:
    """``value`` when it is a valid FHIR id, else a stable digest of it."""
    if _FHIR_ID.fullmatch(value):
        return value
    return "h-" + hashlib.sha256(value.encode()).hexdigest()[:40]


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def _ref(kind: str, ident: str) -> dict[str, str]:
    return {"reference": f"{kind}/{fhir_id(ident)}"}


def _text(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def render_referral(
    *,
    referral_id: str,
    patient_id: str,
    category: Category,
    status: TaskStatus,
    clinic_id: str,
    authored_on: datetime,
    business_status: BusinessStatus | None = None,
    priority: Priority = Priority.ROUTINE,
    org_id: str | None = None,
    service_id: str | None = None,
    reason: str | None = None,
    outcome: str | None = None,
    note: str | None = None,
    network_id: str = "refnet",
    service_code: tuple[str, str, str] | None = None,
    codes: Sequence[Coding] = (),
    reason_coding: Coding | None = None,
    outputs: Sequence[TaskOutput] = (),
) -> tuple[ServiceRequest, Task]:
    """The referral as a Gravity ServiceRequest and the clinic's referral Task.

    Args:
        service_code: ``(system, code, display)`` of the requested procedure
            (ServiceRequest.code); SNOMED "Social service procedure" by default.
        codes: the clinic's codings (ServiceRequest.code as sent; before ``service_code``).
        reason_coding, outputs: the organization's (Task.statusReason, Task.output).
        network_id: the coordination platform's Organization id (Task.owner).

    Raises:
        FhirMappingError: ``authored_on`` without a timezone, or blank ids.
    """
    if authored_on.tzinfo is None or authored_on.utcoffset() is None:
        raise FhirMappingError("authored_on needs a timezone (FHIR dateTime with offset)")
    for name, value in {
        "referral_id": referral_id,
        "patient_id": patient_id,
        "clinic_id": clinic_id,
    }.items():
        if not value.strip():
            raise FhirMappingError(f"{name} must not be blank")
    reason, outcome, note = _text(reason), _text(outcome), _text(note)
    status = TaskStatus(status)
    category = Category(category)
    priority = Priority(priority)
    common: dict[str, Any] = {
        "id": fhir_id(referral_id),
        "identifier": [{"system": REFERRAL_ID_SYSTEM, "value": referral_id}],
        "priority": priority.value,
        "authoredOn": authored_on.isoformat(),
        "requester": _ref("Organization", clinic_id),
    }
    performer = []
    if org_id:
        performer.append(_ref("Organization", org_id))
    if service_id:
        performer.append(_ref("HealthcareService", service_id))
    service_request = _referral_service_request(
        common,
        status=status,
        category=category,
        code=code_concept(codes) if codes else concept(*(service_code or SOCIAL_SERVICE_PROCEDURE)),
        patient_id=patient_id,
        performer=performer,
        note=note,
    )
    task = _referral_task(
        common,
        status=status,
        business_status=business_status,
        patient_id=patient_id,
        network_id=network_id,
    )
    _reason_and_output(task, status, reason, outcome, reason_coding, outputs)
    return (
        ServiceRequest.model_validate(_drop_none(service_request)),
        Task.model_validate(_drop_none(task)),
    )


def _reason_and_output(
    task: dict[str, Any],
    status: TaskStatus,
    reason: str | None,
    outcome: str | None,
    reason_coding: Coding | None,
    outputs: Sequence[TaskOutput],
) -> None:
    """Task.statusReason (on completed without a reason: the outcome) and Task.output."""
    completed = status is TaskStatus.COMPLETED
    task["statusReason"] = status_reason(
        reason, outcome_text(outcome, outputs) if completed else None, reason_coding
    )
    task["output"] = task_output(outcome, outputs) or None


def _referral_service_request(
    common: dict[str, Any],
    *,
    status: TaskStatus,
    category: Category,
    code: dict[str, Any],
    patient_id: str,
    performer: list[dict[str, str]],
    note: str | None,
) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": common["id"],
        "meta": {"profile": [SERVICE_REQUEST_PROFILE]},
        "identifier": common["identifier"],
        "status": _SERVICE_REQUEST_STATUS[status],
        "intent": "order",
        "category": service_request_category(category),
        "priority": common["priority"],
        "code": code,
        "subject": _ref("Patient", patient_id),
        "authoredOn": common["authoredOn"],
        "requester": common["requester"],
        "performer": performer or None,
        "note": [{"text": note}] if note else None,
    }


def _referral_task(
    common: dict[str, Any],
    *,
    status: TaskStatus,
    business_status: BusinessStatus | None,
    patient_id: str,
    network_id: str,
) -> dict[str, Any]:
    ident = common["id"]
    return {
        "resourceType": "Task",
        "id": ident,
        "meta": {"profile": [TASK_PROFILE]},
        "identifier": common["identifier"],
        "status": status.value,
        "businessStatus": (
            {
                "coding": [coding(BUSINESS_STATUS_SYSTEM, business_status.value)],
                "text": business_status.value,
            }
            if business_status is not None
            else None
        ),
        "statusReason": None,  # render_referral's (the organization's codings)
        "intent": "order",
        "priority": common["priority"],
        "code": concept(*FULFILL),
        "focus": {"reference": f"ServiceRequest/{ident}"},
        "for": _ref("Patient", patient_id),
        "authoredOn": common["authoredOn"],
        "requester": common["requester"],
        "owner": _ref("Organization", network_id),
        "output": None,  # render_referral's (coded outputs and the outcome)
    }


def service_request_category(category: Category) -> list[dict[str, Any]]:
    """ServiceRequest.category: "Social service procedure" and the SDOH category."""
    return [
        concept(*SOCIAL_SERVICE_PROCEDURE),
        concept(SDOH_CATEGORY_SYSTEM, category.value, category_display(category)),
    ]


def _drop_none(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if value is not None}


def resource_json(resource: ServiceRequest | Task | QuestionnaireResponse) -> dict[str, Any]:
    """A resource as FHIR JSON (aliases such as ``for``, no empty elements)."""
    dumped: dict[str, Any] = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


__all__ = [
    "BUSINESS_STATUS_SYSTEM",
    "FULFILL",
    "OUTPUT_TYPE_SYSTEM",
    "REASON_SYSTEM",
    "REFERRAL_ID_SYSTEM",
    "SERVICE_REQUEST_PROFILE",
    "SOCIAL_SERVICE_PROCEDURE",
    "TASK_PROFILE",
    "FhirMappingError",
    "category_display",
    "coding",
    "concept",
    "fhir_id",
    "outcome_output",
    "questionnaire_response_to_answers",
    "render_referral",
    "resource_json",
    "service_request_category",
]
