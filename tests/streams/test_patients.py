"""The patient owner, without a broker: scoring, consent, duplicates, cancels, replays."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codes import Category
from schemas.events import (
    DeadLetter,
    Patient,
    ReferralStateChanged,
    ReferralUpdated,
    ScoringProblem,
    ScreeningScored,
    from_bytes,
    to_bytes,
)
from streams.decisions.commands import (
    PATIENT_COMMAND,
    REFERRAL_COMMAND,
    CancelReferral,
    OpenReferral,
    ReferralClosed,
    SubmissionReceived,
    derived_id,
    network_referral_id,
)
from streams.decisions.outputs import Outgoing
from streams.decisions.patients import (
    SEEN_LIMIT,
    PatientDecision,
    PatientRecord,
    decide,
    screening_referral_id,
)
from tests.streams.fixtures import (
    CLINIC,
    FOOD_ONLY,
    NO_NEED,
    OTHER_CLINIC,
    PATIENT_ID,
    T0,
    TOPICS,
    assert_refers_to,
    cancelled,
    consent,
    eid,
    requested,
    screening,
    source,
)

FOOD = Category.FOOD_INSECURITY
TRANSPORT = Category.TRANSPORTATION_INSECURITY
SUBMISSIONS = TOPICS.clinic_submissions(CLINIC)
UPDATES = TOPICS.clinic_updates(CLINIC)
EVENTS = TOPICS.referral_events


def net(referral_id: str, clinic: str = CLINIC) -> str:
    """The network's id of a clinic's referral: what the referral owner and the log see."""
    return network_referral_id(clinic, referral_id)


def submit(event: Any, *, clinic: str = CLINIC, offset: int = 7) -> SubmissionReceived:
    return SubmissionReceived(
        command_id=str(event.event_id),
        clinic_id=clinic,
        source=source(TOPICS.clinic_submissions(clinic), PATIENT_ID, offset=offset),
        event=event,
    )


def run(record: PatientRecord | None, command: Any) -> PatientDecision:
    return decide(record, command, topics=TOPICS)


def opened(out: Outgoing) -> OpenReferral:
    command = REFERRAL_COMMAND.validate_json(out.value)
    assert isinstance(command, OpenReferral)
    return command


def event_of(out: Outgoing) -> Any:
    return from_bytes(out.value)


def where(decision: PatientDecision) -> list[tuple[str, str, str]]:
    """The decision's outputs, but the answers to the party (tested on their own)."""
    return [
        (o.label, o.topic, o.key) for o in decision.outputs if o.label.split(":")[0] not in ANSWERS
    ]


def output_labels(decision: Any) -> list[str]:
    """The labels of the decision's outputs, but the answers to the party."""
    return [o.label for o in decision.outputs if o.label.split(":")[0] not in ANSWERS]


#: The answers a party hears of its own messages (``message.refused``, ``screening.answered``).
ANSWERS = frozenset({"message.refused", "screening.answered"})


# ---------------------------------------------------------------- screenings
def test_screening_with_two_needs_scores_it_and_opens_one_referral_per_need() -> None:
    decision = run(None, submit(screening("scr-1")))
    assert where(decision) == [
        ("screening.scored", "sdoh.screenings.v1", PATIENT_ID),
        ("command.open", "sdoh.network.referrals.v1", "mott-haven:scr-1.food-insecurity"),
        (
            "command.open",
            "sdoh.network.referrals.v1",
            "mott-haven:scr-1.transportation-insecurity",
        ),
    ]
    assert decision.record == PatientRecord(
        open={FOOD: "scr-1.food-insecurity", TRANSPORT: "scr-1.transportation-insecurity"},
        referrals={"scr-1.food-insecurity": FOOD, "scr-1.transportation-insecurity": TRANSPORT},
        seen=[str(eid(1))],
    )


def test_scored_screening_names_the_patient_by_id_only() -> None:
    decision = run(None, submit(screening("scr-1")))
    out = decision.outputs[0]
    scored = event_of(out)
    assert isinstance(scored, ScreeningScored)
    assert scored.event_id == derived_id(eid(1), "scored")
    assert scored.occurred_at == T0
    assert (scored.screening_id, scored.patient_id, scored.clinic_id) == (
        "scr-1",
        PATIENT_ID,
        CLINIC,
    )
    assert [(n.category, n.rule) for n in scored.needs] == [
        (FOOD, "ahc.food.either-item"),
        (TRANSPORT, "ahc.transportation.yes"),
    ]
    assert scored.consented_categories == [FOOD, TRANSPORT]
    assert [(a.question, a.answer) for a in scored.answers] == [
        ("88122-7", "LA28397-0"),
        ("88123-5", "LA28398-8"),
        ("93030-5", "LA33-6"),
    ]
    for secret in (b"Ana", b"Rivera", b"+17185550100", b"1984-03-02", b"given_name", b"phone"):
        assert secret not in out.value


def test_open_referral_command_carries_the_patient_consent_and_cause() -> None:
    event = screening("scr-1", answers=FOOD_ONLY)
    decision = run(None, submit(event))
    command = opened(decision.outputs[1])
    assert command == OpenReferral(
        command_id="open:mott-haven:scr-1.food-insecurity",
        referral_id="mott-haven:scr-1.food-insecurity",
        clinic_referral_id="scr-1.food-insecurity",
        clinic_id=CLINIC,
        patient=event.patient,
        consent=event.consent,
        category=FOOD,
        screening_id="scr-1",
        requested_service_id=None,
        note=None,
        cause_event_id=eid(1),
        requested_at=T0,
    )
    assert command.priority == "routine"


def test_two_clinics_using_the_same_screening_id_open_referrals_with_different_ids() -> None:
    """Clinics choose screening ids: the network scopes the referral it opens by clinic."""
    ours = run(None, submit(screening("scr-1", answers=FOOD_ONLY)))
    theirs = run(None, submit(screening("scr-1", answers=FOOD_ONLY), clinic=OTHER_CLINIC))
    assert where(ours)[1:] == [
        ("command.open", "sdoh.network.referrals.v1", "mott-haven:scr-1.food-insecurity")
    ]
    assert where(theirs)[1:] == [
        ("command.open", "sdoh.network.referrals.v1", "hunts-point:scr-1.food-insecurity")
    ]
    mine, other = opened(ours.outputs[1]), opened(theirs.outputs[1])
    assert (mine.command_id, mine.referral_id, mine.clinic_referral_id, mine.clinic_id) == (
        "open:mott-haven:scr-1.food-insecurity",
        net("scr-1.food-insecurity"),
        "scr-1.food-insecurity",
        CLINIC,
    )
    assert (other.command_id, other.referral_id, other.clinic_referral_id, other.clinic_id) == (
        "open:hunts-point:scr-1.food-insecurity",
        net("scr-1.food-insecurity", OTHER_CLINIC),
        "scr-1.food-insecurity",
        OTHER_CLINIC,
    )
    assert mine.referral_id != other.referral_id
    assert mine.command_id != other.command_id
    # each clinic's patient record keeps the clinic's own id
    assert ours.record is not None and theirs.record is not None
    assert ours.record.open == theirs.record.open == {FOOD: "scr-1.food-insecurity"}


def test_scoring_problems_are_carried_in_the_scored_screening() -> None:
    answers = [*FOOD_ONLY, {"question": "99999-9", "answer": "LA1-1"}]
    decision = run(None, submit(screening("scr-1", answers=answers)))
    scored = event_of(decision.outputs[0])
    assert isinstance(scored, ScreeningScored)
    assert scored.problems[0] == ScoringProblem(
        kind="unknown-question",
        question="99999-9",
        detail="ahc-hrsn does not ask '99999-9'; ignored",
    )
    missing = [p.question for p in scored.problems if p.kind == "missing"]
    assert "71802-3" in missing
    assert "88122-7" not in missing
    assert {p.kind for p in scored.problems} == {"unknown-question", "missing"}


def test_screening_without_needs_only_publishes_the_scored_screening() -> None:
    decision = run(None, submit(screening("scr-1", answers=NO_NEED)))
    assert output_labels(decision) == ["screening.scored"]
    scored = event_of(decision.outputs[0])
    assert scored.needs == [] and scored.consented_categories == []
    assert decision.record == PatientRecord(seen=[str(eid(1))])


# ---------------------------------------------------------------- consent
def _consent_required(decision: PatientDecision, category: Category) -> None:
    referral_id = f"scr-1.{category.value}"
    network_id = f"{CLINIC}:{referral_id}"
    mine = [o for o in decision.outputs if o.key in (referral_id, network_id)]
    assert [(o.label, o.topic, o.key) for o in mine] == [
        ("referral.updated", UPDATES, referral_id),
        ("referral.state-changed", EVENTS, network_id),
    ]
    update, changed = (event_of(o) for o in mine)
    assert update == ReferralUpdated(
        event_id=derived_id(network_id, str(eid(1)), "updated"),
        occurred_at=T0,
        referral_id=referral_id,
        patient_id=PATIENT_ID,
        category=category,
        screening_id="scr-1",
        status="failed",
        business_status="consent-required",
        reason="consent-not-granted",
        attempt=0,
    )
    assert changed == ReferralStateChanged(
        event_id=derived_id(network_id, str(eid(1)), "state"),
        occurred_at=T0,
        referral_id=network_id,
        clinic_referral_id=referral_id,
        patient_id=PATIENT_ID,
        clinic_id=CLINIC,
        category=category,
        screening_id="scr-1",
        from_status="draft",
        to_status="failed",
        business_status="consent-required",
        reason="consent-not-granted",
        attempt=0,
        actor="network",
        cause_event_id=eid(1),
        preferred_language="es",
        postal_code="10451",
    )


def test_consent_not_granted_tells_the_clinic_consent_is_required_and_opens_nothing() -> None:
    decision = run(None, submit(screening("scr-1", consent_fields=consent(granted=False))))
    assert output_labels(decision) == [
        "screening.scored",
        "referral.updated",
        "referral.state-changed",
        "referral.updated",
        "referral.state-changed",
    ]
    _consent_required(decision, FOOD)
    _consent_required(decision, TRANSPORT)
    assert event_of(decision.outputs[0]).consented_categories == []
    assert decision.record == PatientRecord(seen=[str(eid(1))])


def test_category_outside_consent_is_consent_required_while_consented_one_opens() -> None:
    decision = run(None, submit(screening("scr-1", consent_fields=consent(["food-insecurity"]))))
    assert output_labels(decision) == [
        "screening.scored",
        "command.open",
        "referral.updated",
        "referral.state-changed",
    ]
    assert opened(decision.outputs[1]).category == FOOD
    _consent_required(decision, TRANSPORT)
    assert event_of(decision.outputs[0]).consented_categories == [FOOD]
    assert decision.record is not None
    assert decision.record.open == {FOOD: "scr-1.food-insecurity"}


def test_consent_expired_when_screened_is_consent_required() -> None:
    expired = consent(expires_at=T0.isoformat())  # expires at the very moment: not covered
    decision = run(None, submit(screening("scr-1", answers=FOOD_ONLY, consent_fields=expired)))
    assert output_labels(decision) == [
        "screening.scored",
        "referral.updated",
        "referral.state-changed",
    ]
    _consent_required(decision, FOOD)


def test_consent_expiring_after_the_screening_still_covers_it() -> None:
    later = consent(expires_at=(T0 + timedelta(seconds=1)).isoformat())
    decision = run(None, submit(screening("scr-1", answers=FOOD_ONLY, consent_fields=later)))
    assert output_labels(decision) == ["screening.scored", "command.open"]


def test_a_screenings_referral_updates_are_dated_by_its_receipt_and_consent_judged_then() -> None:
    received = T0 + timedelta(minutes=3)
    later = consent(expires_at=(T0 + timedelta(minutes=1)).isoformat())
    command = submit(screening("scr-1", consent_fields=later)).model_copy(
        update={"received_at": received}
    )
    decision = run(None, command)
    scored = event_of(decision.outputs[0])
    assert isinstance(scored, ScreeningScored)
    assert scored.occurred_at == T0  # the screening's own date, a clinical fact
    # consent that ended before the network took the screening covers nothing
    assert scored.consented_categories == []
    updated = event_of(decision.outputs[1])
    assert isinstance(updated, ReferralUpdated)
    assert (updated.occurred_at, updated.reported_at) == (received, T0)


def test_an_open_is_requested_at_the_networks_receipt() -> None:
    received = T0 + timedelta(seconds=30)
    command = submit(screening("scr-1", answers=FOOD_ONLY)).model_copy(
        update={"received_at": received}
    )
    decision = run(None, command)
    assert opened(decision.outputs[1]).requested_at == received


# ---------------------------------------------------------------- duplicates
def test_need_with_an_open_referral_is_reported_as_duplicate_of_it() -> None:
    record = PatientRecord(open={FOOD: "ref-old"}, referrals={"ref-old": FOOD})
    decision = run(record, submit(screening("scr-2")))
    assert where(decision) == [
        ("screening.scored", "sdoh.screenings.v1", PATIENT_ID),
        ("referral.updated", UPDATES, "scr-2.food-insecurity"),
        ("referral.state-changed", "sdoh.referrals.events.v1", "mott-haven:scr-2.food-insecurity"),
        (
            "command.open",
            "sdoh.network.referrals.v1",
            "mott-haven:scr-2.transportation-insecurity",
        ),
    ]
    update = event_of(decision.outputs[1])
    assert (update.status, update.business_status, update.reason, update.duplicate_of) == (
        "cancelled",
        "duplicate",
        "duplicate-open-referral",
        "ref-old",
    )
    assert update.attempt == 0
    changed = event_of(decision.outputs[2])
    assert (changed.from_status, changed.to_status, changed.actor) == (
        "draft",
        "cancelled",
        "network",
    )
    assert (changed.referral_id, changed.clinic_referral_id) == (
        "mott-haven:scr-2.food-insecurity",
        "scr-2.food-insecurity",
    )
    assert changed.event_id == derived_id("mott-haven:scr-2.food-insecurity", str(eid(1)), "state")
    assert decision.record is not None
    assert decision.record.open == {FOOD: "ref-old", TRANSPORT: "scr-2.transportation-insecurity"}
    assert "scr-2.food-insecurity" not in decision.record.referrals


def test_requested_referral_in_an_open_category_is_a_duplicate() -> None:
    record = PatientRecord(open={FOOD: "scr-1.food-insecurity"})
    decision = run(record, submit(requested("ref-clinic-42")))
    assert output_labels(decision) == ["referral.updated", "referral.state-changed"]
    update = event_of(decision.outputs[0])
    assert update.referral_id == "ref-clinic-42"
    assert update.screening_id is None
    assert update.duplicate_of == "scr-1.food-insecurity"


def test_closed_referral_frees_its_category_for_the_next_need() -> None:
    record = run(None, submit(screening("scr-1", answers=FOOD_ONLY))).record
    closed = run(
        record,
        ReferralClosed(command_id="closed:x", referral_id="scr-1.food-insecurity", category=FOOD),
    )
    assert closed.outputs == []
    assert closed.record is not None
    assert closed.record.open == {}
    assert closed.record.referrals == {"scr-1.food-insecurity": FOOD}
    again = run(closed.record, submit(screening("scr-2", event=5, answers=FOOD_ONLY)))
    assert output_labels(again) == ["screening.scored", "command.open"]
    assert again.record is not None
    assert again.record.open == {FOOD: "scr-2.food-insecurity"}


def test_closing_another_referral_of_the_category_keeps_the_open_one() -> None:
    record = PatientRecord(open={FOOD: "scr-2.food-insecurity"})
    decision = run(
        record,
        ReferralClosed(command_id="closed:y", referral_id="scr-1.food-insecurity", category=FOOD),
    )
    assert decision.outputs == []
    assert decision.record == PatientRecord(open={FOOD: "scr-2.food-insecurity"}, seen=["closed:y"])


def test_resubmitted_screening_does_not_cancel_its_own_open_referral() -> None:
    """A clinic re-sends screening scr-1 (new event id) while its food referral is open.

    The referral must not be reported to the clinic as cancelled, a duplicate of itself.
    """
    first = run(None, submit(screening("scr-1", answers=FOOD_ONLY)))
    again = run(first.record, submit(screening("scr-1", event=9, answers=FOOD_ONLY)))
    assert output_labels(again) == ["screening.scored"]
    assert again.record is not None
    assert again.record.open == {FOOD: "scr-1.food-insecurity"}


def test_resubmitted_screening_after_its_referral_closed_does_not_block_the_category() -> None:
    """The referral owner ignores a second open of scr-1.food-insecurity (it exists, closed),
    so the patient owner must not mark the category open again: no ReferralClosed would ever
    free it, and every later food need would be a duplicate."""
    first = run(None, submit(screening("scr-1", answers=FOOD_ONLY)))
    closed = run(
        first.record,
        ReferralClosed(command_id="closed:a", referral_id="scr-1.food-insecurity", category=FOOD),
    )
    again = run(closed.record, submit(screening("scr-1", event=9, answers=FOOD_ONLY)))
    assert output_labels(again) == ["screening.scored"]
    assert again.record is not None
    assert again.record.open == {}
    later = run(again.record, submit(screening("scr-3", event=11, answers=FOOD_ONLY)))
    assert output_labels(later) == ["screening.scored", "command.open"]


def test_screening_first_refused_for_consent_opens_when_resubmitted_with_consent() -> None:
    refused = run(
        None,
        submit(screening("scr-1", answers=FOOD_ONLY, consent_fields=consent(granted=False))),
    )
    again = run(refused.record, submit(screening("scr-1", event=9, answers=FOOD_ONLY)))
    assert [(o.label, o.key) for o in again.outputs if o.label.split(":")[0] not in ANSWERS] == [
        ("screening.scored", PATIENT_ID),
        ("command.open", "mott-haven:scr-1.food-insecurity"),
    ]


# ---------------------------------------------------------------- direct referrals
def test_requested_referral_opens_with_the_clinicians_choices() -> None:
    event = requested("ref-clinic-42", service_id="svc-a", priority="urgent", note="call after 5")
    decision = run(None, submit(event))
    assert where(decision) == [
        ("command.open", "sdoh.network.referrals.v1", "mott-haven:ref-clinic-42")
    ]
    command = opened(decision.outputs[0])
    assert command.command_id == "open:mott-haven:ref-clinic-42"
    assert (command.referral_id, command.clinic_referral_id, command.clinic_id) == (
        "mott-haven:ref-clinic-42",
        "ref-clinic-42",
        CLINIC,
    )
    assert (command.requested_service_id, command.priority, command.note) == (
        "svc-a",
        "urgent",
        "call after 5",
    )
    assert command.screening_id is None
    assert command.patient == Patient.model_validate(event.patient.model_dump())
    assert decision.record == PatientRecord(
        open={FOOD: "ref-clinic-42"}, referrals={"ref-clinic-42": FOOD}, seen=[str(eid(2))]
    )


def test_requested_referral_without_consent_for_its_category_is_consent_required() -> None:
    event = requested("ref-clinic-42", consent_fields=consent(["housing-instability"]))
    decision = run(None, submit(event))
    assert output_labels(decision) == ["referral.updated", "referral.state-changed"]
    update = event_of(decision.outputs[0])
    assert (update.referral_id, update.status, update.business_status) == (
        "ref-clinic-42",
        "failed",
        "consent-required",
    )


def test_requested_referral_reusing_a_referral_id_goes_to_the_dead_letter_topic() -> None:
    record = PatientRecord(referrals={"ref-clinic-42": FOOD})
    event = requested("ref-clinic-42", event=4, category="housing-instability")
    decision = run(record, submit(event, offset=12))
    assert where(decision) == [("deadletter", "sdoh.deadletter.v1", PATIENT_ID)]
    letter = event_of(decision.outputs[0])
    assert isinstance(letter, DeadLetter)
    assert letter.error.kind == "validation"
    assert letter.error.message == "referral_id was already used for this patient"
    assert (letter.source.topic, letter.source.offset, letter.source.key) == (
        SUBMISSIONS,
        12,
        PATIENT_ID,
    )
    assert_refers_to(letter, to_bytes(event))
    assert letter.occurred_at == T0
    assert decision.record == PatientRecord(referrals={"ref-clinic-42": FOOD}, seen=[str(eid(4))])


# ---------------------------------------------------------------- cancels
def test_cancel_of_an_unknown_referral_goes_to_the_dead_letter_topic() -> None:
    event = cancelled("ref-nope")
    decision = run(PatientRecord(), submit(event))
    assert where(decision) == [("deadletter", "sdoh.deadletter.v1", PATIENT_ID)]
    letter = event_of(decision.outputs[0])
    assert letter.error.kind == "unknown-referral"
    assert_refers_to(letter, to_bytes(event))
    assert decision.record == PatientRecord(seen=[str(eid(3))])


def test_cancel_of_a_known_referral_asks_its_owner_to_cancel_it() -> None:
    record = PatientRecord(open={FOOD: "ref-clinic-42"}, referrals={"ref-clinic-42": FOOD})
    decision = run(record, submit(cancelled("ref-clinic-42"), offset=3))
    assert where(decision) == [
        ("command.cancel", "sdoh.network.referrals.v1", "mott-haven:ref-clinic-42")
    ]
    command = REFERRAL_COMMAND.validate_json(decision.outputs[0].value)
    assert command == CancelReferral(
        command_id=f"cancel:{eid(3)}",
        referral_id="mott-haven:ref-clinic-42",
        clinic_id=CLINIC,
        reason="patient-moved",
        cause_event_id=eid(3),
        source=source(SUBMISSIONS, PATIENT_ID, offset=3),
    )
    # the category stays open until the referral owner says the referral closed
    assert decision.record is not None
    assert decision.record.open == {FOOD: "ref-clinic-42"}


# ---------------------------------------------------------------- idempotence
def test_command_seen_before_has_no_effect() -> None:
    command = submit(screening("scr-1"))
    first = run(None, command)
    assert run(first.record, command) == PatientDecision(None, [])
    closed = ReferralClosed(
        command_id="closed:z", referral_id="scr-1.food-insecurity", category=FOOD
    )
    after = run(first.record, closed)
    assert run(after.record, closed) == PatientDecision(None, [])


def test_replaying_a_command_on_the_same_record_yields_identical_bytes() -> None:
    record = PatientRecord(open={FOOD: "ref-old"}, referrals={"ref-old": FOOD})
    for event in (
        screening("scr-1"),
        screening("scr-1", consent_fields=consent(granted=False)),
        requested("ref-old"),
        cancelled("ref-old"),
        cancelled("ref-unknown"),
    ):
        one = run(record, submit(event))
        two = run(record.model_copy(deep=True), submit(event))
        assert one.outputs == two.outputs
        assert one.outputs


def test_decide_does_not_change_the_record_it_was_given() -> None:
    record = PatientRecord(open={FOOD: "ref-old"}, referrals={"ref-old": FOOD}, seen=["a"])
    before = record.model_dump()
    run(record, submit(screening("scr-1")))
    run(record, ReferralClosed(command_id="c", referral_id="ref-old", category=FOOD))
    assert record.model_dump() == before


def test_seen_ids_are_bounded_keeping_the_newest() -> None:
    record = PatientRecord(seen=[f"id-{n}" for n in range(SEEN_LIMIT)])
    decision = run(record, ReferralClosed(command_id="newest", referral_id="r", category=FOOD))
    assert decision.record is not None
    assert len(decision.record.seen) == SEEN_LIMIT
    assert decision.record.seen[0] == "id-1"
    assert decision.record.seen[-1] == "newest"


def test_commands_round_trip_through_the_patients_topic_encoding() -> None:
    for command in (
        submit(screening("scr-1")),
        submit(requested()),
        submit(cancelled("r")),
        ReferralClosed(command_id="closed:r", referral_id="r", category=FOOD),
    ):
        assert PATIENT_COMMAND.validate_json(command.model_dump_json()) == command


# ---------------------------------------------------------------- every combination
_NEEDS = [FOOD, TRANSPORT]


@settings(max_examples=60, deadline=None)
@given(
    granted=st.booleans(),
    consented=st.none() | st.sets(st.sampled_from(_NEEDS)),
    already_open=st.sets(st.sampled_from(_NEEDS)),
)
def test_every_need_gets_exactly_one_outcome(
    granted: bool, consented: set[Category] | None, already_open: set[Category]
) -> None:
    record = PatientRecord(
        open={c: f"old.{c.value}" for c in already_open},
        referrals={f"old.{c.value}": c for c in already_open},
    )
    categories = None if consented is None else sorted(c.value for c in consented)
    event = screening("scr-1", consent_fields=consent(categories, granted=granted))
    decision = run(record, submit(event))
    assert decision.record is not None
    for category in _NEEDS:
        referral_id = screening_referral_id("scr-1", category)
        network_id = net(referral_id)
        mine = [o for o in decision.outputs if o.key in (referral_id, network_id)]
        covered = granted and (consented is None or category in consented)
        if not covered:
            expected = [
                ("referral.updated", referral_id),
                ("referral.state-changed", network_id),
            ]
            business = "consent-required"
        elif category in already_open:
            expected = [
                ("referral.updated", referral_id),
                ("referral.state-changed", network_id),
            ]
            business = "duplicate"
        else:
            expected = [("command.open", network_id)]
            business = None
        assert [(o.label, o.key) for o in mine] == expected
        if business is not None:
            assert json.loads(mine[0].value)["business_status"] == business
            assert decision.record.open.get(category) == (
                f"old.{category.value}" if category in already_open else None
            )
        else:
            assert decision.record.open[category] == referral_id
    # never two open referrals per category: the record maps each category to one id
    assert set(decision.record.open) == already_open | {
        c for c in _NEEDS if granted and (consented is None or c in consented)
    }


# ---------------------------------------------------------------- the clinic's answers
def answered(decision: PatientDecision) -> Any:
    [out] = [o for o in decision.outputs if o.label == "screening.answered"]
    assert (out.topic, out.key) == (TOPICS.clinic_updates(CLINIC), "scr-1")
    return from_bytes(out.value)


def test_a_screening_with_only_an_unknown_answer_is_answered_with_its_problem() -> None:
    unknown = [{"question": "96779-4", "answer": "LA9999-9"}]
    decision = run(None, submit(screening("scr-1", answers=unknown)))
    answer = answered(decision)
    assert answer.needs == [] and answer.referrals == []
    assert ("unknown-answer", "96779-4") in [(p.kind, p.question) for p in answer.problems]
    assert answer.cause_event_id == eid(1)
    [out] = [o for o in decision.outputs if o.label == "screening.answered"]
    assert b"LA9999-9" not in out.value  # never an answer value


def test_a_screening_is_answered_with_its_needs_and_the_referrals_it_opened() -> None:
    first = run(None, submit(screening("scr-0", answers=FOOD_ONLY)))
    decision = run(first.record, submit(screening("scr-1", event=2)))
    answer = answered(decision)
    assert sorted(n.category for n in answer.needs) == [
        "food-insecurity",
        "transportation-insecurity",
    ]
    assert sorted((r.referral_id, r.outcome) for r in answer.referrals) == [
        ("scr-1.food-insecurity", "duplicate"),
        ("scr-1.transportation-insecurity", "opened"),
    ]


def test_a_screening_outside_consent_is_answered_consent_required() -> None:
    decision = run(
        None, submit(screening("scr-1", answers=FOOD_ONLY, consent_fields=consent(granted=False)))
    )
    [referral] = answered(decision).referrals
    assert referral.outcome == "consent-required"


def test_a_refused_submission_is_answered_on_the_clinics_updates_topic() -> None:
    decision = run(None, submit(cancelled("ref-404")))
    [out] = [o for o in decision.outputs if o.label.startswith("message.refused:")]
    refused = from_bytes(out.value)
    assert out.topic == TOPICS.clinic_updates(CLINIC)
    assert refused.error.kind == "unknown-referral"
    assert refused.referral_id == "ref-404"
    assert refused.refused_event_type == "referral.cancelled"
