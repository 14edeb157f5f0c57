"""What one referral.state-changed event means for the ledger: pure, no database.

The event log records each change as the network made it; reports want each
referral as the clinic sees it now. :func:`step_of` names what an event did
(one word per step, the same words as the metrics and ``refnet report``), and
:func:`fold` applies an event to the current row of its referral.

An organization's own status travels on the event (``to_status`` is
``rejected`` when it says no), while the clinic's Task goes on
(``requested`` / ``re-routed``): :func:`clinic_status` maps one to the other as
:func:`streams.decisions.lifecycle.apply_org_status` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from streams.decisions.loop_closure import closes_loop

#: Statuses in which the clinic's Task never moves again.
TERMINAL: Final = frozenset({"completed", "failed", "cancelled", "rejected", "entered-in-error"})

#: Steps, in the words of the metrics and reports (snake_case of the wire codes).
STEPS: Final = (
    "offered",
    "rejected",
    "timed_out",
    "re_routed",
    "accepted",
    "in_progress",
    "on_hold",
    "completed",
    "failed",
    "cancelled",
    "unmatched",
    "expired",
    "consent_required",
    "duplicate",
    "network_error",
    "requested",
    "entered_in_error",
)

#: The offered fields of :func:`schemas.privacy.offered_patient`, in order.
OFFERED_FIELDS: Final = ("given_name", "phone", "preferred_language", "postal_code")


def _word(code: str) -> str:
    return code.replace("-", "_")


def step_of(status: str | None, business: str | None, actor: str | None, reason: str | None) -> str:
    """What one event did: ``offered``, ``rejected``, ``timed_out``, ``accepted``, ..."""
    if business == "re-routed":
        if actor == "organization":
            return "rejected"  # a rejection, or a cancellation before accepting
        return "timed_out" if reason == "timeout" else "re_routed"
    if business is not None:
        return _word(business)  # offered, unmatched, expired, consent-required, ...
    if status == "cancelled" and actor == "organization":
        return "failed"  # an organization that stops after accepting fails the referral
    return _word(status or "requested")


def clinic_status(status: str, business: str | None, actor: str | None) -> str:
    """The clinic's Task status after an event whose ``to_status`` is ``status``."""
    if business == "re-routed":
        return "requested"
    if status == "cancelled" and actor == "organization" and business is None:
        return "failed"
    return status


@dataclass(frozen=True, slots=True)
class Observation:
    """A figure for the metrics: a step by category, or a duration in seconds."""

    metric: str  # "step", "time_to_accept", "time_to_close"
    category: str
    step: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class ReferralNow:
    """One row of the ``referrals`` table: a referral as the clinic sees it now."""

    referral_id: str
    status: str
    opened_at: datetime
    updated_at: datetime
    last_event_id: UUID
    clinic_id: str | None = None
    clinic_referral_id: str | None = None
    patient_id: str | None = None
    category: str | None = None
    screening_id: str | None = None
    preferred_language: str | None = None
    postal_code: str | None = None
    business_status: str | None = None
    reason: str | None = None
    outcome: str | None = None
    org_id: str | None = None
    service_id: str | None = None
    attempt: int = 0
    first_offered_at: datetime | None = None
    accepted_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    loop_closed: bool = False
    offers: int = 0
    rejections: int = 0
    timeouts: int = 0
    events: int = 0
    duplicate: bool = False

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in REFERRAL_COLUMNS)


#: The columns of ``referrals``, in the order of :meth:`ReferralNow.values`.
REFERRAL_COLUMNS: Final = tuple(f.name for f in fields(ReferralNow))


def _seconds(later: datetime, earlier: datetime) -> float:
    # an organization's clock may run behind the network's: never a negative duration
    return max(0.0, (later - earlier).total_seconds())


def fold(
    current: ReferralNow | None, row: Mapping[str, Any]
) -> tuple[ReferralNow, list[Observation]]:
    """Apply one new event (a ledger row: LedgerRow's fields) to its referral's row.

    Returns the new row and what the metrics should count: each step once, the
    opening of a referral (its first event, unless it is a duplicate), and the
    time to accept and, for a loop closed with an outcome, the time to close.
    """
    payload: Mapping[str, Any] = row.get("payload") or {}
    at: datetime = row["occurred_at"]
    status_code: str = row.get("status") or payload.get("to_status") or "requested"
    business: str | None = row.get("business_status")
    actor: str | None = payload.get("actor")
    reason: str | None = payload.get("reason")
    step = step_of(status_code, business, actor, reason)
    status = clinic_status(status_code, business, actor)
    category = payload.get("category") or (current.category if current else None)
    observations: list[Observation] = []
    label = category or "unknown"
    if current is None:
        current = ReferralNow(
            referral_id=row["referral_id"],
            status=status,
            opened_at=at,
            updated_at=at,
            last_event_id=row["event_id"],
            duplicate=step == "duplicate",
        )
        if step != "duplicate":
            observations.append(Observation("step", label, step="opened"))
    observations.append(Observation("step", label, step=step))
    if step == "offered" and current.first_offered_at is None:
        # once per referral: the loop closure ratio's denominator (offered to an organization)
        observations.append(Observation("step", label, step="first_offered"))
    terminal = status in TERMINAL
    loop_closed = terminal and closes_loop(status, business, actor)
    accepted_at = current.accepted_at
    if step == "accepted" and accepted_at is None:
        accepted_at = at
        observations.append(
            Observation("time_to_accept", label, seconds=_seconds(at, current.opened_at))
        )
    if loop_closed and current.closed_at is None:
        observations.append(
            Observation("time_to_close", label, seconds=_seconds(at, current.opened_at))
        )
    new = replace(
        current,
        status=status,
        business_status=business,
        reason=reason,
        outcome=payload.get("outcome"),
        clinic_id=row.get("clinic_id") or current.clinic_id,
        clinic_referral_id=payload.get("clinic_referral_id") or current.clinic_referral_id,
        patient_id=payload.get("patient_id") or current.patient_id,
        category=category,
        screening_id=payload.get("screening_id") or current.screening_id,
        preferred_language=payload.get("preferred_language") or current.preferred_language,
        postal_code=payload.get("postal_code") or current.postal_code,
        org_id=row.get("org_id") or current.org_id,
        service_id=payload.get("service_id") or current.service_id,
        attempt=max(current.attempt, int(payload.get("attempt") or 0)),
        first_offered_at=current.first_offered_at or (at if step == "offered" else None),
        accepted_at=accepted_at,
        closed_at=(current.closed_at or at) if terminal else None,
        closed_by=(current.closed_by or actor) if terminal else None,
        loop_closed=loop_closed,
        offers=current.offers + (step == "offered"),
        rejections=current.rejections + (step == "rejected"),
        timeouts=current.timeouts + (step == "timed_out"),
        events=current.events + 1,
        updated_at=at,
        last_event_id=row["event_id"],
    )
    return new, observations


def disclosure_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The accounting-of-disclosures entry of an offer event, else None.

    Every offer discloses the minimum-necessary patient fields to the
    organization (45 CFR 164.528). The fields and the consent come from the
    event when the network records them there (``disclosed_fields``,
    ``consent``); otherwise the fields are those an offer can carry, less the
    ones the event shows the patient did not have (language, postal code), and
    the consent is not known to the ledger (null).
    """
    if row.get("business_status") != "offered" or not row.get("org_id"):
        return None
    payload: Mapping[str, Any] = row.get("payload") or {}
    disclosed = payload.get("disclosed_fields")
    if not isinstance(disclosed, list):
        disclosed = [
            name
            for name in OFFERED_FIELDS
            if name not in {"preferred_language", "postal_code"} or payload.get(name)
        ]
    consent = payload.get("consent")
    return {
        "event_id": row["event_id"],
        "disclosed_at": row["occurred_at"],
        "recipient_org_id": row["org_id"],
        "service_id": payload.get("service_id"),
        "clinic_id": row.get("clinic_id"),
        "patient_id": payload.get("patient_id"),
        "referral_id": row["referral_id"],
        "category": payload.get("category"),
        "fields_disclosed": [str(f) for f in disclosed],
        "consent": consent if isinstance(consent, dict) else None,
    }
