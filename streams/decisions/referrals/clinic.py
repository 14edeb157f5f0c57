"""What the clinic's commands do to a referral: open, cancel, replace the consent."""

from __future__ import annotations

from schemas.codes import (
    BusinessStatus,
    DeadLetterKind,
    Party,
    ReasonCode,
    TaskStatus,
    WithdrawReason,
)
from streams.decisions.commands import (
    CancelReferral,
    OpenReferral,
    ReferralClosed,
    UpdateConsent,
    patient_key,
)
from streams.decisions.lifecycle import Forbidden, transition
from streams.decisions.outputs import Outgoing, dead_letter_event
from streams.decisions.referrals.context import Context, ReferralDecision
from streams.decisions.referrals.record import ReferralRecord, offer_over
from streams.decisions.referrals.report import (
    apply_change,
    network_fails,
    network_source,
    reject,
    withdraw,
)
from streams.decisions.referrals.routing import route


def open_referral(command: OpenReferral, ctx: Context, partition: int) -> ReferralDecision:
    record = new_record(command, partition, ctx)
    return ReferralDecision(record, route(record, ctx, cause=command.cause_event_id))


def new_record(command: OpenReferral, partition: int, ctx: Context) -> ReferralRecord:
    return ReferralRecord(
        **command.request_fields(),
        requested_at=command.requested_at,
        seen=[command.command_id],
        partition=partition,
        updated_at=ctx.now,
    )


def id_taken(command: OpenReferral, ctx: Context) -> ReferralDecision:
    """The clinic used one referral id for two patients: refuse the second, loudly.

    The dead letter tells the operators; the ``closed`` command frees the second
    patient's category, which the patient owner had marked open for this id.
    """
    letter = dead_letter_event(
        DeadLetterKind.VALIDATION,
        "the clinic already used this referral id for another patient",
        network_source(ctx, command.referral_id),
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


def cancel(record: ReferralRecord, command: CancelReferral, ctx: Context) -> ReferralDecision:
    if command.clinic_id != record.clinic_id:  # clinics choose referral ids: they may collide
        return reject(
            command,
            DeadLetterKind.AUTHORIZATION,
            f"referral does not belong to clinic {command.clinic_id}",
            ctx,
        )
    reason = command.reason or ReasonCode.CANCELLED_BY_CLINIC.value
    checked = transition(record.state, TaskStatus.CANCELLED, Party.CLINIC, reason=reason)
    if isinstance(checked, Forbidden):
        return reject(command, DeadLetterKind.TRANSITION, checked.message, ctx)
    outputs: list[Outgoing] = []
    if record.offer is not None:
        outputs.append(withdraw(record, WithdrawReason.CANCELLED_BY_CLINIC, ctx))
    outputs += apply_change(record, checked, ctx, cause=command.cause_event_id, at=ctx.now)
    return ReferralDecision(record, outputs)


def update_consent(
    record: ReferralRecord, command: UpdateConsent, ctx: Context
) -> ReferralDecision:
    """The clinic replaced the patient's consent: keep it, and stop what it no longer covers."""
    if command.clinic_id != record.clinic_id or record.state.terminal:
        return ReferralDecision(None, [])
    record.consent = command.consent
    if command.consent.covers(record.category, ctx.now):
        return ReferralDecision(record, [])  # later offers disclose under the new consent
    held = record.offer if not offer_over(record) else None
    failed = network_fails(
        record,
        ctx,
        BusinessStatus.CONSENT_REQUIRED,
        ReasonCode.CONSENT_WITHDRAWN.value,
        offer=held,
        withdrawal=WithdrawReason.CONSENT_WITHDRAWN if held is not None else None,
        cause=command.cause_event_id,
    )
    if isinstance(failed, Forbidden):  # pragma: no cover - allowed from every open status
        return ReferralDecision(record, [])
    return ReferralDecision(record, failed)


__all__ = ["cancel", "id_taken", "new_record", "open_referral", "update_consent"]
