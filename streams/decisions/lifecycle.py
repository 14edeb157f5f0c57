"""The referral lifecycle as a pure state machine (FHIR Task, Gravity profile).

The state is the referrer's Task as the clinic sees it: ``(status,
business_status)``. refnet is a coordination platform in Gravity's "indirect"
pattern: it keeps the clinic's Task and offers the referral to one organization
at a time (a downstream Task per organization, ``Task.partOf`` the clinic's).
While an organization holds the offer, its downstream Task and the clinic's
Task move together, so one state serves both; the one place where they part is
the organization saying no, which :func:`apply_org_status` maps.

Who may do what (:data:`ALLOWED` is the table, the code only reads it)
-----------------------------------------------------------------------
clinic (referrer)
    creates the referral (``draft`` -> ``requested``); cancels any open referral
    (``cancelled``, reason required); marks any open referral
    ``entered-in-error``.
organization (the one offered the referral)
    ``accepted`` / ``rejected`` before any work (from ``requested``);
    ``in-progress``, ``on-hold`` (and back), ``completed``, ``failed`` once
    accepted; ``cancelled`` at any time it holds the referral.
network
    * ``draft`` -> ``requested`` when it opens a referral from a screening
      (business status none or ``offered``);
    * ``requested`` -> ``requested`` with business status ``offered`` (offer
      sent) or ``re-routed`` (offer withdrawn after a timeout or a rejection,
      the next candidate comes next);
    * ``failed`` with ``unmatched`` (no candidate left; from draft or requested),
      ``expired`` (the referral outlived its time limit; from requested or
      active), ``consent-required`` (see below; from any open status: consent
      is checked again at every disclosure and a clinic may withdraw it) or
      ``network-error`` (the network failed on the referral's command), or
      ``organization-removed`` (from an active status: the organization working
      on it was deprovisioned; a pending offer is re-routed instead);
    * ``draft`` -> ``cancelled`` with ``duplicate`` (a screening need for which
      an open referral already exists). The network never cancels a requested
      referral: only the clinic withdraws its request; the network ends
      unworkable referrals with ``failed``.

Decisions
---------
* consent-required: a positive need that consent does not cover never leaves
  the network. It goes ``draft`` -> ``failed`` with business status
  ``consent-required`` (reason ``consent-not-granted``): terminal, so it never
  counts as an open referral and a later consented referral for the same
  category is not a duplicate.
* Reasons: ``rejected``, ``cancelled`` and ``failed`` need a reason from
  everyone. ``completed`` needs a reason *or* an outcome (FHIR's Task wants a
  statusReason on completed, docs/contract.md lets the organization send only an
  outcome; the renderer uses whichever is given as statusReason text).
* Business statuses are the network's: a clinic or organization move carrying
  one is ``wrong-party``; every move sets the business status anew (a clinic or
  organization move clears it).
* Terminal statuses (rejected, cancelled, failed, completed, entered-in-error)
  never move; the check comes first, whoever asks.
* An organization's ``rejected`` (and ``cancelled`` before it accepted) does not
  end the clinic's Task: :func:`apply_org_status` returns ``requested`` /
  ``re-routed`` and the network offers the next candidate (or fails the
  referral ``unmatched``). An organization's ``cancelled`` after accepting ends
  the clinic's Task as ``failed`` with the organization's reason: work had
  begun, the loop closes honestly instead of silently starting over.

How the agents call it
----------------------
* clinic creates: ``transition(INITIAL, REQUESTED, Party.CLINIC)``
* clinic cancels: ``transition(state, CANCELLED, Party.CLINIC, reason=...)``
* organization reports: ``apply_org_status(state, OrgStatus.ACCEPTED)``
  (likewise rejected/failed/cancelled with ``reason=``, completed with
  ``outcome=`` or ``reason=``, in-progress, on-hold)
* network offers: ``transition(state, REQUESTED, Party.NETWORK,
  business_status=BusinessStatus.OFFERED)``
* network withdraws after a timeout: ``transition(state, REQUESTED,
  Party.NETWORK, business_status=BusinessStatus.RE_ROUTED, reason="timeout")``
* network finds no candidate: ``transition(state, FAILED, Party.NETWORK,
  business_status=BusinessStatus.UNMATCHED, reason="no-matching-service")``
* consent missing: ``transition(INITIAL, FAILED, Party.NETWORK,
  business_status=BusinessStatus.CONSENT_REQUIRED, reason="consent-not-granted")``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from schemas.codes import TERMINAL_STATUSES, BusinessStatus, OrgStatus, Party, TaskStatus


@dataclass(frozen=True, slots=True)
class ReferralState:
    """The referrer's Task: status and the network's business status."""

    status: TaskStatus
    business_status: BusinessStatus | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


#: Where every referral starts: a draft Task the network holds.
INITIAL: Final = ReferralState(TaskStatus.DRAFT)


class ForbiddenCode(StrEnum):
    ILLEGAL_TRANSITION = "illegal-transition"
    WRONG_PARTY = "wrong-party"
    REASON_REQUIRED = "reason-required"
    TERMINAL = "terminal"
    INVALID_BUSINESS_STATUS = "invalid-business-status"


@dataclass(frozen=True, slots=True)
class Forbidden:
    """A refused change: nothing moves, the event goes to the dead-letter topic."""

    code: ForbiddenCode
    message: str


@dataclass(frozen=True, slots=True)
class Transition:
    """An accepted change of the referrer's Task.

    ``downstream`` is the organization's own Task status when the move came from
    :func:`apply_org_status` (it differs from ``after.status`` on a rejection).
    """

    before: ReferralState
    after: ReferralState
    by: Party
    reason: str | None = None
    outcome: str | None = None
    downstream: TaskStatus | None = None

    @property
    def reroute(self) -> bool:
        """The network must offer the referral to the next candidate."""
        return self.after == ReferralState(TaskStatus.REQUESTED, BusinessStatus.RE_ROUTED)


@dataclass(frozen=True, slots=True)
class Move:
    """One row of the table: ``party`` may take a Task from ``source`` to ``target``,
    setting one of ``business_statuses`` (``None``: no business status)."""

    source: TaskStatus
    party: Party
    target: TaskStatus
    business_statuses: frozenset[BusinessStatus | None] = frozenset({None})


def _moves(
    sources: Iterable[TaskStatus],
    party: Party,
    targets: Iterable[TaskStatus],
    business_statuses: Iterable[BusinessStatus | None] = (None,),
) -> tuple[Move, ...]:
    allowed = frozenset(business_statuses)
    return tuple(Move(s, party, t, allowed) for s in sources for t in tuple(targets))


_S = TaskStatus
_B = BusinessStatus
_ACTIVE: Final = (_S.ACCEPTED, _S.IN_PROGRESS, _S.ON_HOLD)  # the organization works on it
_OPEN: Final = (_S.DRAFT, _S.REQUESTED, *_ACTIVE)  # every non-terminal status

ALLOWED: Final[tuple[Move, ...]] = (
    # the clinic (referrer)
    *_moves([_S.DRAFT], Party.CLINIC, [_S.REQUESTED]),
    *_moves(_OPEN, Party.CLINIC, [_S.CANCELLED, _S.ENTERED_IN_ERROR]),
    # the organization holding the offer
    *_moves([_S.REQUESTED], Party.ORGANIZATION, [_S.ACCEPTED, _S.REJECTED, _S.CANCELLED]),
    *_moves([_S.ACCEPTED, _S.ON_HOLD], Party.ORGANIZATION, [_S.IN_PROGRESS]),
    *_moves([_S.ACCEPTED, _S.IN_PROGRESS], Party.ORGANIZATION, [_S.ON_HOLD]),
    *_moves(_ACTIVE, Party.ORGANIZATION, [_S.COMPLETED, _S.FAILED, _S.CANCELLED]),
    # the network
    *_moves([_S.DRAFT], Party.NETWORK, [_S.REQUESTED], [None, _B.OFFERED]),
    *_moves([_S.REQUESTED], Party.NETWORK, [_S.REQUESTED], [_B.OFFERED, _B.RE_ROUTED]),
    *_moves(
        [_S.DRAFT],
        Party.NETWORK,
        [_S.FAILED],
        [_B.CONSENT_REQUIRED, _B.UNMATCHED, _B.NETWORK_ERROR],
    ),
    *_moves(
        [_S.REQUESTED],
        Party.NETWORK,
        [_S.FAILED],
        [_B.UNMATCHED, _B.EXPIRED, _B.CONSENT_REQUIRED, _B.NETWORK_ERROR],
    ),
    *_moves(
        _ACTIVE,
        Party.NETWORK,
        [_S.FAILED],
        [_B.EXPIRED, _B.CONSENT_REQUIRED, _B.NETWORK_ERROR, _B.ORGANIZATION_REMOVED],
    ),
    *_moves([_S.DRAFT], Party.NETWORK, [_S.CANCELLED], [_B.DUPLICATE]),
)

#: Statuses that need a reason text, whoever sets them.
REASON_REQUIRED: Final = frozenset({_S.REJECTED, _S.CANCELLED, _S.FAILED})
#: Statuses that need a reason or an outcome.
REASON_OR_OUTCOME_REQUIRED: Final = frozenset({_S.COMPLETED})

_INDEX: Final[Mapping[tuple[TaskStatus, TaskStatus], Mapping[Party, Move]]] = {
    (move.source, move.target): {
        other.party: other
        for other in ALLOWED
        if (other.source, other.target) == (move.source, move.target)
    }
    for move in ALLOWED
}


def allowed_moves(state: ReferralState | TaskStatus, party: Party) -> tuple[Move, ...]:
    """The rows of :data:`ALLOWED` open to ``party`` from ``state``."""
    status = state.status if isinstance(state, ReferralState) else state
    return tuple(move for move in ALLOWED if move.source is status and move.party is party)


def allowed_targets(state: ReferralState | TaskStatus, party: Party) -> frozenset[TaskStatus]:
    """The statuses ``party`` may set from ``state`` (empty for a terminal state)."""
    return frozenset(move.target for move in allowed_moves(state, party))


def _text(value: str | None) -> str | None:
    """Blank text counts as no text."""
    if value is None or not value.strip():
        return None
    return value.strip()


def transition(
    current: ReferralState,
    to: TaskStatus,
    by: Party,
    *,
    business_status: BusinessStatus | None = None,
    reason: str | None = None,
    outcome: str | None = None,
) -> Transition | Forbidden:
    """Check one change of a referral's Task and return its result.

    Checks, in order: terminal state, a move that exists at all, the party, the
    business status, the reason. The first failing check is the answer.
    """
    reason, outcome = _text(reason), _text(outcome)
    here = f"{current.status.value}" + (
        f"/{current.business_status.value}" if current.business_status else ""
    )
    if current.terminal:
        return Forbidden(
            ForbiddenCode.TERMINAL, f"the referral is {here}, a final status; nothing moves"
        )
    parties = _INDEX.get((current.status, to))
    if not parties:
        return Forbidden(
            ForbiddenCode.ILLEGAL_TRANSITION, f"no one may move a referral from {here} to {to}"
        )
    move = parties.get(by)
    if move is None:
        who = ", ".join(sorted(parties))
        return Forbidden(
            ForbiddenCode.WRONG_PARTY, f"{here} -> {to} is for the {who}, not the {by.value}"
        )
    if business_status not in move.business_statuses:
        if by is not Party.NETWORK and business_status is not None:
            return Forbidden(
                ForbiddenCode.WRONG_PARTY,
                f"business statuses are set by the network, not the {by.value}",
            )
        wanted = ", ".join(sorted(str(b) for b in move.business_statuses))
        return Forbidden(
            ForbiddenCode.INVALID_BUSINESS_STATUS,
            f"{here} -> {to} takes business status {wanted}, not {business_status}",
        )
    if to in REASON_REQUIRED and reason is None:
        return Forbidden(ForbiddenCode.REASON_REQUIRED, f"{to} needs a reason")
    if to in REASON_OR_OUTCOME_REQUIRED and reason is None and outcome is None:
        return Forbidden(ForbiddenCode.REASON_REQUIRED, f"{to} needs a reason or an outcome")
    return Transition(
        before=current,
        after=ReferralState(to, business_status),
        by=by,
        reason=reason,
        outcome=outcome,
    )


def apply_org_status(
    current: ReferralState,
    status: OrgStatus | TaskStatus,
    *,
    reason: str | None = None,
    outcome: str | None = None,
) -> Transition | Forbidden:
    """An organization's status report, as the referrer's Task sees it.

    The move is checked against the organization's own Task (same state while
    it holds the offer); then a rejection, or a cancellation before accepting,
    becomes ``requested``/``re-routed`` for the clinic (``Transition.reroute``),
    a cancellation after accepting becomes ``failed``, anything else is mirrored.
    """
    to = TaskStatus(status)
    checked = transition(current, to, Party.ORGANIZATION, reason=reason, outcome=outcome)
    if isinstance(checked, Forbidden):
        return checked
    after = checked.after
    if to is _S.REJECTED or (to is _S.CANCELLED and current.status is _S.REQUESTED):
        after = ReferralState(_S.REQUESTED, _B.RE_ROUTED)
    elif to is _S.CANCELLED:
        after = ReferralState(_S.FAILED)
    return Transition(
        before=current,
        after=after,
        by=Party.ORGANIZATION,
        reason=checked.reason,
        outcome=checked.outcome,
        downstream=to,
    )


__all__ = [
    "ALLOWED",
    "INITIAL",
    "REASON_OR_OUTCOME_REQUIRED",
    "REASON_REQUIRED",
    "Forbidden",
    "ForbiddenCode",
    "Move",
    "ReferralState",
    "Transition",
    "allowed_moves",
    "allowed_targets",
    "apply_org_status",
    "transition",
]
