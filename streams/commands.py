"""Internal command envelopes on the network's own topics.

The ingress re-keys what parties publish onto two internal topics so that each
piece of state has exactly one owner:

* ``{prefix}.network.patients.v1`` keyed ``clinic_id:patient_id``: the patient
  agent owns "at most one open referral per patient and category";
* ``{prefix}.network.referrals.v1`` keyed ``referral_id``: the referral agent
  owns each referral's lifecycle. Timers, organizations and clinics change a
  referral only by sending it a command here.

Every command carries a ``command_id``: the owner records the ids it has
applied, so a command delivered twice (at-least-once, replays) has no second
effect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schemas.codes import Category, Priority
from schemas.events import (
    Consent,
    DeadLetterSource,
    Patient,
    ReferralCancelled,
    ReferralRequested,
    ReferralStatusChanged,
    ScreeningSubmitted,
)

#: Namespace of the network's deterministic ids (uuid5): a replayed input yields
#: the same output ids, so every downstream consumer can deduplicate.
NETWORK_NAMESPACE = uuid5(NAMESPACE_URL, "https://refnet.invalid/network/v1")


def derived_id(*parts: object) -> UUID:
    """A stable UUID for an output derived from ``parts``."""
    return uuid5(NETWORK_NAMESPACE, "\x1f".join(str(p) for p in parts))


def patient_key(clinic_id: str, patient_id: str) -> str:
    return f"{clinic_id}:{patient_id}"


#: Longest id the contract allows.
MAX_ID_LENGTH = 128


def network_referral_id(clinic_id: str, referral_id: str) -> str:
    """The network's id of a clinic's referral: what organizations and the log see.

    Clinics choose referral and screening ids, so two clinics may use the same
    one; the network's id is scoped by the clinic (Gravity's indirect pattern:
    the platform's downstream Task has an id of its own). The clinic keeps
    seeing its own id.
    """
    scoped = f"{clinic_id}:{referral_id}"
    if len(scoped) <= MAX_ID_LENGTH:
        return scoped
    return f"{clinic_id}:{derived_id(clinic_id, referral_id)}"


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    command_id: str


# ------------------------------------------------------------------ patients topic
class SubmissionReceived(Command):
    """A clinic's screening.submitted / referral.requested / referral.cancelled."""

    kind: Literal["submission"] = "submission"
    clinic_id: str
    source: DeadLetterSource
    event: Annotated[
        ScreeningSubmitted | ReferralRequested | ReferralCancelled,
        Field(discriminator="event_type"),
    ]


class ReferralClosed(Command):
    """From the referral agent: the referral ended; free the patient's category."""

    kind: Literal["closed"] = "closed"
    referral_id: str  # the id the clinic knows
    category: Category


PatientCommand = Annotated[SubmissionReceived | ReferralClosed, Field(discriminator="kind")]
PATIENT_COMMAND: TypeAdapter[PatientCommand] = TypeAdapter(PatientCommand)


# ------------------------------------------------------------------ referrals topic
class OpenReferral(Command):
    kind: Literal["open"] = "open"
    referral_id: str  # the network's id (network_referral_id)
    clinic_referral_id: str  # the id the clinic knows
    clinic_id: str
    patient: Patient
    consent: Consent
    category: Category
    screening_id: str | None = None
    requested_service_id: str | None = None
    priority: Priority = Priority.ROUTINE
    note: str | None = None
    cause_event_id: UUID
    requested_at: datetime


class CancelReferral(Command):
    kind: Literal["cancel"] = "cancel"
    referral_id: str  # the network's id
    clinic_id: str
    reason: str | None = None
    cause_event_id: UUID
    source: DeadLetterSource


class OrganizationStatus(Command):
    kind: Literal["org-status"] = "org-status"
    org_id: str
    event: ReferralStatusChanged
    source: DeadLetterSource
    raw_base64: str


class OfferTimeout(Command):
    """From a timer: the offer of ``attempt`` may have passed its respond_by."""

    kind: Literal["timeout"] = "timeout"
    referral_id: str
    attempt: int


ReferralCommand = Annotated[
    OpenReferral | CancelReferral | OrganizationStatus | OfferTimeout,
    Field(discriminator="kind"),
]
REFERRAL_COMMAND: TypeAdapter[ReferralCommand] = TypeAdapter(ReferralCommand)


def encode(command: Command) -> bytes:
    return command.model_dump_json().encode()


__all__ = [
    "PATIENT_COMMAND",
    "REFERRAL_COMMAND",
    "CancelReferral",
    "Command",
    "OfferTimeout",
    "OpenReferral",
    "OrganizationStatus",
    "PatientCommand",
    "ReferralClosed",
    "ReferralCommand",
    "SubmissionReceived",
    "derived_id",
    "encode",
    "network_referral_id",
    "patient_key",
]
