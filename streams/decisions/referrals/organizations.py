"""What organizations do to a referral: report its status, or leave the network."""

from __future__ import annotations

from schemas.codes import BusinessStatus, DeadLetterKind, ReasonCode
from streams.decisions.commands import OrganizationRemoved, OrganizationStatus
from streams.decisions.lifecycle import Forbidden, apply_org_status
from streams.decisions.referrals.context import Context, ReferralDecision
from streams.decisions.referrals.record import ACTIVE_STATUSES, ReferralRecord, offer_over
from streams.decisions.referrals.report import apply_change, network_fails, reject
from streams.decisions.referrals.routing import reroute, route


def org_status(
    record: ReferralRecord, command: OrganizationStatus, ctx: Context
) -> ReferralDecision:
    event = command.event
    offer = record.offer
    if offer is None or offer.org_id != command.org_id:
        return reject(
            command,
            DeadLetterKind.AUTHORIZATION,
            f"referral is not currently offered to organization {command.org_id}",
            ctx,
        )
    checked = apply_org_status(
        record.state, event.status, reason=event.reason, outcome=event.outcome
    )
    if isinstance(checked, Forbidden):
        return reject(command, DeadLetterKind.TRANSITION, checked.message, ctx)
    offer.answered = True
    outputs = apply_change(
        record, checked, ctx, cause=event.event_id, at=event.occurred_at, offer=offer
    )
    if checked.reroute:
        outputs += route(record, ctx, cause=event.event_id)
    return ReferralDecision(record, outputs)


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


__all__ = ["org_removed", "org_status"]
