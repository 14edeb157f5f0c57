"""A referral as the network keeps it, who holds it, and when its timers are due.

The record is network-internal: it holds the patient. The ``*_of_stored``
readers answer the same questions of a stored record without validating it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.codes import TERMINAL_STATUSES, BusinessStatus, TaskStatus
from schemas.events.referrals import Coding, TaskOutput
from streams.decisions.commands import ReferralRequest
from streams.decisions.lifecycle import ReferralState
from streams.decisions.limits import Limits

#: How many applied command ids a referral keeps (its own commands only: a
#: refused command from anyone is never remembered, so nobody can grow it).
SEEN_LIMIT = 64
#: How many encounter alerts a referral remembers (see ``ReferralRecord.alerts``).
ALERTS_LIMIT = 32
#: Task statuses in which an organization works on the referral.
ACTIVE_STATUSES = frozenset({TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS, TaskStatus.ON_HOLD})


class Offer(BaseModel):
    service_id: str
    org_id: str
    attempt: int
    offered_at: datetime
    respond_by: datetime
    answered: bool = False


class ReferralRecord(ReferralRequest):
    """A referral as the network keeps it (network-internal: holds the patient)."""

    model_config = ConfigDict(extra="ignore")

    requested_at: datetime
    status: TaskStatus = TaskStatus.DRAFT
    business_status: BusinessStatus | None = None
    attempt: int = 0
    offer: Offer | None = None
    tried: list[str] = Field(default_factory=list)
    #: the organizations of the offers in ``tried``, in order (a late answer from one
    #: of them answers a withdrawn offer)
    tried_orgs: list[str] = Field(default_factory=list)
    step: int = 0
    seen: list[str] = Field(default_factory=list)
    partition: int = -1
    #: when the network last changed or heard of the referral (idle expiry counts from it)
    updated_at: datetime | None = None
    #: when it reached a final status (retention counts from it)
    closed_at: datetime | None = None
    #: the encounter alerts applied (their command ids; apart from ``seen``, so that
    #: a patient's many encounters never push a party's command ids out of it)
    alerts: list[str] = Field(default_factory=list)
    #: the organization's latest status reason coding and coded outputs (bounded on
    #: the wire; absent from records stored before they were kept)
    reason_coding: Coding | None = None
    outputs: list[TaskOutput] = Field(default_factory=list)

    def remember_alert(self, command_id: str) -> None:
        self.alerts.append(command_id)
        if len(self.alerts) > ALERTS_LIMIT:
            del self.alerts[: len(self.alerts) - ALERTS_LIMIT]

    @property
    def state(self) -> ReferralState:
        return ReferralState(self.status, self.business_status)

    def remember(self, command_id: str) -> None:
        self.seen.append(command_id)
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[: len(self.seen) - SEEN_LIMIT]

    def next_due(self, limits: Limits) -> datetime | None:
        """When the timer must next look at this referral, if ever.

        An unanswered offer: its respond_by. An active referral (accepted,
        in-progress, on-hold): its last update plus ``limits.idle_expiry``. A
        closed one: its closing plus ``limits.retention``, when it leaves the table.
        """
        offer = self.offer
        return due_at(
            terminal=self.state.terminal,
            active=self.status in ACTIVE_STATUSES,
            respond_by=offer.respond_by if offer is not None and not offer.answered else None,
            last=self.updated_at or self.requested_at,
            closed=self.closed_at or self.updated_at or self.requested_at,
            limits=limits,
        )

    def pending_deadline(self) -> datetime | None:
        """respond_by of an offer still waiting for an answer."""
        if self.offer is not None and not self.offer.answered and not self.state.terminal:
            return self.offer.respond_by
        return None


def due_at(
    *,
    terminal: bool,
    active: bool,
    respond_by: datetime | None,
    last: datetime,
    closed: datetime,
    limits: Limits,
) -> datetime | None:
    """The rule of :meth:`ReferralRecord.next_due`, on plain values."""
    if terminal:
        return closed + limits.retention
    if respond_by is not None:
        return respond_by
    if active:
        return last + limits.idle_expiry
    return None


def next_due_of_stored(raw: Mapping[str, Any], limits: Limits) -> tuple[int, str, datetime | None]:
    """``(partition, referral_id, next_due)`` of a stored record, without validating it.

    Rebuilding the deadline index after a rebalance reads every record of the
    table: this reads only the fields the rule needs (a record the network wrote
    itself), several times faster than building the model.
    """
    status = TaskStatus(raw["status"])
    offer = raw.get("offer")
    requested = datetime.fromisoformat(raw["requested_at"])
    updated = _time(raw.get("updated_at")) or requested
    respond_by = (
        datetime.fromisoformat(offer["respond_by"])
        if offer is not None and not offer.get("answered")
        else None
    )
    due = due_at(
        terminal=status in TERMINAL_STATUSES,
        active=status in ACTIVE_STATUSES,
        respond_by=respond_by,
        last=updated,
        closed=_time(raw.get("closed_at")) or updated,
        limits=limits,
    )
    return int(raw.get("partition", -1)), str(raw["referral_id"]), due


def holder_of_stored(raw: Mapping[str, Any]) -> str | None:
    """:func:`holder` of a stored record, without validating it."""
    status = TaskStatus(raw["status"])
    offer = raw.get("offer")
    if offer is None or status in TERMINAL_STATUSES:
        return None
    if offer.get("answered") and status not in ACTIVE_STATUSES:
        return None
    return str(offer["org_id"])


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def holder(record: ReferralRecord) -> str | None:
    """The organization that holds the referral now (offered or working on it)."""
    if record.offer is None or record.state.terminal or offer_over(record):
        return None
    return record.offer.org_id


def offer_over(record: ReferralRecord) -> bool:
    """The organization no longer holds the referral (it said no, or it was withdrawn)."""
    return record.offer is None or (record.offer.answered and record.status not in ACTIVE_STATUSES)


__all__ = [
    "ACTIVE_STATUSES",
    "SEEN_LIMIT",
    "Offer",
    "ReferralRecord",
    "due_at",
    "holder",
    "holder_of_stored",
    "next_due_of_stored",
    "offer_over",
]
