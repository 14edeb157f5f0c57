"""Referrals: what clinics ask, what organizations are offered and answer, what
the clinic and the event log hear of each change."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from schemas.codes import BusinessStatus, Category, OrgStatus, Party, Priority, TaskStatus
from schemas.events.base import Event, require_event_type
from schemas.events.fields import (
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
    "STATUSES_NEEDING_REASON",
    "ConsentUpdated",
    "ReferralCancelled",
    "ReferralOffered",
    "ReferralRequested",
    "ReferralStateChanged",
    "ReferralStatusChanged",
    "ReferralUpdated",
    "ReferralWithdrawn",
]
