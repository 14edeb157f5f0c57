"""Referral Tasks as the parties see them, and the Task an organization writes back.

Clinics read their referral as a (ServiceRequest, Task) pair rendered from the
latest ``referral.updated`` (:func:`connectors.fhir.mapping.render_referral`).

Organizations read an offer as Gravity's light pattern (Task, ServiceRequest,
Patient) with only the offer's minimum-necessary fields, and write a Task back:
its ``status`` becomes ``referral.status-changed``; the reason is
``statusReason`` (its first coding's code, else its text), the outcome the first
``output`` value (string, or a CodeableConcept's code or text, else the first
coded output's code), the note the first ``note.text`` (but the network's own
notes). Codings travel too (:mod:`connectors.fhir.codings`): the statusReason's
coding and the coded outputs; the offer's ServiceRequest shows the clinic's own
``code``.

An organization's Task shows the network's truth: ``requested`` until the network
confirms an answer (``referral.status-recorded``: its status, reason, outcome and
their codings), ``cancelled`` once the offer is withdrawn; the network's refusal of
its last update (``message.refused``) is a ``note`` by the network naming the rule,
and the status stays what the network has.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from connectors.fhir.codings import (
    code_concept,
    status_reason,
    status_reason_coding,
    stored_codes,
    stored_coding,
    stored_outputs,
    task_output,
    task_outputs,
)
from connectors.fhir.inputs import (
    GatewayInputError,
    first_text,
    json_array,
    json_object,
    nonblank,
    validation_message,
)
from connectors.fhir.mapping import (
    FULFILL,
    REFERRAL_ID_SYSTEM,
    SERVICE_REQUEST_PROFILE,
    SOCIAL_SERVICE_PROCEDURE,
    TASK_PROFILE,
    concept,
    fhir_id,
    render_referral,
    resource_json,
    service_request_category,
)
from schemas.codes import BusinessStatus, Category, OrgStatus, TaskStatus
from schemas.events import ReferralOffered, ReferralStatusChanged

NETWORK_ORG: Final = "refnet"
#: What an organization may set a Task's status to (FHIR Task.status = OrgStatus values).
ORG_STATUSES: Final = frozenset(s.value for s in OrgStatus)
#: How a Task's note of the network's refusal of the organization's last update begins.
REFUSED_PREFIX: Final = "The network refused the last update"
#: The Task statuses after which a referral no longer changes.
CLOSED: Final = frozenset({"completed", "failed", "rejected", "cancelled"})


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
        codes=stored_codes(update.get("codes")),
        reason_coding=stored_coding(update.get("reason_coding")),
        outputs=stored_outputs(update.get("outputs")),
    )
    task_json = resource_json(task)
    task_json["lastModified"] = update["occurred_at"]
    return resource_json(sr), task_json


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
    recorded = record.get("recorded") or {}
    withdrawn = record.get("withdrawn")
    if withdrawn:
        status, reason = "cancelled", withdrawn
    else:
        status, reason = recorded.get("status", "requested"), recorded.get("reason")
    patient = _offer_patient(offer, patient_id)
    service_request = _offer_service_request(offer, org_id, ident, patient_id, status)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": ident,
        "meta": {"profile": [TASK_PROFILE]},
        "identifier": service_request["identifier"],
        "status": status,
        "intent": "order",
        "priority": offer.priority.value,
        "code": concept(*FULFILL),
        "basedOn": [{"reference": f"ServiceRequest/{ident}"}],
        "partOf": [_clinic_task_reference(offer.referral_id)],
        "focus": {"reference": f"ServiceRequest/{ident}"},
        "for": {"reference": f"Patient/{patient_id}"},
        "authoredOn": offer.occurred_at.isoformat(),
        "lastModified": last_modified(record, offer),
        "requester": {"reference": f"Organization/{NETWORK_ORG}"},
        "owner": {"reference": f"Organization/{org_id}"},
        "restriction": {"period": {"end": offer.respond_by.isoformat()}},
    }
    if reason:
        coded = None if withdrawn else stored_coding(recorded.get("reason_coding"))
        task["statusReason"] = status_reason(reason, None, coded) if coded else {"text": reason}
    outputs = task_output(recorded.get("outcome"), stored_outputs(recorded.get("outputs")))
    if outputs:
        task["output"] = outputs
    refused = record.get("refused")
    if refused:
        task["note"] = [refusal_note(refused)]
    return task, service_request, patient


def refusal_note(refused: Mapping[str, Any]) -> dict[str, Any]:
    """The network's refusal of the organization's last update, as a Task ``note`` (the
    Task keeps the status the network has): authored by the network, when, the kind and
    the rule, and where the organization's offer stands (withdrawn, closed, not-offered)."""
    return {
        "authorReference": {"reference": f"Organization/{NETWORK_ORG}"},
        "time": refused["at"],
        "text": f"{REFUSED_PREFIX} ({refused['kind']}): {refused['rule']}"
        + (f" (its offer: {refused['offer']})" if refused.get("offer") else ""),
    }


def _clinic_task_reference(referral_id: str) -> dict[str, Any]:
    """The referring clinic's Task, as a logical reference (by the referral's identifier):
    the clinic's Task is the clinic's to read, not the organization's."""
    return {
        "type": "Task",
        "identifier": {"system": REFERRAL_ID_SYSTEM, "value": referral_id},
        "display": "the referring clinic's Task",
    }


def last_modified(record: Mapping[str, Any], offer: ReferralOffered) -> str:
    """The latest of the offer's, its withdrawal's and the network's confirmation of the
    organization's last answer: it never goes backwards (the view reads in order)."""
    times = [datetime.fromisoformat(record.get("modified") or offer.occurred_at.isoformat())]
    times.append(offer.occurred_at)
    latest = max(t if t.tzinfo else t.replace(tzinfo=UTC) for t in times)
    return latest.isoformat()


def _offer_patient(offer: ReferralOffered, patient_id: str) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"given": [offer.patient.given_name]}],
    }
    if offer.patient.phone:
        patient["telecom"] = [{"system": "phone", "value": offer.patient.phone}]
    if offer.patient.preferred_language:
        language = concept("urn:ietf:bcp:47", offer.patient.preferred_language)
        patient["communication"] = [{"language": language, "preferred": True}]
    if offer.patient.postal_code:
        patient["address"] = [{"postalCode": offer.patient.postal_code}]
    return patient


def _offer_service_request(
    offer: ReferralOffered, org_id: str, ident: str, patient_id: str, status: str
) -> dict[str, Any]:
    closed = status in ("completed", "cancelled", "rejected", "failed")
    service_request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": ident,
        "meta": {"profile": [SERVICE_REQUEST_PROFILE]},
        "identifier": [{"system": REFERRAL_ID_SYSTEM, "value": offer.referral_id}],
        "status": ("completed" if status == "completed" else "revoked") if closed else "active",
        "intent": "order",
        "category": service_request_category(offer.category),
        "priority": offer.priority.value,
        "code": code_concept(offer.codes) if offer.codes else concept(*SOCIAL_SERVICE_PROCEDURE),
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
    return service_request


def _concept_value(concept: object) -> str | None:
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and nonblank(coding.get("code")):
            return str(coding["code"])
    return nonblank(concept.get("text"))


def _by_network(note: Mapping[str, Any]) -> bool:
    return note.get("authorReference") == {"reference": f"Organization/{NETWORK_ORG}"}


def status_change_from(
    task: object, referral_id: str, offer: ReferralOffered | None = None
) -> ReferralStatusChanged:
    """A Task an organization PUT (or patched) as ``referral.status-changed``.

    ``offer``: the offer the Task is of; the answer names its attempt and service,
    so that the network never applies it to another offer of the referral.
    """
    task = json_object(task, "the Task")
    if task.get("resourceType") != "Task":
        raise GatewayInputError("expected a Task")
    status = task.get("status")
    if status not in ORG_STATUSES:
        raise GatewayInputError(
            f"Task.status must be one of {', '.join(sorted(ORG_STATUSES))}", code="value"
        )
    reason = _concept_value(task.get("statusReason"))
    reason_coding = status_reason_coding(task.get("statusReason"))
    outputs = task_outputs(task)
    values = [o for o in json_array(task.get("output"), "Task.output") if isinstance(o, dict)]
    # the outcome's text: a string output first (coded outputs travel as outputs), else a
    # CodeableConcept's code or text, else a coded output's code (completed needs one)
    strings = [text for o in values if (text := nonblank(o.get("valueString")))]
    concepts = [text for o in values if (text := _concept_value(o.get("valueCodeableConcept")))]
    coded = [o.value.code for o in outputs]
    outcome = next(iter(strings + concepts + coded), None)
    notes = task.get("note")
    if isinstance(notes, list):  # the network's own notes (a refusal) are not the party's
        notes = [n for n in notes if not (isinstance(n, dict) and _by_network(n))]
    note = first_text(notes, "Task.note")
    try:
        return ReferralStatusChanged.new(
            referral_id=referral_id,
            status=status,
            reason=reason,
            outcome=outcome,
            note=note,
            attempt=offer.attempt if offer is not None else None,
            service_id=offer.service_id if offer is not None else None,
            reason_coding=reason_coding,
            outputs=outputs,
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Task: {validation_message(exc)}") from None


__all__ = [
    "CLOSED",
    "NETWORK_ORG",
    "ORG_STATUSES",
    "REFUSED_PREFIX",
    "clinic_task",
    "org_task",
    "refusal_note",
    "status_change_from",
]
