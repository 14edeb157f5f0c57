"""The referral owner: offers, re-routes, times out and closes each referral.

Pure: :func:`decide` takes a referral's record, one command and what the
network knows (directory, organizations' record, load) and returns the new
record and the messages to send. Every state change goes through the state
machine in :mod:`streams.decisions.lifecycle`; every change the clinic should know of
becomes a ``referral.updated`` to the clinic and a ``referral.state-changed`` on
the event log. Output event ids derive from (referral, step), so a replayed
command repeats the same ids and an applied command id is never applied twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.codes import (
    TERMINAL_STATUSES,
    BusinessStatus,
    Category,
    DeadLetterKind,
    Party,
    Priority,
    ReasonCode,
    TaskStatus,
    WithdrawReason,
)
from schemas.events import (
    Consent,
    DeadLetterSource,
    Patient,
    ReferralOffered,
    ReferralStateChanged,
    ReferralUpdated,
    ReferralWithdrawn,
    ServiceUpserted,
    to_bytes,
)
from schemas.privacy import offered_patient
from schemas.topics import Topics
from streams.decisions.commands import (
    CancelReferral,
    ExpireReferral,
    ForgetReferral,
    OfferTimeout,
    OpenReferral,
    OrganizationRemoved,
    OrganizationStatus,
    PurgeReferral,
    ReferralClosed,
    ReferralCommand,
    UpdateConsent,
    derived_id,
    patient_key,
)
from streams.decisions.lifecycle import (
    Forbidden,
    ReferralState,
    Transition,
    apply_org_status,
    transition,
)
from streams.decisions.limits import Limits
from streams.decisions.matching import MatchRequest, OrgRecord, age_on, rank, respond_by
from streams.decisions.outputs import Outgoing, dead_letter_event

#: How many applied command ids a referral keeps (its own commands only: a
#: refused command from anyone is never remembered, so nobody can grow it).
SEEN_LIMIT = 64
#: Task statuses in which an organization works on the referral.
ACTIVE_STATUSES = frozenset({TaskStatus.ACCEPTED, TaskStatus.IN_PROGRESS, TaskStatus.ON_HOLD})


class Offer(BaseModel):
    service_id: str
    org_id: str
    attempt: int
    offered_at: datetime
    respond_by: datetime
    answered: bool = False


class ReferralRecord(BaseModel):
    """A referral as the network keeps it (network-internal: holds the patient)."""

    model_config = ConfigDict(extra="ignore")

    referral_id: str  # the network's id: organizations and the event log see it
    clinic_referral_id: str  # the clinic's own id: its updates carry it
    clinic_id: str
    patient: Patient
    consent: Consent
    category: Category
    screening_id: str | None = None
    requested_service_id: str | None = None
    priority: Priority = Priority.ROUTINE
    note: str | None = None
    requested_at: datetime
    status: TaskStatus = TaskStatus.DRAFT
    business_status: BusinessStatus | None = None
    attempt: int = 0
    offer: Offer | None = None
    tried: list[str] = Field(default_factory=list)
    step: int = 0
    seen: list[str] = Field(default_factory=list)
    partition: int = -1
    #: when the network last changed or heard of the referral (idle expiry counts from it)
    updated_at: datetime | None = None
    #: when it reached a final status (retention counts from it)
    closed_at: datetime | None = None

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


@runtime_checkable
class Directory(Protocol):
    """A directory that can narrow itself to the services that may serve a request."""

    def candidates(self, request: MatchRequest) -> list[ServiceUpserted]: ...


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


@dataclass(frozen=True)
class Context:
    """What the referral owner may consult besides the record."""

    topics: Topics
    now: datetime
    #: the services, or anything with ``candidates(request)`` that narrows them
    #: (:meth:`streams.runtime.view.NetworkState.candidates`)
    directory: Sequence[ServiceUpserted] | Directory = ()
    org_stats: Mapping[str, OrgRecord] = field(default_factory=dict)
    load: Mapping[str, int] = field(default_factory=dict)
    default_sla: timedelta = timedelta(hours=24)
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class ReferralDecision:
    """``record`` None: nothing to write; ``delete``: the referral leaves the table."""

    record: ReferralRecord | None
    outputs: list[Outgoing]
    dead_letter: str | None = None  # the kind, for metrics
    delete: bool = False


def decide(
    record: ReferralRecord | None, command: ReferralCommand, ctx: Context, *, partition: int = -1
) -> ReferralDecision:
    """Apply one command to a referral."""
    if isinstance(command, OpenReferral):
        if record is None:
            return _open(command, ctx, partition)
        if record.patient.id == command.patient.id:  # a replayed or repeated open
            return ReferralDecision(None, [])
        return _id_taken(command, ctx)
    if record is None:
        return _reject_unknown(command, ctx)
    if command.command_id in record.seen:
        return ReferralDecision(None, [])
    record = record.model_copy(deep=True)
    if isinstance(command, OrganizationStatus):
        decision = _org_status(record, command, ctx)
    elif isinstance(command, CancelReferral):
        decision = _cancel(record, command, ctx)
    elif isinstance(command, UpdateConsent):
        decision = _consent(record, command, ctx)
    elif isinstance(command, ExpireReferral):
        decision = _expire(record, ctx)
    elif isinstance(command, PurgeReferral):
        decision = _purge(record, ctx)
    elif isinstance(command, OrganizationRemoved):
        decision = _org_removed(record, command, ctx)
    else:
        decision = _timeout(record, command, ctx)
    if decision.record is not None:
        decision.record.remember(command.command_id)
    return decision


def fail(
    record: ReferralRecord | None, command: ReferralCommand, ctx: Context, error: str
) -> ReferralDecision:
    """The network failed on ``command`` (``error``: the exception's type, never values).

    The command is dead-lettered as ``internal``; a referral that was open, or
    that the command was opening, ends ``failed`` / ``network-error`` (its
    organization told to stop, the clinic told, the category freed), so that
    nothing waits forever on a command the network could not apply.
    """
    referral_id = (
        command.event.referral_id
        if isinstance(command, OrganizationStatus)
        else command.referral_id
    )
    source = getattr(command, "source", None) or DeadLetterSource(
        topic=ctx.topics.network_referrals, partition=-1, offset=-1, key=referral_id
    )
    payload = to_bytes(command.event) if isinstance(command, OrganizationStatus) else b""
    letter = dead_letter_event(
        DeadLetterKind.INTERNAL,
        f"the referral owner failed on a {command.kind} command: {error}",
        source,
        payload,
        occurred_at=ctx.now,
    )
    outputs = [Outgoing.event(ctx.topics.deadletter, source.key or referral_id, letter)]
    if record is None and isinstance(command, OpenReferral):
        record = _new_record(command, -1, ctx)
    elif record is not None:
        record = record.model_copy(deep=True)
    if record is None or record.state.terminal:
        return ReferralDecision(None, outputs, dead_letter=DeadLetterKind.INTERNAL.value)
    checked = transition(
        record.state,
        TaskStatus.FAILED,
        Party.NETWORK,
        business_status=BusinessStatus.NETWORK_ERROR,
        reason=ReasonCode.INTERNAL_ERROR.value,
    )
    if isinstance(checked, Forbidden):  # pragma: no cover - the table allows it from open
        return ReferralDecision(None, outputs, dead_letter=DeadLetterKind.INTERNAL.value)
    if record.offer is not None and not _offer_over(record):
        outputs.append(_withdraw(record, WithdrawReason.INTERNAL_ERROR, ctx))
    outputs += _change(record, checked, ctx, cause=None, at=ctx.now, offer=record.offer)
    outputs += _close_if_final(record, ctx)
    record.remember(command.command_id)
    return ReferralDecision(record, outputs, dead_letter=DeadLetterKind.INTERNAL.value)


def holder(record: ReferralRecord) -> str | None:
    """The organization that holds the referral now (offered or working on it)."""
    if record.offer is None or record.state.terminal or _offer_over(record):
        return None
    return record.offer.org_id


def _offer_over(record: ReferralRecord) -> bool:
    """The organization no longer holds the referral (it said no, or it was withdrawn)."""
    return record.offer is None or (record.offer.answered and record.status not in ACTIVE_STATUSES)


# ---------------------------------------------------------------- commands
def _open(command: OpenReferral, ctx: Context, partition: int) -> ReferralDecision:
    record = _new_record(command, partition, ctx)
    outputs = _route(record, ctx, cause=command.cause_event_id, reason=None)
    outputs += _close_if_final(record, ctx)  # unmatched at once: free the patient's category
    return ReferralDecision(record, outputs)


def _new_record(command: OpenReferral, partition: int, ctx: Context) -> ReferralRecord:
    return ReferralRecord(
        referral_id=command.referral_id,
        clinic_referral_id=command.clinic_referral_id,
        clinic_id=command.clinic_id,
        patient=command.patient,
        consent=command.consent,
        category=command.category,
        screening_id=command.screening_id,
        requested_service_id=command.requested_service_id,
        priority=command.priority,
        note=command.note,
        requested_at=command.requested_at,
        seen=[command.command_id],
        partition=partition,
        updated_at=ctx.now,
    )


def _id_taken(command: OpenReferral, ctx: Context) -> ReferralDecision:
    """The clinic used one referral id for two patients: refuse the second, loudly.

    The dead letter tells the operators; the ``closed`` command frees the second
    patient's category, which the patient owner had marked open for this id.
    """
    source = DeadLetterSource(
        topic=ctx.topics.network_referrals, partition=-1, offset=-1, key=command.referral_id
    )
    letter = dead_letter_event(
        DeadLetterKind.VALIDATION,
        "the clinic already used this referral id for another patient",
        source,
        command.model_dump_json().encode(),
        occurred_at=ctx.now,
    )
    closed = ReferralClosed(
        command_id=f"closed:{command.referral_id}:{command.patient.id}",
        referral_id=command.clinic_referral_id,
        category=command.category,
    )
    key = patient_key(command.clinic_id, command.patient.id)
    return ReferralDecision(
        None,
        [
            Outgoing.event(ctx.topics.deadletter, command.referral_id, letter),
            Outgoing.command(ctx.topics.network_patients, key, closed),
        ],
        dead_letter=DeadLetterKind.VALIDATION.value,
    )


def _org_status(
    record: ReferralRecord, command: OrganizationStatus, ctx: Context
) -> ReferralDecision:
    event = command.event
    offer = record.offer
    if offer is None or offer.org_id != command.org_id:
        return _reject(
            record,
            command,
            DeadLetterKind.AUTHORIZATION,
            f"referral is not currently offered to organization {command.org_id}",
            ctx,
        )
    checked = apply_org_status(
        record.state, event.status, reason=event.reason, outcome=event.outcome
    )
    if isinstance(checked, Forbidden):
        return _reject(record, command, DeadLetterKind.TRANSITION, checked.message, ctx)
    offer.answered = True
    outputs = _change(record, checked, ctx, cause=event.event_id, at=event.occurred_at, offer=offer)
    if checked.reroute:
        outputs += _route(record, ctx, cause=event.event_id, reason=checked.reason)
    outputs += _close_if_final(record, ctx)
    return ReferralDecision(record, outputs)


def _cancel(record: ReferralRecord, command: CancelReferral, ctx: Context) -> ReferralDecision:
    if command.clinic_id != record.clinic_id:  # clinics choose referral ids: they may collide
        return _reject(
            record,
            command,
            DeadLetterKind.AUTHORIZATION,
            f"referral does not belong to clinic {command.clinic_id}",
            ctx,
        )
    reason = command.reason or ReasonCode.CANCELLED_BY_CLINIC.value
    checked = transition(record.state, TaskStatus.CANCELLED, Party.CLINIC, reason=reason)
    if isinstance(checked, Forbidden):
        return _reject(record, command, DeadLetterKind.TRANSITION, checked.message, ctx)
    outputs: list[Outgoing] = []
    if record.offer is not None:
        outputs.append(_withdraw(record, WithdrawReason.CANCELLED_BY_CLINIC, ctx))
    outputs += _change(record, checked, ctx, cause=command.cause_event_id, at=ctx.now)
    outputs += _close_if_final(record, ctx)
    return ReferralDecision(record, outputs)


def _consent(record: ReferralRecord, command: UpdateConsent, ctx: Context) -> ReferralDecision:
    """The clinic replaced the patient's consent: keep it, and stop what it no longer covers."""
    if command.clinic_id != record.clinic_id or record.state.terminal:
        return ReferralDecision(None, [])
    record.consent = command.consent
    if command.consent.covers(record.category, ctx.now):
        return ReferralDecision(record, [])  # later offers disclose under the new consent
    outputs: list[Outgoing] = []
    held = record.offer if not _offer_over(record) else None
    if held is not None:
        outputs.append(_withdraw(record, WithdrawReason.CONSENT_WITHDRAWN, ctx))
    checked = transition(
        record.state,
        TaskStatus.FAILED,
        Party.NETWORK,
        business_status=BusinessStatus.CONSENT_REQUIRED,
        reason=ReasonCode.CONSENT_WITHDRAWN.value,
    )
    if isinstance(checked, Forbidden):  # pragma: no cover - allowed from every open status
        return ReferralDecision(record, outputs)
    outputs += _change(record, checked, ctx, cause=command.cause_event_id, at=ctx.now, offer=held)
    outputs += _close_if_final(record, ctx)
    return ReferralDecision(record, outputs)


def _expire(record: ReferralRecord, ctx: Context) -> ReferralDecision:
    """An accepted, in-progress or on-hold referral heard nothing for ``idle_expiry``."""
    last = record.updated_at or record.requested_at
    if record.status not in ACTIVE_STATUSES or last + ctx.limits.idle_expiry > ctx.now:
        return ReferralDecision(None, [])  # stale: it moved since the timer looked
    checked = transition(
        record.state,
        TaskStatus.FAILED,
        Party.NETWORK,
        business_status=BusinessStatus.EXPIRED,
        reason=ReasonCode.NO_RECENT_UPDATE.value,
    )
    if isinstance(checked, Forbidden):  # pragma: no cover - allowed from active statuses
        return ReferralDecision(None, [])
    offer = record.offer
    outputs = [_withdraw(record, WithdrawReason.EXPIRED, ctx)] if offer is not None else []
    outputs += _change(record, checked, ctx, cause=None, at=ctx.now, offer=offer)
    outputs += _close_if_final(record, ctx)
    return ReferralDecision(record, outputs)


def _org_removed(
    record: ReferralRecord, command: OrganizationRemoved, ctx: Context
) -> ReferralDecision:
    """The organization holding the referral is gone: re-route a pending offer, end
    active work ``failed`` / ``organization-removed``. Nothing is sent to the
    organization: its topics no longer exist."""
    offer = record.offer
    if offer is None or offer.org_id != command.org_id or _offer_over(record):
        return ReferralDecision(None, [])  # stale: the referral moved on
    reason = ReasonCode.ORGANIZATION_REMOVED.value
    if record.status in ACTIVE_STATUSES:
        checked = transition(
            record.state,
            TaskStatus.FAILED,
            Party.NETWORK,
            business_status=BusinessStatus.ORGANIZATION_REMOVED,
            reason=reason,
        )
        if isinstance(checked, Forbidden):  # pragma: no cover - allowed from active
            return ReferralDecision(None, [])
        outputs = _change(record, checked, ctx, cause=None, at=ctx.now, offer=offer)
    else:
        checked = transition(
            record.state,
            TaskStatus.REQUESTED,
            Party.NETWORK,
            business_status=BusinessStatus.RE_ROUTED,
            reason=reason,
        )
        if isinstance(checked, Forbidden):
            return ReferralDecision(None, [])
        outputs = _change(record, checked, ctx, cause=None, at=ctx.now, offer=offer)
        offer.answered = True
        outputs += _route(record, ctx, cause=None, reason=reason)
    outputs += _close_if_final(record, ctx)
    return ReferralDecision(record, outputs)


def _purge(record: ReferralRecord, ctx: Context) -> ReferralDecision:
    """A closed referral past its retention leaves the table; its patient forgets it."""
    closed = record.closed_at or record.updated_at or record.requested_at
    if not record.state.terminal or closed + ctx.limits.retention > ctx.now:
        return ReferralDecision(None, [])
    forget = ForgetReferral(
        command_id=f"forget:{record.referral_id}", referral_id=record.clinic_referral_id
    )
    key = patient_key(record.clinic_id, record.patient.id)
    return ReferralDecision(
        None, [Outgoing.command(ctx.topics.network_patients, key, forget)], delete=True
    )


def _timeout(record: ReferralRecord, command: OfferTimeout, ctx: Context) -> ReferralDecision:
    offer = record.offer
    due = record.pending_deadline()
    if offer is None or due is None or offer.attempt != command.attempt or due > ctx.now:
        return ReferralDecision(None, [])  # stale: answered, re-routed or not yet due
    checked = transition(
        record.state,
        TaskStatus.REQUESTED,
        Party.NETWORK,
        business_status=BusinessStatus.RE_ROUTED,
        reason=WithdrawReason.TIMEOUT.value,
    )
    if isinstance(checked, Forbidden):
        return ReferralDecision(None, [])
    outputs = [_withdraw(record, WithdrawReason.TIMEOUT, ctx)]
    outputs += _change(record, checked, ctx, cause=None, at=ctx.now, offer=offer)
    offer.answered = True
    outputs += _route(record, ctx, cause=None, reason=WithdrawReason.TIMEOUT.value)
    outputs += _close_if_final(record, ctx)
    return ReferralDecision(record, outputs)


# ---------------------------------------------------------------- routing
def _route(
    record: ReferralRecord, ctx: Context, *, cause: UUID | None, reason: str | None
) -> list[Outgoing]:
    """Offer the referral to the best service not tried yet, or end it unmatched.

    Consent is checked here, against the clock, before every disclosure: a
    re-route after the patient's consent expired sends nothing and ends the
    referral ``failed`` / ``consent-required``. After ``limits.max_attempts``
    offers the referral ends ``failed`` / ``unmatched``.
    """
    if not record.consent.covers(record.category, ctx.now):
        return _end(record, ctx, cause, BusinessStatus.CONSENT_REQUIRED, ReasonCode.CONSENT_EXPIRED)
    if record.attempt >= ctx.limits.max_attempts:
        return _end(record, ctx, cause, BusinessStatus.UNMATCHED, ReasonCode.ATTEMPTS_EXHAUSTED)
    request = MatchRequest(
        category=record.category,
        postal_code=record.patient.postal_code,
        preferred_language=record.patient.preferred_language,
        age=_age(record.patient.birth_date, ctx.now),
        requested_service_id=record.requested_service_id,
    )
    services = (
        ctx.directory.candidates(request) if isinstance(ctx.directory, Directory) else ctx.directory
    )
    candidates = rank(
        services, request, excluded=record.tried, org_stats=ctx.org_stats, load=ctx.load
    )
    cause_id = cause if cause is not None else None
    if not candidates:
        return _end(record, ctx, cause, BusinessStatus.UNMATCHED, ReasonCode.NO_MATCHING_SERVICE)
    best = candidates[0].service
    checked = transition(
        record.state, TaskStatus.REQUESTED, Party.NETWORK, business_status=BusinessStatus.OFFERED
    )
    if isinstance(checked, Forbidden):  # pragma: no cover - table allows it
        raise AssertionError(checked.message)
    record.attempt += 1
    record.tried.append(best.service_id)
    offer = Offer(
        service_id=best.service_id,
        org_id=best.org_id,
        attempt=record.attempt,
        offered_at=ctx.now,
        respond_by=respond_by(ctx.now, best, ctx.default_sla),
    )
    record.offer = offer
    offered = ReferralOffered(
        event_id=derived_id(record.referral_id, "offered", record.attempt),
        occurred_at=ctx.now,
        referral_id=record.referral_id,
        service_id=best.service_id,
        category=record.category,
        priority=record.priority,
        respond_by=offer.respond_by,
        patient=offered_patient(record.patient),
        note=record.note,
    )
    outputs = [Outgoing.event(ctx.topics.org_referrals(best.org_id), record.referral_id, offered)]
    disclosed = sorted(k for k, v in offered.patient.model_dump().items() if v is not None)
    outputs += _change(
        record, checked, ctx, cause=cause_id, at=ctx.now, offer=offer, disclosed=disclosed
    )
    return outputs


def _end(
    record: ReferralRecord,
    ctx: Context,
    cause: UUID | None,
    business: BusinessStatus,
    reason: ReasonCode,
) -> list[Outgoing]:
    """The network ends a referral it cannot offer (``failed`` with ``business``)."""
    checked = transition(
        record.state, TaskStatus.FAILED, Party.NETWORK, business_status=business, reason=reason
    )
    if isinstance(checked, Forbidden):  # pragma: no cover - table allows it
        raise AssertionError(checked.message)
    return _change(record, checked, ctx, cause=cause, at=ctx.now)


def _withdraw(record: ReferralRecord, reason: WithdrawReason, ctx: Context) -> Outgoing:
    assert record.offer is not None
    withdrawn = ReferralWithdrawn(
        event_id=derived_id(record.referral_id, "withdrawn", record.offer.attempt),
        occurred_at=ctx.now,
        referral_id=record.referral_id,
        reason=reason.value,
    )
    return Outgoing.event(
        ctx.topics.org_referrals(record.offer.org_id), record.referral_id, withdrawn
    )


def _close_if_final(record: ReferralRecord, ctx: Context) -> list[Outgoing]:
    if not record.state.terminal:
        return []
    closed = ReferralClosed(
        command_id=f"closed:{record.referral_id}",
        referral_id=record.clinic_referral_id,
        category=record.category,
    )
    key = patient_key(record.clinic_id, record.patient.id)
    return [Outgoing.command(ctx.topics.network_patients, key, closed)]


# ---------------------------------------------------------------- reporting
def _change(
    record: ReferralRecord,
    change: Transition,
    ctx: Context,
    *,
    cause: UUID | None,
    at: datetime,
    offer: Offer | None = None,
    disclosed: list[str] | None = None,
) -> list[Outgoing]:
    """Apply a checked change to the record; report it to the clinic and the log.

    ``disclosed``: on an offer, the patient fields it sends (the log records them,
    with the consent in force, for the accounting of disclosures)."""
    before = record.status
    record.status = change.after.status
    record.business_status = change.after.business_status
    record.step += 1
    record.updated_at = ctx.now
    if record.state.terminal:
        record.closed_at = ctx.now
    org_id = offer.org_id if offer else None
    service_id = offer.service_id if offer else None
    attempt = offer.attempt if offer else record.attempt
    update = ReferralUpdated(
        event_id=derived_id(record.referral_id, "updated", record.step),
        occurred_at=at,
        referral_id=record.clinic_referral_id,
        patient_id=record.patient.id,
        category=record.category,
        screening_id=record.screening_id,
        status=record.status,
        business_status=record.business_status,
        org_id=org_id,
        service_id=service_id,
        reason=change.reason,
        outcome=change.outcome,
        attempt=attempt,
    )
    logged = ReferralStateChanged(
        event_id=derived_id(record.referral_id, "state", record.step),
        occurred_at=at,
        referral_id=record.referral_id,
        clinic_referral_id=record.clinic_referral_id,
        patient_id=record.patient.id,
        clinic_id=record.clinic_id,
        category=record.category,
        screening_id=record.screening_id,
        from_status=before,
        to_status=record.status if change.downstream is None else change.downstream,
        business_status=record.business_status,
        org_id=org_id,
        service_id=service_id,
        reason=change.reason,
        outcome=change.outcome,
        attempt=attempt,
        actor=change.by,
        cause_event_id=cause,
        preferred_language=record.patient.preferred_language,
        postal_code=record.patient.postal_code,
        disclosed_fields=disclosed,
        consent=record.consent if disclosed is not None else None,
    )
    return [
        Outgoing.event(
            ctx.topics.clinic_updates(record.clinic_id), record.clinic_referral_id, update
        ),
        Outgoing.event(ctx.topics.referral_events, record.referral_id, logged),
    ]


def _reject(
    record: ReferralRecord,
    command: OrganizationStatus | CancelReferral,
    kind: DeadLetterKind,
    message: str,
    ctx: Context,
) -> ReferralDecision:
    """Dead-letter a command; the referral does not change and does not remember it.

    Remembering refused ids would let any party grow another party's record.
    """
    payload = to_bytes(command.event) if isinstance(command, OrganizationStatus) else b""
    letter = dead_letter_event(kind, message, command.source, payload, occurred_at=ctx.now)
    out = Outgoing.event(ctx.topics.deadletter, command.source.key or "", letter)
    return ReferralDecision(None, [out], dead_letter=kind.value)


def _reject_unknown(command: ReferralCommand, ctx: Context) -> ReferralDecision:
    if isinstance(command, OrganizationStatus | CancelReferral):
        source: DeadLetterSource = command.source
        payload = to_bytes(command.event) if isinstance(command, OrganizationStatus) else b""
        letter = dead_letter_event(
            DeadLetterKind.UNKNOWN_REFERRAL,
            "no referral with this id is known to the network",
            source,
            payload,
            occurred_at=ctx.now,
        )
        out = Outgoing.event(ctx.topics.deadletter, source.key or "", letter)
        return ReferralDecision(None, [out], dead_letter=DeadLetterKind.UNKNOWN_REFERRAL.value)
    return ReferralDecision(None, [])  # a timer's command for a forgotten referral


def _age(birth_date: date | None, now: datetime) -> int | None:
    return age_on(birth_date, now.date())


__all__ = ["Context", "Offer", "ReferralDecision", "ReferralRecord", "decide", "fail"]
