"""The referral state machine: every (status, party, target) of the full product,
checked against the ALLOWED table, plus reasons, business statuses and the
organization-to-referrer mapping."""

from __future__ import annotations

import itertools

import pytest

from schemas.codes import (
    TERMINAL_STATUSES,
    BusinessStatus,
    OrgStatus,
    Party,
    TaskStatus,
)
from streams.decisions.lifecycle import (
    ALLOWED,
    INITIAL,
    REASON_OR_OUTCOME_REQUIRED,
    REASON_REQUIRED,
    Forbidden,
    ForbiddenCode,
    Move,
    ReferralState,
    Transition,
    allowed_moves,
    allowed_targets,
    apply_org_status,
    transition,
)

S = TaskStatus
B = BusinessStatus
BUSINESS_OPTIONS: list[BusinessStatus | None] = [None, *BusinessStatus]
TABLE = {(m.source, m.party, m.target): m for m in ALLOWED}
PRODUCT = list(itertools.product(TaskStatus, Party, TaskStatus))
ALLOWED_TRIPLES = [t for t in PRODUCT if t in TABLE]
FORBIDDEN_TRIPLES = [t for t in PRODUCT if t not in TABLE]


def ident(triple: tuple[TaskStatus, Party, TaskStatus]) -> str:
    source, party, target = triple
    return f"{source}-by-{party}-to-{target}"


def first_business_status(move: Move) -> BusinessStatus | None:
    return sorted(move.business_statuses, key=lambda b: "" if b is None else b.value)[0]


# ======================================================================== the table itself


def test_table_has_no_row_leaving_a_terminal_status() -> None:
    assert not [m for m in ALLOWED if m.source in TERMINAL_STATUSES]


def test_table_has_each_source_party_target_once() -> None:
    assert len(TABLE) == len(ALLOWED)


def test_table_gives_business_statuses_only_to_the_network() -> None:
    for move in ALLOWED:
        if move.party is not Party.NETWORK:
            assert move.business_statuses == frozenset({None})


def test_exhaustive_product_is_split_between_allowed_and_forbidden() -> None:
    assert len(PRODUCT) == len(TaskStatus) * len(Party) * len(TaskStatus)
    assert len(ALLOWED_TRIPLES) == len(ALLOWED)
    assert len(ALLOWED_TRIPLES) + len(FORBIDDEN_TRIPLES) == len(PRODUCT)


# ======================================================================== exhaustive product


@pytest.mark.parametrize("triple", ALLOWED_TRIPLES, ids=ident)
def test_every_allowed_move_succeeds_with_its_business_status_and_a_reason(
    triple: tuple[TaskStatus, Party, TaskStatus],
) -> None:
    source, party, target = triple
    move = TABLE[triple]
    for business in move.business_statuses:
        result = transition(
            ReferralState(source),
            target,
            party,
            business_status=business,
            reason="no-capacity",
            outcome="enrolled",
        )
        assert isinstance(result, Transition), result
        assert result.after == ReferralState(target, business)
        assert result.before == ReferralState(source)
        assert result.by is party


@pytest.mark.parametrize("triple", FORBIDDEN_TRIPLES, ids=ident)
def test_every_forbidden_move_is_refused_whatever_the_business_status(
    triple: tuple[TaskStatus, Party, TaskStatus],
) -> None:
    source, party, target = triple
    for business in BUSINESS_OPTIONS:
        result = transition(
            ReferralState(source),
            target,
            party,
            business_status=business,
            reason="other",
            outcome="done",
        )
        assert isinstance(result, Forbidden), (triple, business)
    result = transition(ReferralState(source), target, party, reason="other", outcome="done")
    assert isinstance(result, Forbidden)
    if source in TERMINAL_STATUSES:
        assert result.code is ForbiddenCode.TERMINAL
    elif not any((source, p, target) in TABLE for p in Party):
        assert result.code is ForbiddenCode.ILLEGAL_TRANSITION
    else:
        assert result.code is ForbiddenCode.WRONG_PARTY
    assert result.message


@pytest.mark.parametrize("triple", ALLOWED_TRIPLES, ids=ident)
def test_allowed_move_with_a_business_status_outside_its_row_is_refused(
    triple: tuple[TaskStatus, Party, TaskStatus],
) -> None:
    source, party, target = triple
    move = TABLE[triple]
    for business in BUSINESS_OPTIONS:
        if business in move.business_statuses:
            continue
        result = transition(
            ReferralState(source), target, party, business_status=business, reason="other"
        )
        assert isinstance(result, Forbidden)
        expected = (
            ForbiddenCode.INVALID_BUSINESS_STATUS
            if party is Party.NETWORK
            else ForbiddenCode.WRONG_PARTY
        )
        assert result.code is expected


@pytest.mark.parametrize(("status", "party"), list(itertools.product(TaskStatus, Party)))
def test_allowed_targets_list_exactly_the_table_rows(status: TaskStatus, party: Party) -> None:
    expected = {target for (source, p, target) in TABLE if source is status and p is party}
    assert allowed_targets(ReferralState(status), party) == expected
    assert allowed_targets(status, party) == expected
    assert {m.target for m in allowed_moves(status, party)} == expected


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_statuses_have_no_allowed_target_for_anyone(status: TaskStatus) -> None:
    assert all(not allowed_targets(status, party) for party in Party)


def test_the_business_status_of_the_current_state_does_not_change_what_is_allowed() -> None:
    offered = ReferralState(S.REQUESTED, B.OFFERED)
    rerouted = ReferralState(S.REQUESTED, B.RE_ROUTED)
    for state in (offered, rerouted):
        assert isinstance(transition(state, S.ACCEPTED, Party.ORGANIZATION), Transition)


# ======================================================================== reasons


REASONED_MOVES = [m for m in ALLOWED if m.target in REASON_REQUIRED]
COMPLETING_MOVES = [m for m in ALLOWED if m.target in REASON_OR_OUTCOME_REQUIRED]


def move_id(move: Move) -> str:
    return ident((move.source, move.party, move.target))


def test_rejected_cancelled_and_failed_need_a_reason_and_completed_a_reason_or_outcome() -> None:
    assert frozenset({S.REJECTED, S.CANCELLED, S.FAILED}) == REASON_REQUIRED
    assert frozenset({S.COMPLETED}) == REASON_OR_OUTCOME_REQUIRED
    assert REASONED_MOVES
    assert COMPLETING_MOVES


@pytest.mark.parametrize("move", REASONED_MOVES, ids=move_id)
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reason_is_required_for_rejected_cancelled_failed_by_everyone(
    move: Move, reason: str | None
) -> None:
    result = transition(
        ReferralState(move.source),
        move.target,
        move.party,
        business_status=first_business_status(move),
        reason=reason,
        outcome="an outcome is not a reason",
    )
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.REASON_REQUIRED


@pytest.mark.parametrize("move", COMPLETING_MOVES, ids=move_id)
def test_completed_needs_a_reason_or_an_outcome(move: Move) -> None:
    state = ReferralState(move.source)
    missing = transition(state, move.target, move.party, reason=" ", outcome=None)
    assert isinstance(missing, Forbidden)
    assert missing.code is ForbiddenCode.REASON_REQUIRED
    with_outcome = transition(state, move.target, move.party, outcome="enrolled in SNAP")
    assert isinstance(with_outcome, Transition)
    assert with_outcome.outcome == "enrolled in SNAP"
    with_reason = transition(state, move.target, move.party, reason="service delivered")
    assert isinstance(with_reason, Transition)


def test_reasons_are_stripped_and_kept_on_the_transition() -> None:
    result = transition(INITIAL, S.CANCELLED, Party.CLINIC, reason="  patient moved  ")
    assert isinstance(result, Transition)
    assert result.reason == "patient moved"


def test_entered_in_error_needs_no_reason() -> None:
    result = transition(ReferralState(S.ACCEPTED), S.ENTERED_IN_ERROR, Party.CLINIC)
    assert isinstance(result, Transition)


# ======================================================================== checks order


def test_terminal_is_reported_before_anything_else() -> None:
    result = transition(ReferralState(S.COMPLETED), S.CANCELLED, Party.ORGANIZATION)
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.TERMINAL


def test_organization_cannot_accept_a_draft_nobody_can() -> None:
    result = transition(INITIAL, S.ACCEPTED, Party.ORGANIZATION)
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.ILLEGAL_TRANSITION


def test_clinic_cannot_accept_its_own_referral() -> None:
    result = transition(ReferralState(S.REQUESTED, B.OFFERED), S.ACCEPTED, Party.CLINIC)
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.WRONG_PARTY


def test_organization_cannot_set_a_business_status() -> None:
    result = transition(
        ReferralState(S.REQUESTED), S.ACCEPTED, Party.ORGANIZATION, business_status=B.OFFERED
    )
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.WRONG_PARTY


def test_network_self_move_on_requested_needs_offered_or_rerouted() -> None:
    result = transition(ReferralState(S.REQUESTED), S.REQUESTED, Party.NETWORK)
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.INVALID_BUSINESS_STATUS


def test_network_cannot_cancel_a_requested_referral() -> None:
    result = transition(
        ReferralState(S.REQUESTED),
        S.CANCELLED,
        Party.NETWORK,
        business_status=B.DUPLICATE,
        reason="duplicate-open-referral",
    )
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.WRONG_PARTY


def test_organization_cannot_reject_after_accepting() -> None:
    result = transition(ReferralState(S.ACCEPTED), S.REJECTED, Party.ORGANIZATION, reason="other")
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.ILLEGAL_TRANSITION


# ======================================================================== agents' calls


def test_clinic_creates_and_network_offers() -> None:
    created = transition(INITIAL, S.REQUESTED, Party.CLINIC)
    assert isinstance(created, Transition)
    assert created.after == ReferralState(S.REQUESTED)
    offered = transition(created.after, S.REQUESTED, Party.NETWORK, business_status=B.OFFERED)
    assert isinstance(offered, Transition)
    assert offered.after == ReferralState(S.REQUESTED, B.OFFERED)


def test_happy_path_from_screening_to_completed() -> None:
    state = INITIAL
    steps: list[Transition | Forbidden] = []
    steps.append(transition(state, S.REQUESTED, Party.NETWORK, business_status=B.OFFERED))
    for status, kwargs in [
        (OrgStatus.ACCEPTED, {}),
        (OrgStatus.IN_PROGRESS, {}),
        (OrgStatus.ON_HOLD, {}),
        (OrgStatus.IN_PROGRESS, {}),
        (OrgStatus.COMPLETED, {"outcome": "household enrolled"}),
    ]:
        last = steps[-1]
        assert isinstance(last, Transition), last
        steps.append(apply_org_status(last.after, status, **kwargs))
    final = steps[-1]
    assert isinstance(final, Transition)
    assert final.after == ReferralState(S.COMPLETED)
    assert final.outcome == "household enrolled"
    assert final.after.terminal


def test_org_accepted_clears_the_offered_business_status() -> None:
    result = apply_org_status(ReferralState(S.REQUESTED, B.OFFERED), OrgStatus.ACCEPTED)
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.ACCEPTED)
    assert result.downstream is S.ACCEPTED
    assert not result.reroute


def test_org_rejection_keeps_the_referrers_task_requested_and_reroutes() -> None:
    result = apply_org_status(
        ReferralState(S.REQUESTED, B.OFFERED), OrgStatus.REJECTED, reason="no-capacity"
    )
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.REQUESTED, B.RE_ROUTED)
    assert result.downstream is S.REJECTED
    assert result.reason == "no-capacity"
    assert result.reroute


def test_org_rejection_without_reason_is_refused() -> None:
    result = apply_org_status(ReferralState(S.REQUESTED, B.OFFERED), OrgStatus.REJECTED)
    assert isinstance(result, Forbidden)
    assert result.code is ForbiddenCode.REASON_REQUIRED


def test_org_cancelling_before_accepting_reroutes_like_a_rejection() -> None:
    result = apply_org_status(
        ReferralState(S.REQUESTED, B.OFFERED), OrgStatus.CANCELLED, reason="other"
    )
    assert isinstance(result, Transition)
    assert result.reroute
    assert result.downstream is S.CANCELLED


@pytest.mark.parametrize("status", [S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD])
def test_org_cancelling_after_accepting_fails_the_referral_with_its_reason(
    status: TaskStatus,
) -> None:
    result = apply_org_status(ReferralState(status), OrgStatus.CANCELLED, reason="no-capacity")
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.FAILED)
    assert result.reason == "no-capacity"
    assert not result.reroute


def test_org_failed_needs_a_reason_and_ends_the_referral() -> None:
    refused = apply_org_status(ReferralState(S.IN_PROGRESS), OrgStatus.FAILED)
    assert isinstance(refused, Forbidden)
    assert refused.code is ForbiddenCode.REASON_REQUIRED
    failed = apply_org_status(
        ReferralState(S.IN_PROGRESS), OrgStatus.FAILED, reason="could-not-contact"
    )
    assert isinstance(failed, Transition)
    assert failed.after == ReferralState(S.FAILED)


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (INITIAL, OrgStatus.ACCEPTED),
        (ReferralState(S.REQUESTED, B.OFFERED), OrgStatus.IN_PROGRESS),
        (ReferralState(S.REQUESTED, B.OFFERED), OrgStatus.COMPLETED),
        (ReferralState(S.COMPLETED), OrgStatus.FAILED),
        (ReferralState(S.CANCELLED), OrgStatus.ACCEPTED),
        (ReferralState(S.FAILED, B.UNMATCHED), OrgStatus.ACCEPTED),
    ],
)
def test_org_status_out_of_order_is_refused(state: ReferralState, status: OrgStatus) -> None:
    result = apply_org_status(state, status, reason="other", outcome="x")
    assert isinstance(result, Forbidden)


@pytest.mark.parametrize("status", list(OrgStatus))
@pytest.mark.parametrize(
    "source", [S.DRAFT, S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD], ids=str
)
def test_apply_org_status_accepts_exactly_the_organization_rows(
    source: TaskStatus, status: OrgStatus
) -> None:
    result = apply_org_status(ReferralState(source), status, reason="other", outcome="x")
    expected = (source, Party.ORGANIZATION, TaskStatus(status)) in TABLE
    assert isinstance(result, Transition) is expected


def test_timeout_withdraw_reroutes_then_next_offer() -> None:
    offered = ReferralState(S.REQUESTED, B.OFFERED)
    withdrawn = transition(
        offered, S.REQUESTED, Party.NETWORK, business_status=B.RE_ROUTED, reason="timeout"
    )
    assert isinstance(withdrawn, Transition)
    assert withdrawn.reroute
    assert withdrawn.reason == "timeout"
    again = transition(withdrawn.after, S.REQUESTED, Party.NETWORK, business_status=B.OFFERED)
    assert isinstance(again, Transition)
    assert again.after == offered


def test_no_candidate_left_fails_the_referral_unmatched() -> None:
    result = transition(
        ReferralState(S.REQUESTED, B.RE_ROUTED),
        S.FAILED,
        Party.NETWORK,
        business_status=B.UNMATCHED,
        reason="no-matching-service",
    )
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.FAILED, B.UNMATCHED)
    assert result.after.terminal


def test_consent_required_never_leaves_the_network_and_is_terminal() -> None:
    result = transition(
        INITIAL,
        S.FAILED,
        Party.NETWORK,
        business_status=B.CONSENT_REQUIRED,
        reason="consent-not-granted",
    )
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.FAILED, B.CONSENT_REQUIRED)
    assert result.after.terminal


@pytest.mark.parametrize("status", [S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD])
def test_network_expires_an_open_referral_as_failed(status: TaskStatus) -> None:
    result = transition(
        ReferralState(status), S.FAILED, Party.NETWORK, business_status=B.EXPIRED, reason="timeout"
    )
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.FAILED, B.EXPIRED)


@pytest.mark.parametrize("status", [S.DRAFT, S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS, S.ON_HOLD])
def test_clinic_cancels_any_open_referral_with_a_reason(status: TaskStatus) -> None:
    state = ReferralState(status, B.OFFERED if status is S.REQUESTED else None)
    result = transition(state, S.CANCELLED, Party.CLINIC, reason="client-declined")
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.CANCELLED)


def test_duplicate_need_from_a_screening_is_cancelled_by_the_network_from_draft() -> None:
    result = transition(
        INITIAL,
        S.CANCELLED,
        Party.NETWORK,
        business_status=B.DUPLICATE,
        reason="duplicate-open-referral",
    )
    assert isinstance(result, Transition)
    assert result.after == ReferralState(S.CANCELLED, B.DUPLICATE)
