"""FHIR in and out for the gateway: what clinics post, what organizations read and write.

Reading (clinics)
    * Patient: a ``Patient`` contained in the posted resource (``subject:
      {"reference": "#p"}``), or a Bundle entry the subject names (by ``fullUrl``
      or ``Patient/{id}``). The network's patient id is the Patient's first
      ``identifier.value`` (the clinic's MRN), else its ``id``. A bare reference
      to a Patient the gateway cannot see is refused: the network needs a given
      name to contact the patient.
    * Consent (SDOHCC Consent): contained, or a Bundle entry. ``status`` active
      and ``provision.type`` permit (or absent) grant; anything else does not.
      ``provision.period.end`` is the expiry; the categories consented to are the
      SDOHCC category codings (``SDOHCC-CodeSystemTemporaryCodes``) in
      ``provision.code`` (none: all categories). A QuestionnaireResponse without a
      Consent is a screening without consent: scored, referred nowhere, and the
      answer says so. A ServiceRequest without one is refused (it could never open).
    * ServiceRequest: the category is its SDOHCC category coding; its id (else an
      identifier) is the clinic's referral id; ``performer`` naming a
      ``HealthcareService/{id}`` asks for that service.

Writing (organizations)
    A Task's ``status`` becomes ``referral.status-changed``; the reason is
    ``statusReason`` (its first coding's code, else its text), the outcome the
    first ``output`` value (string, or a CodeableConcept's text or code), the note
    the first ``note.text``.

Every message names the rule broken, never the value: values may be patient data.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from connectors.fhir.mapping import (
    REFERRAL_ID_SYSTEM,
    TASK_PROFILE,
    FhirMappingError,
    category_display,
    fhir_id,
    questionnaire_response_to_answers,
    render_referral,
    resource_json,
)
from schemas.codes import SDOH_CATEGORY_SYSTEM, BusinessStatus, Category, OrgStatus, TaskStatus
from schemas.events import (
    Consent,
    Patient,
    ReferralOffered,
    ReferralRequested,
    ReferralStatusChanged,
    ScreeningSubmitted,
)

NETWORK_ORG: Final = "refnet"
#: The IG's (STU 3) capacity-status extension on HealthcareService: complex, with
#: ``capacityStatus`` and ``capacityNotes``. refnet's count of places left travels in
#: a sub-extension of its own, ``available`` (valueUnsignedInt).
CAPACITY_EXTENSION: Final = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)


class GatewayInputError(ValueError):
    """Input refused: ``status`` (4xx), a FHIR issue ``code`` and a value-free message."""

    def __init__(self, message: str, *, status: int = 422, code: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def operation_outcome(
    diagnostics: str, *, severity: str = "error", code: str = "invalid"
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def validation_message(error: ValidationError) -> str:
    """Where and what, never the input value."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "resource"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GatewayInputError(f"{what} must be a JSON object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise GatewayInputError(f"{what} must be a JSON array")
    return value


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


# ===================================================================== resolving


class Resolver:
    """Finds the resources a posted resource refers to: contained ones, then a Bundle's."""

    def __init__(self, bundle: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.bundle = dict(bundle or {})

    def find(self, owner: dict[str, Any], reference: object, kind: str) -> dict[str, Any] | None:
        ref = _str(_dict(reference, "a reference").get("reference")) if reference else None
        if ref is None:
            return None
        if ref.startswith("#"):
            for item in _list(owner.get("contained"), "contained"):
                if (
                    isinstance(item, dict)
                    and item.get("resourceType") == kind
                    and item.get("id") == ref[1:]
                ):
                    return item
            raise GatewayInputError(f"the reference {kind} #{'…'} names no contained {kind}")
        found = self.bundle.get(ref)
        if found is not None and found.get("resourceType") == kind:
            return found
        return None

    def first(self, owner: dict[str, Any], kind: str) -> dict[str, Any] | None:
        for item in _list(owner.get("contained"), "contained"):
            if isinstance(item, dict) and item.get("resourceType") == kind:
                return item
        for item in self.bundle.values():
            if item.get("resourceType") == kind:
                return item
        return None


def patient_from(resource: dict[str, Any], resolver: Resolver, field: str) -> Patient:
    reference = resource.get(field)
    found = resolver.find(resource, reference, "Patient") if reference else None
    if found is None:
        raise GatewayInputError(
            f"{resource.get('resourceType')}.{field} must name a Patient contained in the "
            "resource or carried in the same transaction Bundle (the network needs a given name)"
        )
    ident = None
    for identifier in _list(found.get("identifier"), "Patient.identifier"):
        if isinstance(identifier, dict) and _str(identifier.get("value")):
            ident = identifier["value"]
            break
    ident = ident or _str(found.get("id"))
    if ident is None:
        raise GatewayInputError("the Patient needs an identifier or an id")
    names = [n for n in _list(found.get("name"), "Patient.name") if isinstance(n, dict)]
    given = next(
        (g for n in names for g in _list(n.get("given"), "Patient.name.given") if _str(g)), None
    )
    if given is None:
        raise GatewayInputError("the Patient needs a given name (Patient.name.given)")
    family = next((n["family"] for n in names if _str(n.get("family"))), None)
    phone = next(
        (
            t["value"]
            for t in _list(found.get("telecom"), "Patient.telecom")
            if isinstance(t, dict) and t.get("system") == "phone" and _str(t.get("value"))
        ),
        None,
    )
    language = None
    for comm in _list(found.get("communication"), "Patient.communication"):
        codings = _list(_dict(comm, "communication").get("language", {}).get("coding"), "coding")
        language = next((c.get("code") for c in codings if isinstance(c, dict)), None)
        if language:
            break
    postal = next(
        (
            a["postalCode"]
            for a in _list(found.get("address"), "Patient.address")
            if isinstance(a, dict) and _str(a.get("postalCode"))
        ),
        None,
    )
    try:
        return Patient(
            id=ident,
            given_name=given,
            family_name=family,
            phone=phone,
            preferred_language=language,
            postal_code=postal,
            birth_date=found.get("birthDate"),
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Patient: {validation_message(exc)}") from None


def consent_from(resource: dict[str, Any] | None) -> Consent:
    """An SDOHCC Consent as refnet's consent (None: not granted)."""
    if resource is None:
        return Consent(granted=False)
    provision = resource.get("provision") or {}
    provision = _dict(provision, "Consent.provision")
    granted = resource.get("status") == "active" and provision.get("type", "permit") == "permit"
    categories: list[Category] = []
    for concept in _list(provision.get("code"), "Consent.provision.code"):
        for coding in _list(_dict(concept, "code").get("coding"), "coding"):
            if isinstance(coding, dict) and coding.get("system") == SDOH_CATEGORY_SYSTEM:
                try:
                    categories.append(Category(str(coding.get("code"))))
                except ValueError:
                    raise GatewayInputError(
                        "Consent.provision.code: not an SDOHCC category code"
                    ) from None
    period = provision.get("period") or {}
    try:
        return Consent(
            granted=granted,
            categories=sorted(set(categories)) or None,
            expires_at=_dict(period, "Consent.provision.period").get("end"),
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Consent: {validation_message(exc)}") from None


def _consent_of(resource: dict[str, Any], resolver: Resolver) -> dict[str, Any] | None:
    for info in _list(resource.get("supportingInfo"), "supportingInfo"):
        found = resolver.find(resource, info, "Consent")
        if found is not None:
            return found
    return resolver.first(resource, "Consent")


def screening_from(qr: dict[str, Any], resolver: Resolver) -> tuple[ScreeningSubmitted, bool]:
    """A QuestionnaireResponse as ``screening.submitted``; True if a Consent came with it."""
    if qr.get("resourceType") != "QuestionnaireResponse":
        raise GatewayInputError("expected a QuestionnaireResponse")
    patient = patient_from(qr, resolver, "subject")
    consent_resource = resolver.first(qr, "Consent")
    consent = consent_from(consent_resource)
    bare = {k: v for k, v in qr.items() if k not in ("contained", "subject", "source", "author")}
    try:
        instrument, answers = questionnaire_response_to_answers(bare)
    except FhirMappingError as exc:
        message = str(exc).split("\n", 1)[0] if "invalid" not in str(exc) else "invalid resource"
        raise GatewayInputError(f"QuestionnaireResponse: {message}") from None
    screening_id = (
        _str(qr.get("id"))
        or next(
            (
                i["value"]
                for i in [qr.get("identifier")]
                if isinstance(i, dict) and _str(i.get("value"))
            ),
            None,
        )
        or str(uuid.uuid4())
    )
    try:
        event = ScreeningSubmitted.new(
            screening_id=screening_id,
            patient=patient,
            consent=consent,
            instrument=instrument,
            answers=[{"question": q, "answer": a} for q, a in answers],
        )
    except ValidationError as exc:
        raise GatewayInputError(f"screening: {validation_message(exc)}") from None
    return event, consent_resource is not None


def _category_of(concepts: object) -> Category | None:
    for concept in _list(concepts, "category"):
        for coding in _list(_dict(concept, "category").get("coding"), "coding"):
            if isinstance(coding, dict) and coding.get("system") == SDOH_CATEGORY_SYSTEM:
                try:
                    return Category(str(coding.get("code")))
                except ValueError:
                    raise GatewayInputError("category: not an SDOHCC category code") from None
    return None


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
    consent_resource = _consent_of(sr, resolver)
    if consent_resource is None:
        raise GatewayInputError(
            "a referral needs the patient's SDOHCC Consent (contained, in supportingInfo, or "
            "in the Bundle): without it the network may disclose nothing"
        )
    referral_id = _str(sr.get("id"))
    for identifier in _list(sr.get("identifier"), "identifier"):
        if isinstance(identifier, dict) and _str(identifier.get("value")):
            referral_id = referral_id or identifier["value"]
    service_id = None
    for performer in _list(sr.get("performer"), "performer"):
        ref = _str(_dict(performer, "performer").get("reference"))
        if ref and ref.startswith("HealthcareService/"):
            service_id = ref.split("/", 1)[1]
    note = next(
        (
            n["text"]
            for n in _list(sr.get("note"), "note")
            if isinstance(n, dict) and _str(n.get("text"))
        ),
        None,
    )
    try:
        return ReferralRequested.new(
            referral_id=referral_id or str(uuid.uuid4()),
            patient=patient,
            consent=consent_from(consent_resource),
            category=category,
            service_id=service_id,
            priority=sr.get("priority"),
            note=note,
        )
    except ValidationError as exc:
        raise GatewayInputError(f"ServiceRequest: {validation_message(exc)}") from None


# ===================================================================== clinics' Tasks


def clinic_task(record: Mapping[str, Any], clinic_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The clinic's referral as (ServiceRequest, Task) JSON, from its latest referral.updated."""
    update = record["update"]
    sr, task = render_referral(
        referral_id=update["referral_id"],
        patient_id=update["patient_id"],
        category=Category(update["category"]),
        status=TaskStatus(update["status"]),
        clinic_id=clinic_id,
        authored_on=datetime.fromisoformat(record["authored_on"]),
        business_status=(
            BusinessStatus(update["business_status"]) if update.get("business_status") else None
        ),
        org_id=update.get("org_id"),
        service_id=update.get("service_id"),
        reason=update.get("reason"),
        outcome=update.get("outcome"),
        network_id=NETWORK_ORG,
    )
    task_json = resource_json(task)
    task_json["lastModified"] = update["occurred_at"]
    return resource_json(sr), task_json


# ===================================================================== organizations' Tasks

#: What an organization may set a Task's status to (FHIR Task.status = OrgStatus values).
ORG_STATUSES: Final = frozenset(s.value for s in OrgStatus)


def org_task(
    record: Mapping[str, Any], org_id: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An offer as the organization's (Task, ServiceRequest, Patient), Gravity's light pattern.

    Only the offer's minimum-necessary fields appear: the Patient carries a given
    name, a phone, a language and a postal code, nothing else.
    """
    offer = ReferralOffered.model_validate(record["offer"])
    ident = fhir_id(offer.referral_id)
    patient_id = f"p-{ident}"[:64]
    own = record.get("own") or {}
    withdrawn = record.get("withdrawn")
    if withdrawn:
        status, reason = "cancelled", withdrawn
    else:
        status, reason = own.get("status", "requested"), own.get("reason")
    identifier = [{"system": REFERRAL_ID_SYSTEM, "value": offer.referral_id}]
    category = offer.category
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"given": [offer.patient.given_name]}],
    }
    if offer.patient.phone:
        patient["telecom"] = [{"system": "phone", "value": offer.patient.phone}]
    if offer.patient.preferred_language:
        patient["communication"] = [
            {
                "language": {
                    "coding": [
                        {"system": "urn:ietf:bcp:47", "code": offer.patient.preferred_language}
                    ]
                },
                "preferred": True,
            }
        ]
    if offer.patient.postal_code:
        patient["address"] = [{"postalCode": offer.patient.postal_code}]
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": ident,
        "meta": {
            "profile": [
                "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-ServiceRequest"
            ]
        },
        "identifier": identifier,
        "status": "active"
        if status not in ("completed", "cancelled", "rejected", "failed")
        else ("completed" if status == "completed" else "revoked"),
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "410606002",
                        "display": "Social service procedure",
                    }
                ]
            },
            {
                "coding": [
                    {
                        "system": SDOH_CATEGORY_SYSTEM,
                        "code": category.value,
                        "display": category_display(category),
                    }
                ]
            },
        ],
        "priority": offer.priority.value,
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "410606002",
                    "display": "Social service procedure",
                }
            ]
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "requester": {"reference": f"Organization/{NETWORK_ORG}"},
        "performer": [
            {"reference": f"Organization/{org_id}"},
            {"reference": f"HealthcareService/{fhir_id(offer.service_id)}"},
        ],
        "authoredOn": offer.occurred_at.isoformat(),
    }
    if offer.note:
        service_request["note"] = [{"text": offer.note}]
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": ident,
        "meta": {"profile": [TASK_PROFILE]},
        "identifier": identifier,
        "status": status,
        "intent": "order",
        "priority": offer.priority.value,
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/CodeSystem/task-code",
                    "code": "fulfill",
                    "display": "Fulfill the focal request",
                }
            ]
        },
        "focus": {"reference": f"ServiceRequest/{ident}"},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": offer.occurred_at.isoformat(),
        "lastModified": record.get("modified") or offer.occurred_at.isoformat(),
        "requester": {"reference": f"Organization/{NETWORK_ORG}"},
        "owner": {"reference": f"Organization/{org_id}"},
        "restriction": {"period": {"end": offer.respond_by.isoformat()}},
    }
    if reason:
        task["statusReason"] = {"text": reason}
    if own.get("outcome"):
        task["output"] = [
            {
                "type": {
                    "text": "Outcome",
                    "coding": [{"system": "urn:refnet:codesystem:task-output", "code": "outcome"}],
                },
                "valueString": own["outcome"],
            }
        ]
    if own.get("note"):
        task["note"] = [{"text": own["note"]}]
    return task, service_request, patient


def _concept_value(concept: object) -> str | None:
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and _str(coding.get("code")):
            return str(coding["code"])
    return _str(concept.get("text"))


def status_change_from(task: object, referral_id: str) -> ReferralStatusChanged:
    """A Task an organization PUT (or patched) as ``referral.status-changed``."""
    task = _dict(task, "the Task")
    if task.get("resourceType") != "Task":
        raise GatewayInputError("expected a Task")
    status = task.get("status")
    if status not in ORG_STATUSES:
        raise GatewayInputError(
            f"Task.status must be one of {', '.join(sorted(ORG_STATUSES))}", code="value"
        )
    reason = _concept_value(task.get("statusReason"))
    outcome = None
    for output in _list(task.get("output"), "Task.output"):
        if isinstance(output, dict):
            outcome = _str(output.get("valueString")) or _concept_value(
                output.get("valueCodeableConcept")
            )
            if outcome:
                break
    note = next(
        (
            n["text"]
            for n in _list(task.get("note"), "Task.note")
            if isinstance(n, dict) and _str(n.get("text"))
        ),
        None,
    )
    try:
        return ReferralStatusChanged.new(
            referral_id=referral_id, status=status, reason=reason, outcome=outcome, note=note
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Task: {validation_message(exc)}") from None


# ===================================================================== JSON Patch


def apply_json_patch(document: dict[str, Any], operations: object) -> dict[str, Any]:
    """RFC 6902 add / replace / remove / test on a copy of ``document`` (no move or copy)."""
    import copy

    result = copy.deepcopy(document)
    for op in _list(operations, "a JSON Patch"):
        op = _dict(op, "a JSON Patch operation")
        kind, path = op.get("op"), op.get("path")
        if kind not in ("add", "replace", "remove", "test") or not isinstance(path, str):
            raise GatewayInputError(
                "JSON Patch: each operation needs op add, replace, remove or test and a path"
            )
        if not path.startswith("/") or path == "/":
            raise GatewayInputError("JSON Patch: a path starts with / and names a member")
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
        parent: Any = result
        for token in tokens[:-1]:
            parent = _step(parent, token)
        last = tokens[-1]
        if kind == "test":
            if _step(parent, last) != op.get("value"):
                raise GatewayInputError("JSON Patch: a test failed", status=409, code="conflict")
        elif isinstance(parent, dict):
            if kind == "remove":
                if last not in parent:
                    raise GatewayInputError("JSON Patch: remove names no member")
                del parent[last]
            else:
                if "value" not in op:
                    raise GatewayInputError("JSON Patch: add and replace need a value")
                parent[last] = op["value"]
        elif isinstance(parent, list):
            index = len(parent) if last == "-" else _index(last, len(parent) + 1)
            if kind == "remove":
                if index >= len(parent):
                    raise GatewayInputError("JSON Patch: remove names no element")
                parent.pop(index)
            elif kind == "add":
                parent.insert(index, op.get("value"))
            else:
                if index >= len(parent):
                    raise GatewayInputError("JSON Patch: replace names no element")
                parent[index] = op.get("value")
        else:
            raise GatewayInputError(
                "JSON Patch: a path goes through a value that is not a container"
            )
    return result


def _index(token: str, size: int) -> int:
    if not token.isdigit() or int(token) >= size:
        raise GatewayInputError("JSON Patch: an array index is out of range")
    return int(token)


def _step(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise GatewayInputError("JSON Patch: a path names a missing member")
        return node[token]
    if isinstance(node, list):
        return node[_index(token, len(node))]
    raise GatewayInputError("JSON Patch: a path goes through a value that is not a container")


__all__ = [
    "CAPACITY_EXTENSION",
    "NETWORK_ORG",
    "ORG_STATUSES",
    "GatewayInputError",
    "Resolver",
    "apply_json_patch",
    "clinic_task",
    "consent_from",
    "operation_outcome",
    "org_task",
    "patient_from",
    "referral_from",
    "screening_from",
    "status_change_from",
]
