"""The timer's choice of command for a due referral: purge, time out, expire, or wait."""

from __future__ import annotations

from datetime import timedelta

from streams.decisions.commands import ExpireReferral, OfferTimeout, PurgeReferral
from streams.decisions.limits import Limits
from streams.decisions.referrals import ReferralRecord
from streams.decisions.timers import NotYet, timer_command
from tests.streams.test_referrals import ES_ORG, NET, cancel, ctx, opened, org_says, step

LIMITS = Limits()
SECOND = timedelta(seconds=1)


def offered() -> ReferralRecord:
    record = opened()
    assert record.pending_deadline() is not None
    return record


def test_an_offer_not_yet_due_is_put_back_for_its_respond_by() -> None:
    record = offered()
    respond_by = record.pending_deadline()
    assert respond_by is not None
    assert timer_command(record, LIMITS, respond_by - SECOND) == NotYet(respond_by)


def test_an_offer_past_its_respond_by_times_out_its_attempt() -> None:
    record = offered()
    respond_by = record.pending_deadline()
    assert respond_by is not None
    command = timer_command(record, LIMITS, respond_by)
    assert command == OfferTimeout(
        command_id=f"timeout:{NET}:{record.attempt}", referral_id=NET, attempt=record.attempt
    )


def test_an_accepted_referral_without_updates_expires_at_its_step() -> None:
    record = step(offered(), org_says(ES_ORG, "accepted"))
    assert record.pending_deadline() is None
    due = record.next_due(LIMITS)
    assert due is not None
    assert timer_command(record, LIMITS, due - SECOND) == NotYet(due)
    assert timer_command(record, LIMITS, due + SECOND) == ExpireReferral(
        command_id=f"expire:{NET}:{record.step}", referral_id=NET, step=record.step
    )


def test_a_closed_referral_is_purged_after_its_retention() -> None:
    record = step(offered(), cancel())
    assert record.state.terminal
    due = record.next_due(LIMITS)
    assert due is not None
    assert isinstance(timer_command(record, LIMITS, due - SECOND), NotYet)
    assert timer_command(record, LIMITS, due) == PurgeReferral(
        command_id=f"purge:{NET}", referral_id=NET
    )


def test_a_referral_with_no_deadline_asks_for_nothing() -> None:
    record = offered().model_copy(update={"offer": None})
    assert record.next_due(LIMITS) is None
    assert timer_command(record, LIMITS, ctx().now + timedelta(days=400)) is None


def test_the_same_deadline_chooses_the_same_command_id() -> None:
    record = offered()
    later = ctx().now + timedelta(days=2)
    first, again = timer_command(record, LIMITS, later), timer_command(record, LIMITS, later)
    assert isinstance(first, OfferTimeout)
    assert first == again
