"""What the clinic and the event log hear of each change of a referral's state.

Every change becomes a ``referral.updated`` on the clinic's updates topic
(keyed by the clinic's referral id) and a ``referral.state-changed`` on the
event log (keyed by the network's id), built here from one
:class:`StateChange`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from schemas.codes import BusinessStatus, Party, TaskStatus
from schemas.events import ReferralStateChanged, ReferralUpdated
from schemas.events.referrals import Coding, TaskOutput
from schemas.topics import Topics
from streams.decisions.commands import ReferralRequest
from streams.decisions.outputs import Outgoing


@dataclass(frozen=True, slots=True)
class StateChange:
    """One change of ``request``'s state, with what both reports say of it.

    ``ids``: the ``referral.updated`` and ``referral.state-changed`` event ids,
    derived from the change so that a replayed change repeats them.
    ``logged_status`` is the log's ``to_status`` when it differs from the
    clinic's ``status`` (an organization's own status on a rejection).
    ``disclosed``: on an offer, the patient fields it sends (the log records
    them, with the consent in force, for the accounting of disclosures).
    """

    request: ReferralRequest
    ids: tuple[UUID, UUID]
    at: datetime
    actor: Party
    from_status: TaskStatus | None
    status: TaskStatus
    business: BusinessStatus | None
    reason: str | None
    cause: UUID | None
    attempt: int = 0
    outcome: str | None = None
    org_id: str | None = None
    service_id: str | None = None
    logged_status: TaskStatus | None = None
    duplicate_of: str | None = None
    disclosed: list[str] | None = None
    #: a party's own claimed time of the change (``at`` is the network's)
    reported_at: datetime | None = None
    #: an organization's change: its reason coding and coded outputs (the clinic's only)
    reason_coding: Coding | None = None
    outputs: tuple[TaskOutput, ...] = ()


def report(change: StateChange, topics: Topics) -> list[Outgoing]:
    """The clinic's ``referral.updated`` and the log's ``referral.state-changed``."""
    request = change.request
    patient = request.patient
    shared: dict[str, Any] = {
        "occurred_at": change.at,
        "patient_id": patient.id,
        "category": request.category,
        "screening_id": request.screening_id,
        "business_status": change.business,
        "org_id": change.org_id,
        "service_id": change.service_id,
        "reason": change.reason,
        "outcome": change.outcome,
        "attempt": change.attempt,
        "reported_at": change.reported_at,
    }
    update = ReferralUpdated(
        event_id=change.ids[0],
        referral_id=request.clinic_referral_id,
        status=change.status,
        duplicate_of=change.duplicate_of,
        codes=request.codes,
        reason_coding=change.reason_coding,
        outputs=list(change.outputs),
        **shared,
    )
    logged = ReferralStateChanged(
        event_id=change.ids[1],
        referral_id=request.referral_id,
        clinic_referral_id=request.clinic_referral_id,
        clinic_id=request.clinic_id,
        from_status=change.from_status,
        to_status=change.logged_status or change.status,
        actor=change.actor,
        cause_event_id=change.cause,
        preferred_language=patient.preferred_language,
        postal_code=patient.postal_code,
        disclosed_fields=change.disclosed,
        consent=request.consent if change.disclosed is not None else None,
        **shared,
    )
    return [
        Outgoing.event(
            topics.clinic_updates(request.clinic_id), request.clinic_referral_id, update
        ),
        Outgoing.event(topics.referral_events, request.referral_id, logged),
    ]


__all__ = ["StateChange", "report"]
