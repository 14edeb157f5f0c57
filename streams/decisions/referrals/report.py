"""What the clinic, the event log and the organization hear of a referral's changes.

Every accepted change becomes a ``referral.updated`` to the clinic and a
``referral.state-changed`` on the event log; a refused command becomes a dead
letter. Output event ids derive from (referral, step), so a replayed command
repeats the same ids.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from schemas.codes import BusinessStatus, DeadLetterKind, Party, TaskStatus, WithdrawReason
from schemas.events import DeadLetterSource, OfferState, ReferralWithdrawn, to_bytes
from schemas.events.referrals import Coding, TaskOutput
from streams.decisions.commands import (
    CancelReferral,
    OpenReferral,
    OrganizationStatus,
    ReferralClosed,
    ReferralCommand,
    derived_id,
    patient_key,
)
from streams.decisions.lifecycle import Forbidden, Transition, transition
from streams.decisions.outputs import Outgoing, refused
from streams.decisions.referrals.context import Context, ReferralDecision
from streams.decisions.referrals.record import Offer, ReferralRecord
from streams.decisions.updates import StateChange, report


def apply_change(
    record: ReferralRecord,
    change: Transition,
    ctx: Context,
    *,
    cause: UUID | None,
    at: datetime,
    offer: Offer | None = None,
    disclosed: list[str] | None = None,
    reported_at: datetime | None = None,
    coded: tuple[Coding | None, list[TaskOutput]] | None = None,
) -> list[Outgoing]:
    """Apply a checked change to the record; report it to the clinic and the log.

    ``disclosed``: on an offer, the patient fields it sends (the log records them,
    with the consent in force, for the accounting of disclosures). ``reported_at``: on a
    party's change, the time the party claimed (``at`` is always the network's).
    ``coded``: on an organization's change, its reason coding and coded outputs (the
    record keeps those of its latest change; the clinic's update of this change carries
    them)."""
    before = record.status
    record.status = change.after.status
    record.business_status = change.after.business_status
    record.step += 1
    record.updated_at = ctx.now
    if record.state.terminal:
        record.closed_at = ctx.now
    reason_coding, outputs = coded if coded is not None else (None, [])
    if coded is not None:
        record.reason_coding, record.outputs = reason_coding, list(outputs)
    reported = StateChange(
        request=record,
        ids=(
            derived_id(record.referral_id, "updated", record.step),
            derived_id(record.referral_id, "state", record.step),
        ),
        at=at,
        actor=change.by,
        from_status=before,
        status=record.status,
        logged_status=change.downstream,
        business=record.business_status,
        reason=change.reason,
        outcome=change.outcome,
        cause=cause,
        attempt=offer.attempt if offer else record.attempt,
        org_id=offer.org_id if offer else None,
        service_id=offer.service_id if offer else None,
        disclosed=disclosed,
        reported_at=reported_at,
        reason_coding=reason_coding,
        outputs=tuple(outputs),
    )
    return report(reported, ctx.topics)


def withdraw(record: ReferralRecord, reason: WithdrawReason, ctx: Context) -> Outgoing:
    assert record.offer is not None
    withdrawn = ReferralWithdrawn(
        event_id=derived_id(record.referral_id, "withdrawn", record.offer.attempt),
        occurred_at=ctx.now,
        referral_id=record.referral_id,
        reason=reason.value,
        attempt=record.offer.attempt,
    )
    return Outgoing.event(
        ctx.topics.org_referrals(record.offer.org_id), record.referral_id, withdrawn
    )


def close_if_final(record: ReferralRecord, ctx: Context) -> list[Outgoing]:
    if not record.state.terminal:
        return []
    closed = ReferralClosed(
        command_id=f"closed:{record.referral_id}",
        referral_id=record.clinic_referral_id,
        category=record.category,
    )
    key = patient_key(record.clinic_id, record.patient.id)
    return [Outgoing.command(ctx.topics.network_patients, key, closed)]


def reopened_closed(record: ReferralRecord, command: OpenReferral, ctx: Context) -> list[Outgoing]:
    """An open of a referral that is closed but still kept (retention): the patient
    had forgotten it (its memory is bounded) and marked the category open for it.

    The answer is ``closed`` again, under a command id of its own (the first
    ``closed`` may still be in the patient's seen ids), so the category is freed;
    it changes nothing when the category is open for another referral.
    """
    closed = ReferralClosed(
        command_id=f"closed:{record.referral_id}:reopen:{command.cause_event_id}",
        referral_id=record.clinic_referral_id,
        category=record.category,
    )
    key = patient_key(record.clinic_id, record.patient.id)
    return [Outgoing.command(ctx.topics.network_patients, key, closed)]


def network_change(
    record: ReferralRecord,
    ctx: Context,
    status: TaskStatus,
    business: BusinessStatus,
    reason: str,
    *,
    offer: Offer | None,
    cause: UUID | None = None,
) -> list[Outgoing] | Forbidden:
    """The network moves the referral to ``status`` / ``business`` and reports it.

    Forbidden (nothing changed) when the state machine refuses the move.
    """
    checked = transition(
        record.state, status, Party.NETWORK, business_status=business, reason=reason
    )
    if isinstance(checked, Forbidden):
        return checked
    return apply_change(record, checked, ctx, cause=cause, at=ctx.now, offer=offer)


def network_fails(
    record: ReferralRecord,
    ctx: Context,
    business: BusinessStatus,
    reason: str,
    *,
    offer: Offer | None,
    withdrawal: WithdrawReason | None = None,
    cause: UUID | None = None,
) -> list[Outgoing] | Forbidden:
    """The network ends the referral ``failed`` / ``business`` and reports it.

    ``withdrawal``: first tell the organization holding the offer to stop, for
    this reason. Forbidden (nothing changed) when the state machine refuses.
    """
    stop = [withdraw(record, withdrawal, ctx)] if withdrawal is not None else []
    failed = TaskStatus.FAILED
    ended = network_change(record, ctx, failed, business, reason, offer=offer, cause=cause)
    return ended if isinstance(ended, Forbidden) else stop + ended


def payload(command: ReferralCommand) -> bytes:
    """What a dead letter about ``command`` quotes: the organization's event, if any."""
    return to_bytes(command.event) if isinstance(command, OrganizationStatus) else b""


def network_source(ctx: Context, key: str) -> DeadLetterSource:
    """Where a command the network itself sent to the referrals topic came from."""
    return DeadLetterSource(topic=ctx.topics.network_referrals, partition=-1, offset=-1, key=key)


def reject(
    command: OrganizationStatus | CancelReferral,
    kind: DeadLetterKind,
    message: str,
    ctx: Context,
    *,
    state: OfferState | None = None,
) -> ReferralDecision:
    """Dead-letter a command and answer its sender (``message.refused`` on its own
    inbox, with ``state``: the referral's state for it); the referral does not change
    and does not remember it.

    Remembering refused ids would let any party grow another party's record.
    """
    outputs = refused(
        ctx.topics,
        kind,
        message,
        command.source,
        payload(command),
        occurred_at=ctx.now,
        state=state,
    )
    return ReferralDecision(None, outputs, dead_letter=kind.value)


def withdrawn_state(record: ReferralRecord, org_id: str, attempt: int | None = None) -> OfferState:
    """The referral's state for an organization whose offer (``attempt``, else its last)
    is no longer in force: withdrawn, naming the ``referral.withdrawn`` of that offer."""
    mine = [i + 1 for i, org in enumerate(record.tried_orgs) if org == org_id]
    if attempt is None or attempt not in mine:
        attempt = mine[-1] if mine else None
    if attempt is None:
        return OfferState(offer="withdrawn")
    return OfferState(
        offer="withdrawn",
        attempt=attempt,
        withdrawn_event_id=derived_id(record.referral_id, "withdrawn", attempt),
    )


def reject_unknown(command: ReferralCommand, ctx: Context) -> ReferralDecision:
    if isinstance(command, OrganizationStatus | CancelReferral):
        message = "no referral with this id is known to the network"
        return reject(command, DeadLetterKind.UNKNOWN_REFERRAL, message, ctx)
    return ReferralDecision(None, [])  # a timer's command for a forgotten referral


__all__ = [
    "apply_change",
    "close_if_final",
    "network_change",
    "network_fails",
    "network_source",
    "payload",
    "reject",
    "reject_unknown",
    "reopened_closed",
    "withdraw",
    "withdrawn_state",
]
