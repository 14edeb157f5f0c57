"""Encounters: what a facility (a hospital, an emergency department) tells the
network, and the alerts the people helping the patient hear of it.

A facility publishes ``encounter.notified`` on its submissions topic (or sends
HL7 v2 ADT over MLLP, or a FHIR Encounter to the gateway, which publish it for
it). The network never stores the demographics it carries: it computes the
patient's linkage key at the edge and forgets the rest. The clinics that
screened or referred the patient hear ``encounter.alerted`` with the whole
event; an organization holding an active referral for the patient hears it
only as far as the patient's consent allows (``Consent.encounter_alerts``),
and then only the minimum: the kind of encounter and its date, its reasons
only under ``with-reason`` consent.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Final, Literal

from pydantic import Field

from schemas.codes import (
    ICD10CM_SYSTEM,
    SNOMED_SYSTEM,
    EncounterClass,
    EncounterEvent,
)
from schemas.events.base import Event, WireModel
from schemas.events.fields import (
    NULL_IS_EMPTY,
    Code,
    EventId,
    Id,
    Name,
    PartyId,
    Phone,
    PostalCode,
    Timestamp,
)

#: At most this many reason codes on one encounter.
MAX_REASONS: Final = 20

ReasonSystem = Literal["http://hl7.org/fhir/sid/icd-10-cm", "http://snomed.info/sct"]
assert set(ReasonSystem.__args__) == {ICD10CM_SYSTEM, SNOMED_SYSTEM}  # type: ignore[attr-defined]


class EncounterPatient(WireModel):
    """The patient as the facility knows them: its own id and the demographics
    the network links on (never stored, never passed on)."""

    id: Id = Field(description="the facility's patient id (MRN)")
    given_name: Name
    family_name: Name
    birth_date: date
    postal_code: PostalCode | None = None
    phone: Phone | None = None


class EncounterReason(WireModel):
    """A reason for the encounter: an ICD-10-CM or SNOMED CT code."""

    system: ReasonSystem
    code: Code


class EncounterNotified(Event):
    """A facility tells the network of an encounter (facility submissions topic,
    key: the facility's patient id)."""

    event_type: Literal["encounter.notified"] = "encounter.notified"
    encounter_id: Id = Field(description="the facility's visit number")
    patient: EncounterPatient
    event: EncounterEvent
    encounter_class: EncounterClass
    encounter_at: Timestamp = Field(description="when the event happened at the facility")
    reasons: Annotated[list[EncounterReason], Field(max_length=MAX_REASONS), NULL_IS_EMPTY] = Field(
        default_factory=list, description="reason codes; null means none"
    )


class EncounterAlerted(Event):
    """The network tells a clinic or an organization of a patient's encounter.

    To a clinic (its updates topic): ``patient_id`` is the clinic's own id for the
    patient, and every field is filled. To an organization (its referrals topic):
    ``referral_id`` names the referral it holds; ``patient_id``, ``facility_id``
    and ``encounter_at`` are null, and ``reasons`` is empty unless the patient's
    consent is ``with-reason``.
    """

    event_type: Literal["encounter.alerted"] = "encounter.alerted"
    patient_id: Id | None = Field(default=None, description="the clinic's patient id (clinics)")
    referral_id: Id | None = Field(
        default=None, description="the referral the organization holds (organizations)"
    )
    facility_id: PartyId | None = Field(default=None, description="where (clinics only)")
    event: EncounterEvent
    encounter_class: EncounterClass
    encounter_on: date = Field(description="the day of the encounter (facility's local date)")
    encounter_at: Timestamp | None = Field(default=None, description="when (clinics only)")
    reasons: Annotated[list[EncounterReason], Field(max_length=MAX_REASONS), NULL_IS_EMPTY] = Field(
        default_factory=list
    )
    encounter_event_id: EventId = Field(description="the encounter.notified this alert reports")


#: Why an encounter reached nobody, or what it reached.
RouteOutcome = Literal["alerted", "no-match", "no-consent"]


class EncounterRouted(Event):
    """The network's record of an encounter's routing (the event log; no patient data).

    One per recipient alerted (``alerted``), per organization the patient's
    consent kept from hearing (``no-consent``), or one ``no-match`` when no patient
    the network follows matched.
    """

    event_type: Literal["encounter.routed"] = "encounter.routed"
    encounter_event_id: EventId
    facility_id: PartyId
    event: EncounterEvent
    encounter_class: EncounterClass
    encounter_at: Timestamp
    outcome: RouteOutcome
    recipient_kind: Literal["clinic", "organization"] | None = None
    recipient_id: PartyId | None = None
    referral_id: Id | None = None


__all__ = [
    "MAX_REASONS",
    "EncounterAlerted",
    "EncounterNotified",
    "EncounterPatient",
    "EncounterReason",
    "EncounterRouted",
]
