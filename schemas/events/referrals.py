"""Referrals: what clinics ask, what organizations are offered and answer, what
the clinic and the event log hear of each change."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from schemas.codes import (
    CODING_SYSTEMS,
    BusinessStatus,
    Category,
    OrgStatus,
    Party,
    Priority,
    TaskStatus,
)
from schemas.events.base import Event, WireModel, require_event_type
from schemas.events.fields import (
    NULL_IS_EMPTY,
    NULL_IS_ROUTINE,
    Code,
    EventId,
    Id,
    Integer,
    Language,
    Note,
    PartyId,
    PostalCode,
    Reason,
    Timestamp,
)
from schemas.events.patient import Consent, OfferedPatient, Patient

#: An offer's attempt: 1 for the first organization offered the referral.
Attempt = Annotated[Integer, Field(ge=1)]

#: Codings of one referral's requested service (the clinic's ServiceRequest.code).
MAX_CODES: Final = 10
#: Outputs of one organization's Task (Task.output).
MAX_OUTPUTS: Final = 10

CodingSystem = Literal[
    "http://snomed.info/sct",
    "http://loinc.org",
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://www.ama-assn.org/go/cpt",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes",
    "urn:refnet:codesystem:reason",
]
assert CodingSystem.__args__ == CODING_SYSTEMS  # type: ignore[attr-defined]


class Coding(WireModel):
    """A code of a known terminology (added in v1): system and code, no display.

    The system is one of an allow-list (``schemas.codes.CODING_SYSTEMS``) and the
    code a bounded token, so a coding never carries free text; the receiving side
    renders the display from the codes it knows.
    """

    system: CodingSystem
    code: Code


class TaskOutput(WireModel):
    """One output of an organization's Task (added in v1): its type (``resulting-activity``
    in the SDOHCC temporary codes for what was done) and its coded value."""

    type: Coding
    value: Coding


Codes = Annotated[list[Coding], Field(max_length=MAX_CODES), NULL_IS_EMPTY]
Outputs = Annotated[list[TaskOutput], Field(max_length=MAX_OUTPUTS), NULL_IS_EMPTY]


class ReferralRequested(Event):
    """A clinician refers directly (clinic submissions topic, key patient id)."""

    event_type: Literal["referral.requested"] = "referral.requested"
    referral_id: Id
    patient: Patient
    consent: Consent
    category: Category
    service_id: Id | None = Field(default=None, description="asks for one service")
    priority: Annotated[Priority, NULL_IS_ROUTINE] = Field(
        default=Priority.ROUTINE, description="null means routine"
    )
    note: Note | None = None
    codes: Codes = Field(
        default_factory=list,
        description=(
            "added in v1: the requested service's codings (a FHIR ServiceRequest.code), "
            "passed to the organization and back to the clinic as sent"
        ),
    )


class ReferralCancelled(Event):
    """The clinic cancels a referral (clinic submissions topic)."""

    event_type: Literal["referral.cancelled"] = "referral.cancelled"
    referral_id: Id
    reason: Reason | None = None


class ConsentUpdated(Event):
    """A clinic revokes, narrows or renews a patient's consent (clinic submissions, key patient id).

    It replaces the consent of every referral the clinic has open for the
    patient: an open referral the new consent no longer covers is withdrawn from
    its organization (reason ``consent-withdrawn``) and ends ``failed`` /
    ``consent-required``; later re-routes disclose only under the new consent.
    """

    event_type: Literal["consent.updated"] = "consent.updated"
    patient_id: Id
    consent: Consent


class ReferralOffered(Event):
    """The network offers a referral to an organization: minimum necessary only."""

    event_type: Literal["referral.offered"] = "referral.offered"
    referral_id: Id
    service_id: Id
    category: Category
    priority: Annotated[Priority, NULL_IS_ROUTINE] = Field(
        default=Priority.ROUTINE, description="null means routine"
    )
    respond_by: Timestamp
    patient: OfferedPatient
    note: Note | None = None
    attempt: Attempt | None = Field(
        default=None,
        description=(
            "added in v1: which offer of the referral this is (1 for the first); an answer "
            "names it to be bound to this offer"
        ),
    )
    codes: Codes = Field(
        default_factory=list,
        description="added in v1: the codings of the service the clinic requested",
    )


class ReferralWithdrawn(Event):
    """The network withdraws an offer; the organization must stop work."""

    event_type: Literal["referral.withdrawn"] = "referral.withdrawn"
    referral_id: Id
    reason: Reason = Field(description="timeout, cancelled-by-clinic or another documented code")
    attempt: Attempt | None = Field(
        default=None, description="added in v1: the attempt of the offer withdrawn"
    )


#: Organization statuses that must say why (docs/contract.md).
STATUSES_NEEDING_REASON: Final = frozenset(
    {OrgStatus.REJECTED, OrgStatus.FAILED, OrgStatus.CANCELLED}
)


def _status_changed_schema(schema: dict[str, Any]) -> None:
    require_event_type(schema)
    # The model validator's rule, for validators in other languages.
    schema["if"] = {
        "properties": {"status": {"enum": sorted(s.value for s in STATUSES_NEEDING_REASON)}},
        "required": ["status"],
    }
    schema["then"] = {"properties": {"reason": {"type": "string"}}, "required": ["reason"]}


class ReferralStatusChanged(Event):
    """An organization reports progress on a referral offered to it."""

    model_config = ConfigDict(json_schema_extra=_status_changed_schema)

    event_type: Literal["referral.status-changed"] = "referral.status-changed"
    referral_id: Id
    status: OrgStatus
    reason: Reason | None = None
    outcome: Reason | None = None
    note: Note | None = None
    attempt: Attempt | None = Field(
        default=None,
        description=(
            "added in v1: the attempt of the offer answered (from referral.offered); an "
            "answer to another offer than the one in force is refused"
        ),
    )
    service_id: Id | None = Field(
        default=None,
        description=(
            "added in v1: the service of the offer answered; an answer to another offer than "
            "the one in force is refused"
        ),
    )
    reason_coding: Coding | None = Field(
        default=None,
        description="added in v1: the reason as a coding (a FHIR Task.statusReason coding)",
    )
    outputs: Outputs = Field(
        default_factory=list,
        description="added in v1: what the organization did, coded (FHIR Task.output)",
    )

    @model_validator(mode="after")
    def _reason_when_required(self) -> Self:
        if self.status in STATUSES_NEEDING_REASON and self.reason is None:
            raise ValueError(f"status {self.status.value} needs a reason")
        return self


class ReferralUpdated(Event):
    """What the referring clinic sees of its referral (clinic updates topic)."""

    event_type: Literal["referral.updated"] = "referral.updated"
    referral_id: Id
    patient_id: Id
    category: Category
    screening_id: Id | None = None
    status: TaskStatus
    business_status: BusinessStatus | None = None
    org_id: PartyId | None = None
    service_id: Id | None = None
    reason: Reason | None = None
    outcome: Reason | None = None
    attempt: Integer = Field(ge=0, description="1 for the first organization offered")
    duplicate_of: Id | None = Field(
        default=None,
        description="with business_status duplicate: the patient's open referral in the category",
    )
    reported_at: Timestamp | None = Field(
        default=None,
        description=(
            "added in v1: the time the party claimed for the message that caused this "
            "change (its occurred_at); occurred_at is the network's"
        ),
    )
    codes: Codes = Field(
        default_factory=list,
        description="added in v1: the codings of the service requested (as the clinic sent them)",
    )
    reason_coding: Coding | None = Field(
        default=None,
        description="added in v1: the organization's reason coding, on the change it caused",
    )
    outputs: Outputs = Field(
        default_factory=list,
        description="added in v1: the organization's coded outputs, on the change it caused",
    )


class ReferralStateChanged(Event):
    """One record per referral state change (referral events topic: ledger, audit)."""

    event_type: Literal["referral.state-changed"] = "referral.state-changed"
    referral_id: Id
    clinic_referral_id: Id | None = Field(
        default=None, description="the referring clinic's own id of this referral"
    )
    patient_id: Id
    clinic_id: PartyId
    category: Category
    screening_id: Id | None = None
    from_status: TaskStatus | None = Field(default=None, description="null when created")
    to_status: TaskStatus
    business_status: BusinessStatus | None = None
    org_id: PartyId | None = None
    service_id: Id | None = None
    reason: Reason | None = None
    outcome: Reason | None = None
    attempt: Integer = Field(ge=0)
    actor: Party
    cause_event_id: EventId | None = Field(
        default=None, description="the event that caused this change"
    )
    preferred_language: Language | None = Field(
        default=None,
        description="the patient's preferred language (added in v1: equity reports stratify by it)",
    )
    postal_code: PostalCode | None = Field(
        default=None,
        description="the patient's postal code (added in v1: service gaps and equity reports)",
    )
    disclosed_fields: Annotated[list[Code], Field(max_length=16)] | None = Field(
        default=None,
        description=(
            "on an offer (added in v1): the names of the patient fields disclosed to the "
            "organization, for the accounting of disclosures"
        ),
    )
    consent: Consent | None = Field(
        default=None,
        description="on an offer (added in v1): the consent the disclosure was made under",
    )
    reported_at: Timestamp | None = Field(
        default=None,
        description=(
            "added in v1: the time the party claimed for the message that caused this "
            "change (its occurred_at); occurred_at is the network's"
        ),
    )


__all__ = [
    "MAX_CODES",
    "MAX_OUTPUTS",
    "STATUSES_NEEDING_REASON",
    "Coding",
    "ConsentUpdated",
    "ReferralCancelled",
    "ReferralOffered",
    "ReferralRequested",
    "ReferralStateChanged",
    "ReferralStatusChanged",
    "ReferralUpdated",
    "ReferralWithdrawn",
    "TaskOutput",
]
