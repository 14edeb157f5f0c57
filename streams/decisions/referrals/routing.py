"""Offering a referral to the best service not tried yet, or ending it unmatched."""

from __future__ import annotations

from uuid import UUID

from schemas.codes import BusinessStatus, Party, ReasonCode, TaskStatus
from schemas.events import ReferralOffered
from schemas.privacy import offered_patient
from streams.decisions.commands import derived_id
from streams.decisions.lifecycle import Forbidden, transition
from streams.decisions.matching import MatchRequest, age_on, rank, respond_by
from streams.decisions.outputs import Outgoing
from streams.decisions.referrals.context import Context, Directory
from streams.decisions.referrals.record import Offer, ReferralRecord
from streams.decisions.referrals.report import apply_change, network_change, network_fails


def route(record: ReferralRecord, ctx: Context, *, cause: UUID | None) -> list[Outgoing]:
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
        age=age_on(record.patient.birth_date, ctx.now.date()),
        requested_service_id=record.requested_service_id,
    )
    services = (
        ctx.directory.candidates(request) if isinstance(ctx.directory, Directory) else ctx.directory
    )
    candidates = rank(
        services, request, excluded=record.tried, org_stats=ctx.org_stats, load=ctx.load
    )
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
    record.tried_orgs.append(best.org_id)
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
        attempt=record.attempt,
        codes=record.codes,
    )
    outputs = [Outgoing.event(ctx.topics.org_referrals(best.org_id), record.referral_id, offered)]
    disclosed = sorted(k for k, v in offered.patient.model_dump().items() if v is not None)
    outputs += apply_change(
        record, checked, ctx, cause=cause, at=ctx.now, offer=offer, disclosed=disclosed
    )
    return outputs


def reroute(
    record: ReferralRecord, offer: Offer, reason: str, ctx: Context
) -> list[Outgoing] | Forbidden:
    """The network takes the referral back from ``offer``'s organization and offers it again."""
    outputs = network_change(
        record, ctx, TaskStatus.REQUESTED, BusinessStatus.RE_ROUTED, reason, offer=offer
    )
    if isinstance(outputs, Forbidden):
        return outputs
    offer.answered = True
    return outputs + route(record, ctx, cause=None)


def _end(
    record: ReferralRecord,
    ctx: Context,
    cause: UUID | None,
    business: BusinessStatus,
    reason: ReasonCode,
) -> list[Outgoing]:
    """The network ends a referral it cannot offer (``failed`` with ``business``)."""
    ended = network_fails(record, ctx, business, reason, offer=None, cause=cause)
    if isinstance(ended, Forbidden):  # pragma: no cover - table allows it
        raise AssertionError(ended.message)
    return ended


__all__ = ["reroute", "route"]
