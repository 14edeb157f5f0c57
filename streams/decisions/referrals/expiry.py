"""What the timers' commands do to a referral: offer timeouts, idle expiry, retention.

Each command is checked against the record again: a timer looked at the
referral earlier, and a command that finds it moved on changes nothing.
"""

from __future__ import annotations

from schemas.codes import BusinessStatus, ReasonCode, WithdrawReason
from streams.decisions.commands import ForgetReferral, OfferTimeout, patient_key
from streams.decisions.lifecycle import Forbidden
from streams.decisions.outputs import Outgoing
from streams.decisions.referrals.context import Context, ReferralDecision
from streams.decisions.referrals.record import ACTIVE_STATUSES, ReferralRecord
from streams.decisions.referrals.report import network_fails, withdraw
from streams.decisions.referrals.routing import reroute


def timeout(record: ReferralRecord, command: OfferTimeout, ctx: Context) -> ReferralDecision:
    """The organization did not answer the offer of ``command.attempt`` in time."""
    offer = record.offer
    due = record.pending_deadline()
    if offer is None or due is None or offer.attempt != command.attempt or due > ctx.now:
        return ReferralDecision(None, [])  # stale: answered, re-routed or not yet due
    withdrawal = withdraw(record, WithdrawReason.TIMEOUT, ctx)
    outputs = reroute(record, offer, WithdrawReason.TIMEOUT.value, ctx)
    if isinstance(outputs, Forbidden):
        return ReferralDecision(None, [])
    return ReferralDecision(record, [withdrawal, *outputs])


def expire(record: ReferralRecord, ctx: Context) -> ReferralDecision:
    """An accepted, in-progress or on-hold referral heard nothing for ``idle_expiry``."""
    last = record.updated_at or record.requested_at
    if record.status not in ACTIVE_STATUSES or last + ctx.limits.idle_expiry > ctx.now:
        return ReferralDecision(None, [])  # stale: it moved since the timer looked
    offer = record.offer
    failed = network_fails(
        record,
        ctx,
        BusinessStatus.EXPIRED,
        ReasonCode.NO_RECENT_UPDATE.value,
        offer=offer,
        withdrawal=WithdrawReason.EXPIRED if offer is not None else None,
    )
    if isinstance(failed, Forbidden):  # pragma: no cover - allowed from active statuses
        return ReferralDecision(None, [])
    return ReferralDecision(record, failed)


def purge(record: ReferralRecord, ctx: Context) -> ReferralDecision:
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


__all__ = ["expire", "purge", "timeout"]
