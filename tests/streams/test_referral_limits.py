"""The referral owner's finite life: consent at disclosure, expiry, attempts, purge, errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schemas.codes import TaskStatus
from schemas.events import Consent
from streams.decisions.commands import (
    PATIENT_COMMAND,
    ExpireReferral,
    ForgetReferral,
    PurgeReferral,
    UpdateConsent,
)
from streams.decisions.limits import Limits
from streams.decisions.referrals import ReferralDecision, ReferralRecord, decide, fail
from tests.streams.fixtures import CLINIC, T0, eid
from tests.streams.test_referrals import (
    EN_ORG,
    ES_ORG,
    NET,
    ctx,
    ev,
    open_command,
    opened,
    org_says,
    step,
    timeout,
)

LIMITS = Limits(idle_expiry=timedelta(days=30), retention=timedelta(days=7), max_attempts=5)


def lctx(offset: timedelta = timedelta(0), **kw: Any) -> Any:
    return ctx(offset, limits=kw.pop("limits", LIMITS), **kw)


def consent_until(offset: timedelta) -> Consent:
    return Consent(granted=True, categories=None, expires_at=T0 + offset)


def update_consent(consent: Consent, *, n: int = 40, clinic: str = CLINIC) -> UpdateConsent:
    return UpdateConsent(
        command_id=f"consent:{eid(n)}:{NET}",
        referral_id=NET,
        clinic_id=clinic,
        consent=consent,
        cause_event_id=eid(n),
        at=T0,
    )


def clinic_view(decision: ReferralDecision) -> list[tuple[str, str | None, str | None]]:
    return [
        (ev(o).status, ev(o).business_status, ev(o).reason)
        for o in decision.outputs
        if o.label == "referral.updated"
    ]


# ---------------------------------------------------------------- consent at disclosure
def test_a_re_route_after_consent_expired_discloses_nothing_and_tells_the_clinic() -> None:
    record = decide(None, open_command(consent=consent_until(timedelta(hours=1))), lctx()).record
    assert record is not None and record.offer is not None and record.offer.org_id == ES_ORG
    decision = decide(record, timeout(1), lctx(timedelta(days=2)))
    labels = [o.label for o in decision.outputs]
    assert "referral.offered" not in labels  # nothing reaches the next organization
    assert labels.count("referral.withdrawn") == 1  # the first is told to stop
    assert clinic_view(decision)[-1] == ("failed", "consent-required", "consent-expired")
    assert "command.closed" in labels


def test_consent_still_valid_at_the_re_route_offers_the_next_service() -> None:
    record = decide(None, open_command(consent=consent_until(timedelta(days=5))), lctx()).record
    assert record is not None
    decision = decide(record, timeout(1), lctx(timedelta(days=2)))
    offers = [ev(o) for o in decision.outputs if o.label == "referral.offered"]
    assert [o.service_id for o in offers] == ["svc-en"]


def test_withdrawn_consent_withdraws_the_open_offer_and_ends_the_referral() -> None:
    record = opened(lctx())
    decision = decide(record, update_consent(Consent(granted=False)), lctx(timedelta(hours=1)))
    withdrawn = [ev(o) for o in decision.outputs if o.label == "referral.withdrawn"]
    assert [(w.reason, w.referral_id) for w in withdrawn] == [("consent-withdrawn", NET)]
    assert clinic_view(decision) == [("failed", "consent-required", "consent-withdrawn")]
    assert decision.record is not None and decision.record.status == TaskStatus.FAILED


def test_narrowed_consent_that_still_covers_the_category_only_replaces_it() -> None:
    record = opened(lctx())
    food = Consent(granted=True, categories=["food-insecurity"])
    decision = decide(record, update_consent(food), lctx(timedelta(hours=1)))
    assert decision.outputs == []
    assert decision.record is not None and decision.record.consent == food


def test_consent_update_from_another_clinic_changes_nothing() -> None:
    record = opened(lctx())
    decision = decide(record, update_consent(Consent(granted=False), clinic="hunts-point"), lctx())
    assert decision == ReferralDecision(None, [])


# ---------------------------------------------------------------- idle expiry
def accepted(offset: timedelta = timedelta(hours=1)) -> ReferralRecord:
    return step(opened(lctx()), org_says(ES_ORG, "accepted"), lctx(offset))


def expire(record: ReferralRecord) -> ExpireReferral:
    return ExpireReferral(
        command_id=f"expire:{NET}:{record.step}", referral_id=NET, step=record.step
    )


def test_an_accepted_referral_silent_past_the_idle_expiry_expires() -> None:
    record = accepted()
    assert record.next_due(LIMITS) == T0 + timedelta(hours=1) + LIMITS.idle_expiry
    decision = decide(record, expire(record), lctx(timedelta(days=31)))
    assert clinic_view(decision) == [("failed", "expired", "no-recent-update")]
    withdrawn = [ev(o) for o in decision.outputs if o.label == "referral.withdrawn"]
    assert [w.reason for w in withdrawn] == ["expired"]
    labels = [o.label for o in decision.outputs]
    assert "command.closed" in labels  # the patient's category is freed


def test_an_update_restarts_the_idle_clock_and_a_stale_expiry_does_nothing() -> None:
    record = accepted()
    busy = step(record, org_says(ES_ORG, "in-progress", event=11), lctx(timedelta(days=20)))
    assert busy.next_due(LIMITS) == T0 + timedelta(days=20) + LIMITS.idle_expiry
    assert decide(busy, expire(record), lctx(timedelta(days=31))) == ReferralDecision(None, [])


# ---------------------------------------------------------------- attempts
def test_attempts_are_capped() -> None:
    record = decide(None, open_command(), lctx(limits=Limits(max_attempts=1))).record
    assert record is not None
    decision = decide(record, timeout(1), lctx(timedelta(days=2), limits=Limits(max_attempts=1)))
    assert "referral.offered" not in [o.label for o in decision.outputs]
    assert clinic_view(decision)[-1] == ("failed", "unmatched", "attempts-exhausted")


# ---------------------------------------------------------------- retention
def test_a_closed_referral_is_purged_after_retention_and_its_patient_forgets_it() -> None:
    record = step(accepted(), org_says(ES_ORG, "completed", event=12, outcome="enrolled"), lctx())
    assert record.closed_at == T0
    assert record.next_due(LIMITS) == T0 + LIMITS.retention
    purge = PurgeReferral(command_id=f"purge:{NET}", referral_id=NET)
    assert decide(record, purge, lctx(timedelta(days=6))) == ReferralDecision(None, [])
    decision = decide(record, purge, lctx(timedelta(days=8)))
    assert decision.delete and decision.record is None
    [forget] = decision.outputs
    command = PATIENT_COMMAND.validate_json(forget.value)
    assert isinstance(command, ForgetReferral) and command.referral_id == "ref-1"


def test_an_open_referral_is_never_purged() -> None:
    record = opened(lctx())
    purge = PurgeReferral(command_id=f"purge:{NET}", referral_id=NET)
    assert decide(record, purge, lctx(timedelta(days=400))) == ReferralDecision(None, [])


def test_refused_commands_never_grow_the_record_and_seen_is_bounded() -> None:
    record = opened(lctx())
    for n in range(200):
        assert decide(record, org_says(EN_ORG, "accepted", event=1000 + n), lctx()).record is None
    moving = accepted()
    for n in range(200):
        value = "on-hold" if n % 2 == 0 else "in-progress"
        moving = step(moving, org_says(ES_ORG, value, event=2000 + n), lctx())
    assert len(moving.seen) <= 64


# ---------------------------------------------------------------- the error boundary
def test_a_failed_command_on_an_open_referral_ends_it_and_tells_everyone() -> None:
    record = opened(lctx())
    decision = fail(record, org_says(ES_ORG, "accepted"), lctx(), "OverflowError")
    assert decision.dead_letter == "internal"
    letter = ev(decision.outputs[0])
    assert letter.error.kind == "internal"
    assert "OverflowError" in letter.error.message
    labels = [o.label for o in decision.outputs]
    assert labels.count("referral.withdrawn") == 1
    assert clinic_view(decision) == [("failed", "network-error", "internal-error")]
    assert "command.closed" in labels


def test_a_failed_open_tells_the_clinic_and_frees_the_category() -> None:
    decision = fail(None, open_command(), lctx(), "ValueError")
    assert clinic_view(decision) == [("failed", "network-error", "internal-error")]
    assert "referral.offered" not in [o.label for o in decision.outputs]
    assert "command.closed" in [o.label for o in decision.outputs]


def test_a_failed_open_is_stored_with_its_commands_partition() -> None:
    decision = fail(None, open_command(), lctx(), "ValueError", partition=4)
    assert decision.record is not None
    assert decision.record.partition == 4


def test_a_failed_command_on_a_closed_referral_is_only_dead_lettered() -> None:
    closed = step(accepted(), org_says(ES_ORG, "completed", event=12, outcome="ok"), lctx())
    decision = fail(closed, org_says(ES_ORG, "accepted", event=13), lctx(), "KeyError")
    assert [o.label for o in decision.outputs] == ["deadletter"]
    assert decision.record is None


def test_the_stored_record_gives_the_same_deadline_as_the_model() -> None:
    from streams.decisions.referrals import next_due_of_stored

    offered = opened(lctx())
    active = accepted()
    closed = step(active, org_says(ES_ORG, "completed", event=12, outcome="ok"), lctx())
    for record in (offered, active, closed):
        stored = record.model_dump(mode="json") | {"outbox": {"command_id": "x", "messages": []}}
        partition, referral_id, due = next_due_of_stored(stored, LIMITS)
        assert (partition, referral_id, due) == (
            record.partition,
            record.referral_id,
            record.next_due(LIMITS),
        )
