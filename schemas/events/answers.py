"""Answers: what the network tells a party about the messages it sent.

Each goes to the sender's own inbox topic (a clinic's updates topic, an
organization's referrals topic), so a party on a secured broker hears it with
its own credentials. An answer names the sender's message (where it is, and the
ids the network could read of it) and never carries a value from its payload,
nor anything about another party.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.codes import BusinessStatus, Category, DeadLetterKind, Instrument, TaskStatus
from schemas.events.base import Event, WireModel
from schemas.events.deadletters import DeadLetterSource
from schemas.events.fields import (
    MAX_NEEDS,
    MAX_PROBLEMS,
    NULL_IS_EMPTY,
    Code,
    EventId,
    Id,
    Integer,
    Note,
    Reason,
    Timestamp,
)
from schemas.events.referrals import Coding, Outputs
from schemas.events.screenings import Need


class Refusal(WireModel):
    """Why: the kind (as a dead letter's) and the rule broken, in words."""

    kind: DeadLetterKind
    rule: Note


#: What an organization's offer of a referral is when its message is refused.
OfferStanding = Literal["withdrawn", "closed", "not-offered"]


class OfferState(WireModel):
    """The referral's state for the organization whose update was refused."""

    offer: OfferStanding = Field(
        description=(
            "withdrawn: its offer was withdrawn (re-routed, timed out, cancelled) before "
            "the update arrived; closed: the referral ended; not-offered: the referral is "
            "not offered to it (nothing more is said)"
        )
    )
    attempt: Integer | None = Field(default=None, ge=1, description="its offer's attempt")
    withdrawn_event_id: EventId | None = Field(
        default=None,
        description="the referral.withdrawn the network sent it for that offer (if it sent one)",
    )
    status: TaskStatus | None = Field(
        default=None, description="the referral's final status, when it ended on its offer"
    )
    at: Timestamp | None = Field(default=None, description="when the referral ended")


class MessageRefused(Event):
    """A party's message the network refused (the party's own inbox topic)."""

    event_type: Literal["message.refused"] = "message.refused"
    source: DeadLetterSource
    refused_event_id: EventId | None = Field(
        default=None, description="the refused message's event_id, when it could be read"
    )
    refused_event_type: Code | None = Field(
        default=None, description="its event_type, when it is one the contract names"
    )
    screening_id: Id | None = Field(default=None, description="its screening_id, if readable")
    referral_id: Id | None = Field(default=None, description="its referral_id, if readable")
    error: Refusal
    referral_state: OfferState | None = None


class ReferralStatusRecorded(Event):
    """The network recorded an organization's ``referral.status-changed`` (its own
    referrals topic, key: the referral id): the status of its Task now in force.

    Sent with the change itself (the same decision, the same outbox), so an
    organization hears every accepted update once; one the network refuses is
    answered by ``message.refused`` instead. It names the organization's message
    (``cause_event_id``) and carries nothing of the patient or of another party.
    """

    event_type: Literal["referral.status-recorded"] = "referral.status-recorded"
    referral_id: Id
    status: TaskStatus = Field(
        description="the organization's Task status now in force (what it reported)"
    )
    business_status: BusinessStatus | None = Field(
        default=None,
        description="the referral's business status after the change (re-routed after a "
        "rejection: the network offers it elsewhere)",
    )
    reason: Reason | None = None
    outcome: Reason | None = None
    attempt: Integer | None = Field(default=None, ge=1, description="the offer answered")
    service_id: Id | None = Field(default=None, description="the service of the offer answered")
    cause_event_id: EventId = Field(description="the organization's referral.status-changed")
    reason_coding: Coding | None = Field(
        default=None, description="the organization's reason as a coding, as it sent it"
    )
    outputs: Outputs = Field(
        default_factory=list, description="the organization's coded outputs, as it sent them"
    )


class ScreeningReferral(WireModel):
    """A referral a screening opened (or would have: ``outcome`` says)."""

    referral_id: Id
    category: Category
    outcome: Literal["opened", "consent-required", "duplicate", "already-opened"]


class ProblemFound(WireModel):
    """A scoring problem: its kind and question code, never an answer value."""

    kind: Code
    question: Code | None = None


class ScreeningAnswered(Event):
    """What the network made of a screening (the clinic's updates topic)."""

    event_type: Literal["screening.answered"] = "screening.answered"
    screening_id: Id
    patient_id: Id
    instrument: Instrument
    cause_event_id: EventId
    needs: Annotated[list[Need], Field(max_length=MAX_NEEDS), NULL_IS_EMPTY] = Field(
        default_factory=list
    )
    referrals: Annotated[list[ScreeningReferral], Field(max_length=MAX_NEEDS), NULL_IS_EMPTY] = (
        Field(default_factory=list)
    )
    problems: Annotated[list[ProblemFound], Field(max_length=MAX_PROBLEMS), NULL_IS_EMPTY] = Field(
        default_factory=list
    )


__all__ = [
    "MessageRefused",
    "OfferState",
    "ProblemFound",
    "ReferralStatusRecorded",
    "Refusal",
    "ScreeningAnswered",
    "ScreeningReferral",
]
