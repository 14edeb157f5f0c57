"""What organizations do to a referral: report its status, or leave the network."""

from __future__ import annotations

from schemas.codes import BusinessStatus, DeadLetterKind, ReasonCode, TaskStatus
from schemas.events import OfferState, ReferralStatusRecorded
from streams.decisions.commands import OrganizationRemoved, OrganizationStatus, derived_id
from streams.decisions.lifecycle import Forbidden, Transition, apply_org_status
from streams.decisions.outputs import Outgoing
from streams.decisions.referrals.context import Context, ReferralDecision
from streams.decisions.referrals.record import (
    ACTIVE_STATUSES,
    Offer,
    ReferralRecord,
    offer_over,
)
from streams.decisions.referrals.report import (
    apply_change,
    network_fails,
    reject,
    withdrawn_state,
)
from streams.decisions.referrals.routing import reroute, route


def org_status(
    record: ReferralRecord, command: OrganizationStatus, ctx: Context
) -> ReferralDecision:
    """An organization's answer, bound to the offer it answers.

    Only the organization holding the offer may answer, and only for that offer:
    an answer naming another attempt or service, or from an organization whose
    offer was withdrawn (a time-out, a re-route) before its answer arrived,
    answers a withdrawn offer and is refused (``transition``), never applied to a
    newer one. The change is dated by the network's clock; the organization's
    own ``occurred_at`` is kept as ``reported_at``.
    """
    event = command.event
    offer = record.offer
    if offer is None or offer.org_id != command.org_id:
        if command.org_id in record.tried_orgs:
            return reject(
                command,
                DeadLetterKind.TRANSITION,
                f"the offer to organization {command.org_id} was withdrawn before this "
                "answer arrived; the referral has moved on",
                ctx,
                state=withdrawn_state(record, command.org_id, event.attempt),
            )
        return reject(
            command,
            DeadLetterKind.AUTHORIZATION,
            f"referral is not currently offered to organization {command.org_id}",
            ctx,
            state=OfferState(offer="not-offered"),
        )
    stale = (event.attempt is not None and event.attempt != offer.attempt) or (
        event.service_id is not None and event.service_id != offer.service_id
    )
    if stale:
        return reject(
            command,
            DeadLetterKind.TRANSITION,
            f"the answer is to an offer that was withdrawn (attempt {event.attempt}, service "
            f"{event.service_id}); the offer in force is attempt {offer.attempt} of service "
            f"{offer.service_id}",
            ctx,
            state=withdrawn_state(record, command.org_id, event.attempt),
        )
    checked = apply_org_status(
        record.state, event.status, reason=event.reason, outcome=event.outcome
    )
    if isinstance(checked, Forbidden):
        return reject(command, DeadLetterKind.TRANSITION, checked.message, ctx, state=ended(record))
    offer.answered = True
    outputs = apply_change(
        record,
        checked,
        ctx,
        cause=event.event_id,
        at=ctx.now,
        offer=offer,
        reported_at=event.occurred_at,
        coded=(event.reason_coding, event.outputs),
    )
    outputs.append(confirmation(record, checked, offer, command, ctx))
    if checked.reroute:
        outputs += route(record, ctx, cause=event.event_id)
    return ReferralDecision(record, outputs)


def confirmation(
    record: ReferralRecord,
    change: Transition,
    offer: Offer,
    command: OrganizationStatus,
    ctx: Context,
) -> Outgoing:
    """``referral.status-recorded`` to the organization: its Task's status now in force
    (what it reported: ``rejected`` stays rejected for it while the clinic's referral is
    re-routed), naming its event; ids, codes and its own reason and outcome only."""
    recorded = ReferralStatusRecorded(
        event_id=derived_id(record.referral_id, "recorded", record.step),
        occurred_at=ctx.now,
        referral_id=record.referral_id,
        status=change.downstream or change.after.status,
        business_status=change.after.business_status,
        reason=change.reason,
        outcome=change.outcome,
        attempt=offer.attempt,
        service_id=offer.service_id,
        cause_event_id=command.event.event_id,
        reason_coding=command.event.reason_coding,
        outputs=command.event.outputs,
    )
    return Outgoing.event(ctx.topics.org_referrals(offer.org_id), record.referral_id, recorded)


def ended(record: ReferralRecord) -> OfferState | None:
    """The referral's state for the organization holding its last offer, once it ended:
    ``withdrawn`` (naming the withdrawal) when the network or the clinic ended it (a
    time-out with no candidate left, the clinic's cancellation, consent withdrawn, idle
    expiry), else ``closed`` (the organization closed it); with the final status and
    when. None while the referral is open."""
    offer = record.offer
    if offer is None or not record.state.terminal:
        return None
    by_network = record.business_status is not None or record.status is TaskStatus.CANCELLED
    if by_network:
        state = withdrawn_state(record, offer.org_id, offer.attempt)
    else:
        state = OfferState(offer="closed", attempt=offer.attempt)
    return state.model_copy(update={"status": record.status, "at": record.closed_at})


def org_removed(
    record: ReferralRecord, command: OrganizationRemoved, ctx: Context
) -> ReferralDecision:
    """The organization holding the referral is gone: re-route a pending offer, end
    active work ``failed`` / ``organization-removed``. Nothing is sent to the
    organization: its topics no longer exist."""
    offer = record.offer
    if offer is None or offer.org_id != command.org_id or offer_over(record):
        return ReferralDecision(None, [])  # stale: the referral moved on
    reason = ReasonCode.ORGANIZATION_REMOVED.value
    if record.status in ACTIVE_STATUSES:
        removed = BusinessStatus.ORGANIZATION_REMOVED
        outputs = network_fails(record, ctx, removed, reason, offer=offer)
    else:
        outputs = reroute(record, offer, reason, ctx)
    if isinstance(outputs, Forbidden):
        return ReferralDecision(None, [])
    return ReferralDecision(record, outputs)


__all__ = ["confirmation", "ended", "org_removed", "org_status"]
