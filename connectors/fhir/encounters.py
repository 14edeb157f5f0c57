"""A facility's FHIR R4 Encounter (US Core) as ``encounter.notified``, and back as the
Encounter the facility reads.

Mapping decisions
-----------------
* Validated as an R4 Encounter (fhir.resources R4B models) before anything is read.
* Event: ``status`` finished -> discharge; in-progress or arrived with ``class``
  IMP -> admit; in-progress, arrived or triaged with class EMER -> ed-visit;
  in-progress or arrived with any other class -> registration. Other statuses
  (planned, onleave, cancelled, entered-in-error, unknown) are refused: they
  say nothing happened to the patient.
* Class: the ``class`` Coding from v3-ActCode, one of refnet's
  :class:`~schemas.codes.EncounterClass` codes.
* Time: ``period.end`` for a discharge (else ``period.start``), ``period.start``
  otherwise; it must carry a time and a time zone.
* Id: the Encounter's first ``identifier.value`` (the visit number), else its ``id``.
* Reasons: the ICD-10-CM and SNOMED CT codings of ``reasonCode``; other systems
  and free text are dropped (text may identify the patient).
* Patient: ``subject`` names a Patient contained in the Encounter or carried in
  the same transaction Bundle; its first ``identifier.value`` (the MRN, else
  its id), given and family name, ``birthDate``, first ``address.postalCode``
  and first phone ``telecom``.

Errors name the rule broken, never a value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from fhir.resources.R4B.encounter import Encounter
from pydantic import ValidationError

from connectors.fhir.inputs import (
    GatewayInputError,
    first_value,
    json_array,
    json_object,
    nonblank,
    validation_message,
)
from connectors.fhir.mapping import fhir_id
from connectors.fhir.patients import Resolver, referenced_patient
from schemas.codes import ICD10CM_SYSTEM, SNOMED_SYSTEM, EncounterClass, EncounterEvent
from schemas.events.encounters import (
    MAX_REASONS,
    EncounterNotified,
    EncounterPatient,
    EncounterReason,
)

ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: refnet's encounter events (:class:`~schemas.codes.EncounterEvent`) as a code system
ENCOUNTER_EVENT_SYSTEM: Final = "urn:refnet:CodeSystem:encounter-event"
US_CORE_ENCOUNTER: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"
#: the system of a rendered Encounter's identifier (the facility's visit number)
VISIT_NUMBER_SYSTEM: Final = "urn:refnet:facility-visit-number"
REASON_SYSTEMS: Final = frozenset({ICD10CM_SYSTEM, SNOMED_SYSTEM})
#: FHIR Encounter.status a facility may send, and what each can mean
_ACTIVE: Final = frozenset({"in-progress", "arrived"})


def encounter_event(status: str, encounter_class: EncounterClass) -> EncounterEvent:
    """What an Encounter's status and class say happened (see the module's table)."""
    if status == "finished":
        return EncounterEvent.DISCHARGE
    if encounter_class is EncounterClass.EMERGENCY and status in _ACTIVE | {"triaged"}:
        return EncounterEvent.ED_VISIT
    if status in _ACTIVE:
        if encounter_class is EncounterClass.INPATIENT:
            return EncounterEvent.ADMIT
        return EncounterEvent.REGISTRATION
    raise GatewayInputError(
        "Encounter.status must be in-progress, arrived, finished (or triaged for class EMER): "
        "other statuses report no encounter"
    )


def _class(resource: dict[str, Any]) -> EncounterClass:
    coding = json_object(resource.get("class"), "Encounter.class (a Coding)")
    if coding.get("system") != ACT_CODE_SYSTEM:
        raise GatewayInputError(f"Encounter.class must be a Coding from {ACT_CODE_SYSTEM}")
    try:
        return EncounterClass(str(coding.get("code")))
    except ValueError:
        allowed = ", ".join(c.value for c in EncounterClass)
        raise GatewayInputError(f"Encounter.class.code must be one of {allowed}") from None


def _when(resource: dict[str, Any], event: EncounterEvent) -> datetime:
    period = json_object(resource.get("period") or {}, "Encounter.period")
    field = "end" if event is EncounterEvent.DISCHARGE and period.get("end") else "start"
    value = period.get(field)
    if not isinstance(value, str) or "T" not in value:
        raise GatewayInputError(
            f"Encounter.period.{field} must be a dateTime with a time and a time zone"
        )
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise GatewayInputError(f"Encounter.period.{field} is not a dateTime") from None
    if when.tzinfo is None:
        raise GatewayInputError(f"Encounter.period.{field} must carry a time zone")
    return when


def _reasons(resource: dict[str, Any]) -> list[EncounterReason]:
    reasons: list[EncounterReason] = []
    seen: set[tuple[str, str]] = set()
    for concept in json_array(resource.get("reasonCode"), "Encounter.reasonCode"):
        codings = json_object(concept, "Encounter.reasonCode[]").get("coding")
        for coding in json_array(codings, "Encounter.reasonCode.coding"):
            if not isinstance(coding, dict) or coding.get("system") not in REASON_SYSTEMS:
                continue
            key = (str(coding["system"]), str(coding.get("code")))
            if key not in seen:
                seen.add(key)
                reasons.append(EncounterReason(system=key[0], code=key[1]))
    if len(reasons) > MAX_REASONS:
        raise GatewayInputError(
            f"Encounter.reasonCode holds more than {MAX_REASONS} ICD-10-CM or SNOMED codes"
        )
    return reasons


def _patient(resource: dict[str, Any], resolver: Resolver) -> EncounterPatient:
    found = referenced_patient(
        resource, resolver, "subject", "the network links on its demographics"
    )
    if found.given is None or found.family is None:
        raise GatewayInputError("the Patient needs a given and a family name (Patient.name)")
    born = found.resource.get("birthDate")
    if not nonblank(born):
        raise GatewayInputError("the Patient needs a birthDate")
    try:
        return EncounterPatient(
            id=found.id,
            given_name=found.given,
            family_name=found.family,
            birth_date=born,
            postal_code=found.postal_code,
            phone=found.phone,
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Patient: {validation_message(exc)}") from None


def _validate(resource: dict[str, Any]) -> None:
    try:
        Encounter.model_validate(resource)
    except ValidationError as exc:
        raise GatewayInputError(f"Encounter: {validation_message(exc)}") from None


def encounter_from(resource: dict[str, Any], resolver: Resolver) -> EncounterNotified:
    """A facility's Encounter (and the Patient it names) as ``encounter.notified``."""
    if resource.get("resourceType") != "Encounter":
        raise GatewayInputError("the resource must be an Encounter", status=400, code="structure")
    _validate(resource)
    encounter_class = _class(resource)
    event = encounter_event(str(resource.get("status")), encounter_class)
    ident = first_value(resource.get("identifier"), "Encounter.identifier", "value")
    ident = ident or nonblank(resource.get("id"))
    if ident is None:
        raise GatewayInputError("the Encounter needs an identifier (the visit number) or an id")
    try:
        return EncounterNotified.new(
            encounter_id=ident,
            patient=_patient(resource, resolver),
            event=event,
            encounter_class=encounter_class,
            encounter_at=_when(resource, event),
            reasons=_reasons(resource),
        )
    except ValidationError as exc:
        raise GatewayInputError(f"Encounter: {validation_message(exc)}") from None


_STATUS = {
    EncounterEvent.DISCHARGE: "finished",
    EncounterEvent.ADMIT: "in-progress",
    EncounterEvent.ED_VISIT: "in-progress",
    EncounterEvent.REGISTRATION: "in-progress",
    EncounterEvent.TRANSFER: "in-progress",
    EncounterEvent.UPDATE: "in-progress",
}


def render_encounter(event: EncounterNotified) -> dict[str, Any]:
    """The Encounter as the facility reads it back: what the network was told, without
    the demographics (the Patient is named by the MRN only)."""
    when = event.encounter_at.isoformat()
    period = {"end": when} if event.event is EncounterEvent.DISCHARGE else {"start": when}
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": fhir_id(event.encounter_id),
        "meta": {"profile": [US_CORE_ENCOUNTER], "lastUpdated": event.occurred_at.isoformat()},
        "identifier": [{"system": VISIT_NUMBER_SYSTEM, "value": event.encounter_id}],
        "status": _STATUS[event.event],
        "class": {"system": ACT_CODE_SYSTEM, "code": event.encounter_class.value},
        "type": [
            {
                "coding": [{"system": ENCOUNTER_EVENT_SYSTEM, "code": event.event.value}],
                "text": f"refnet encounter event: {event.event.value}",
            }
        ],
        "subject": {
            "reference": f"Patient/{fhir_id(event.patient.id)}",
            "identifier": {"value": event.patient.id},
        },
        "period": period,
    }
    if event.reasons:
        resource["reasonCode"] = [
            {"coding": [{"system": r.system, "code": r.code}]} for r in event.reasons
        ]
    return resource


__all__ = [
    "ACT_CODE_SYSTEM",
    "ENCOUNTER_EVENT_SYSTEM",
    "REASON_SYSTEMS",
    "US_CORE_ENCOUNTER",
    "VISIT_NUMBER_SYSTEM",
    "encounter_event",
    "encounter_from",
    "render_encounter",
]
