"""The referral owner's two entry points: apply a command, or fail on one."""

from __future__ import annotations

from schemas.codes import BusinessStatus, DeadLetterKind, ReasonCode, WithdrawReason
from streams.decisions.commands import (
    AlertReferral,
    CancelReferral,
    ExpireReferral,
    OpenReferral,
    OrganizationRemoved,
    OrganizationStatus,
    PurgeReferral,
    ReferralCommand,
    UpdateConsent,
)
from streams.decisions.encounters import organization_alert
from streams.decisions.lifecycle import Forbidden
from streams.decisions.outputs import Outgoing, dead_letter_event
from streams.decisions.referrals.clinic import (
    cancel,
    id_taken,
    new_record,
    open_referral,
    update_consent,
)
from streams.decisions.referrals.context import Context, ReferralDecision
from streams.decisions.referrals.expiry import expire, purge, timeout
from streams.decisions.referrals.organizations import org_removed, org_status
from streams.decisions.referrals.record import ReferralRecord, offer_over
from streams.decisions.referrals.report import (
    close_if_final,
    network_fails,
    network_source,
    payload,
    reject_unknown,
    reopened_closed,
)


def decide(
    record: ReferralRecord | None, command: ReferralCommand, ctx: Context, *, partition: int = -1
) -> ReferralDecision:
    """Apply one command to a referral.

    A referral the command ends also frees the patient's category (a ``closed``
    command to the patient owner, the last output).
    """
    decision = _apply(record, command, ctx, partition)
    if decision.record is not None:
        decision.outputs.extend(close_if_final(decision.record, ctx))
    return decision


def _apply(
    record: ReferralRecord | None, command: ReferralCommand, ctx: Context, partition: int
) -> ReferralDecision:
    if isinstance(command, OpenReferral):
        if record is None:
            return open_referral(command, ctx, partition)
        if record.patient.id != command.patient.id:
            return id_taken(command, ctx)
        if record.state.terminal:  # the patient forgot it and marked its category open
            return ReferralDecision(None, reopened_closed(record, command, ctx))
        return ReferralDecision(None, [])  # a replayed or repeated open
    if isinstance(command, AlertReferral):
        return _alert(record, command, ctx)
    if record is None:
        return reject_unknown(command, ctx)
    if command.command_id in record.seen:
        return ReferralDecision(None, [])
    record = record.model_copy(deep=True)
    if isinstance(command, OrganizationStatus):
        decision = org_status(record, command, ctx)
    elif isinstance(command, CancelReferral):
        decision = cancel(record, command, ctx)
    elif isinstance(command, UpdateConsent):
        decision = update_consent(record, command, ctx)
    elif isinstance(command, ExpireReferral):
        decision = expire(record, ctx)
    elif isinstance(command, PurgeReferral):
        decision = purge(record, ctx)
    elif isinstance(command, OrganizationRemoved):
        decision = org_removed(record, command, ctx)
    else:
        decision = timeout(record, command, ctx)
    if decision.record is not None:
        decision.record.remember(command.command_id)
    return decision


def _alert(record: ReferralRecord | None, command: AlertReferral, ctx: Context) -> ReferralDecision:
    """An encounter of the referral's patient: the organization working on it hears of
    it as far as the consent allows. A referral gone or not held hears nothing, and
    the alert changes nothing of the referral but the ids it remembers."""
    if record is None or command.command_id in record.alerts:
        return ReferralDecision(None, [])
    outputs = organization_alert(
        referral_id=record.referral_id,
        org_id=record.offer.org_id if record.offer is not None else None,
        status=record.status,
        category=record.category,
        consent=record.consent,
        command=command,
        now=ctx.now,
        topics=ctx.topics,
    )
    if outputs is None:
        return ReferralDecision(None, [])
    record = record.model_copy(deep=True)
    record.remember_alert(command.command_id)
    return ReferralDecision(record, outputs)


def fail(
    record: ReferralRecord | None,
    command: ReferralCommand,
    ctx: Context,
    error: str,
    *,
    partition: int = -1,
) -> ReferralDecision:
    """The network failed on ``command`` (``error``: the exception's type, never values).

    The command is dead-lettered as ``internal``; a referral that was open, or
    that the command was opening, ends ``failed`` / ``network-error`` (its
    organization told to stop, the clinic told, the category freed), so that
    nothing waits forever on a command the network could not apply. ``partition``:
    the command's, which a referral it was opening is stored with (its timers' owner).
    """
    referral_id = (
        command.event.referral_id
        if isinstance(command, OrganizationStatus)
        else command.referral_id
    )
    source = getattr(command, "source", None) or network_source(ctx, referral_id)
    letter = dead_letter_event(
        DeadLetterKind.INTERNAL,
        f"the referral owner failed on a {command.kind} command: {error}",
        source,
        payload(command),
        occurred_at=ctx.now,
    )
    outputs = [Outgoing.event(ctx.topics.deadletter, source.key or referral_id, letter)]
    internal = DeadLetterKind.INTERNAL.value
    if isinstance(command, AlertReferral):  # an alert that failed ends no referral
        return ReferralDecision(None, outputs, dead_letter=internal)
    if record is None and isinstance(command, OpenReferral):
        record = new_record(command, partition, ctx)
    elif record is not None:
        record = record.model_copy(deep=True)
    if record is None or record.state.terminal:
        return ReferralDecision(None, outputs, dead_letter=internal)
    held = record.offer is not None and not offer_over(record)
    failed = network_fails(
        record,
        ctx,
        BusinessStatus.NETWORK_ERROR,
        ReasonCode.INTERNAL_ERROR.value,
        offer=record.offer,
        withdrawal=WithdrawReason.INTERNAL_ERROR if held else None,
    )
    if isinstance(failed, Forbidden):  # pragma: no cover - the table allows it from open
        return ReferralDecision(None, outputs, dead_letter=internal)
    outputs += failed + close_if_final(record, ctx)
    record.remember(command.command_id)
    return ReferralDecision(record, outputs, dead_letter=internal)


__all__ = ["decide", "fail"]
