"""The referral owner, without a broker: offers, answers, re-routes, time-outs, cancels."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codes import Category, TaskStatus
from schemas.events import (
    DeadLetter,
    OfferedPatient,
    ReferralOffered,
    ReferralStateChanged,
    ReferralUpdated,
    ReferralWithdrawn,
    from_bytes,
    to_bytes,
)
from streams.decisions.commands import (
    MAX_ID_LENGTH,
    PATIENT_COMMAND,
    CancelReferral,
    OfferTimeout,
    OpenReferral,
    OrganizationStatus,
    ReferralClosed,
    derived_id,
    network_referral_id,
)
from streams.decisions.matching import OrgRecord
from streams.decisions.outputs import Outgoing
from streams.decisions.referrals import Context, Offer, ReferralDecision, ReferralRecord, decide
from tests.streams.fixtures import (
    CLINIC,
    OTHER_CLINIC,
    PATIENT_ID,
    T0,
    TOPICS,
    assert_refers_to,
    consent,
    eid,
    patient,
    service,
    source,
    status,
)

#: The clinic's own id of the referral; the clinic's updates and the patient owner use it.
REF = "ref-1"
#: The network's id of it: organizations, the event log, commands and timers use it.
NET = network_referral_id(CLINIC, REF)
ES_ORG, EN_ORG = "harlem-food", "bronx-pantry"
#: The patient speaks Spanish: svc-es ranks first, svc-en second.
SVC_ES = service("svc-es", ES_ORG, languages=("es",), available=5, response_sla=None)
SVC_EN = service("svc-en", EN_ORG, languages=("en",), available=10, response_sla="PT4H")
DIRECTORY = (SVC_EN, SVC_ES)
UPDATES = TOPICS.clinic_updates(CLINIC)
EVENTS = TOPICS.referral_events
PATIENTS_KEY = f"{CLINIC}:{PATIENT_ID}"


def ctx(now_offset: timedelta = timedelta(0), **kw: Any) -> Context:
    kw.setdefault("directory", DIRECTORY)
    return Context(topics=TOPICS, now=T0 + now_offset, **kw)


def open_command(referral_id: str = REF, **kw: Any) -> OpenReferral:
    """The patient owner's open of the clinic's ``referral_id`` (as decisions.patients sends it)."""
    network_id = network_referral_id(CLINIC, referral_id)
    fields: dict[str, Any] = {
        "command_id": f"open:{network_id}",
        "referral_id": network_id,
        "clinic_referral_id": referral_id,
        "clinic_id": CLINIC,
        "patient": patient(),
        "consent": consent(),
        "category": "food-insecurity",
        "screening_id": "scr-1",
        "cause_event_id": eid(1),
        "requested_at": T0,
    }
    return OpenReferral.model_validate({**fields, **kw})


def org_says(
    org_id: str,
    value: str,
    *,
    event: int = 10,
    reason: str | None = None,
    outcome: str | None = None,
    referral_id: str = NET,
) -> OrganizationStatus:
    changed = status(referral_id, value, event=event, reason=reason, outcome=outcome)
    return OrganizationStatus(
        command_id=str(changed.event_id),
        org_id=org_id,
        event=changed,
        source=source(TOPICS.org_updates(org_id), referral_id, offset=event),
        raw_base64=base64.b64encode(to_bytes(changed)).decode("ascii"),
    )


def cancel(reason: str | None = "patient-moved", *, clinic: str = CLINIC) -> CancelReferral:
    return CancelReferral(
        command_id=f"cancel:{eid(3)}",
        referral_id=NET,
        clinic_id=clinic,
        reason=reason,
        cause_event_id=eid(3),
        source=source(TOPICS.clinic_submissions(clinic), PATIENT_ID),
    )


def timeout(attempt: int = 1) -> OfferTimeout:
    return OfferTimeout(command_id=f"timeout:{NET}:{attempt}", referral_id=NET, attempt=attempt)


def opened(context: Context | None = None) -> ReferralRecord:
    decision = decide(None, open_command(), context or ctx(), partition=3)
    assert decision.record is not None
    return decision.record


def step(record: ReferralRecord, command: Any, context: Context | None = None) -> ReferralRecord:
    decision = decide(record, command, context or ctx())
    assert decision.record is not None
    return decision.record


def where(decision: ReferralDecision) -> list[tuple[str, str, str]]:
    """The decision's outputs, but the answers to the party (tested on their own)."""
    return [
        (o.label, o.topic, o.key) for o in decision.outputs if o.label.split(":")[0] not in ANSWERS
    ]


def output_labels(decision: Any) -> list[str]:
    """The labels of the decision's outputs, but the answers to the party."""
    return [o.label for o in decision.outputs if o.label.split(":")[0] not in ANSWERS]


def others(decision: ReferralDecision) -> list[Outgoing]:
    """The decision's outputs, but the answers to the party."""
    return [o for o in decision.outputs if o.label.split(":")[0] not in ANSWERS]


#: The answers a party hears of its own messages (``message.refused``, ``screening.answered``).
ANSWERS = frozenset({"message.refused", "screening.answered", "referral.status-recorded"})


def ev(out: Outgoing) -> Any:
    return from_bytes(out.value)


def closed_command(out: Outgoing) -> ReferralClosed:
    command = PATIENT_COMMAND.validate_json(out.value)
    assert isinstance(command, ReferralClosed)
    return command


CLOSED = ("command.closed", TOPICS.network_patients, PATIENTS_KEY)


# ---------------------------------------------------------------- opening
def test_open_offers_the_best_service_and_tells_the_clinic() -> None:
    decision = decide(None, open_command(), ctx(), partition=3)
    assert where(decision) == [
        ("referral.offered", "sdoh.org.harlem-food.referrals.v1", NET),
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
    ]
    offered, update, changed = (ev(o) for o in decision.outputs)
    assert offered == ReferralOffered(
        event_id=derived_id(NET, "offered", 1),
        occurred_at=T0,
        referral_id=NET,
        service_id="svc-es",
        category="food-insecurity",
        priority="routine",
        respond_by=T0 + timedelta(hours=24),
        patient=OfferedPatient(
            given_name="Ana", phone="+17185550100", preferred_language="es", postal_code="10451"
        ),
        note=None,
        attempt=1,
    )
    assert update == ReferralUpdated(
        event_id=derived_id(NET, "updated", 1),
        occurred_at=T0,
        referral_id=REF,
        patient_id=PATIENT_ID,
        category="food-insecurity",
        screening_id="scr-1",
        status="requested",
        business_status="offered",
        org_id=ES_ORG,
        service_id="svc-es",
        attempt=1,
    )
    assert changed == ReferralStateChanged(
        event_id=derived_id(NET, "state", 1),
        occurred_at=T0,
        referral_id=NET,
        clinic_referral_id=REF,
        patient_id=PATIENT_ID,
        clinic_id=CLINIC,
        category="food-insecurity",
        screening_id="scr-1",
        from_status="draft",
        to_status="requested",
        business_status="offered",
        org_id=ES_ORG,
        service_id="svc-es",
        attempt=1,
        actor="network",
        cause_event_id=eid(1),
        preferred_language="es",
        postal_code="10451",
        disclosed_fields=["given_name", "phone", "postal_code", "preferred_language"],
        consent=consent(),
    )
    assert decision.dead_letter is None
    record = decision.record
    assert record is not None
    assert (record.referral_id, record.clinic_referral_id, record.clinic_id) == (NET, REF, CLINIC)
    assert (record.status, record.business_status, record.attempt, record.step) == (
        "requested",
        "offered",
        1,
        1,
    )
    assert record.offer == Offer(
        service_id="svc-es",
        org_id=ES_ORG,
        attempt=1,
        offered_at=T0,
        respond_by=T0 + timedelta(hours=24),
    )
    assert (record.tried, record.seen, record.partition) == (["svc-es"], [f"open:{NET}"], 3)


def test_offer_reveals_only_the_minimum_necessary_about_the_patient() -> None:
    offer = decide(None, open_command(note="evenings"), ctx()).outputs[0]
    assert offer.label == "referral.offered"
    for secret in (b"Rivera", b"1984-03-02", PATIENT_ID.encode(), b"consent", b"scr-1"):
        assert secret not in offer.value
    assert ev(offer).note == "evenings"


def test_respond_by_uses_the_services_own_response_sla() -> None:
    record = opened(ctx(directory=(SVC_EN,)))
    assert record.offer is not None
    assert record.offer.respond_by == T0 + timedelta(hours=4)


def test_respond_by_falls_back_to_the_networks_default_sla() -> None:
    record = opened(ctx(default_sla=timedelta(hours=72)))
    assert record.offer is not None
    assert record.offer.service_id == "svc-es"
    assert record.offer.respond_by == T0 + timedelta(hours=72)


def test_open_with_requested_service_and_priority_offers_that_service() -> None:
    command = open_command(requested_service_id="svc-en", priority="urgent")
    offer = ev(decide(None, command, ctx()).outputs[0])
    assert (offer.service_id, offer.priority) == ("svc-en", "urgent")


def test_ranking_consults_the_organizations_record_and_load() -> None:
    twin_a = service("svc-a", "org-a", languages=("es",), available=5)
    twin_b = service("svc-b", "org-b", languages=("es",), available=5)
    both = (twin_a, twin_b)
    assert opened(ctx(directory=both)).tried == ["svc-a"]
    assert opened(ctx(directory=both, load={"svc-a": 3})).tried == ["svc-b"]
    record = OrgRecord(answered_in_time=0, timed_out=4)
    assert opened(ctx(directory=both, org_stats={"org-a": record})).tried == ["svc-b"]


def test_open_with_no_candidate_fails_unmatched_and_frees_the_category() -> None:
    decision = decide(None, open_command(), ctx(directory=()))
    assert where(decision) == [
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
        CLOSED,
    ]
    update, changed = ev(decision.outputs[0]), ev(decision.outputs[1])
    assert (update.status, update.business_status, update.reason, update.attempt) == (
        "failed",
        "unmatched",
        "no-matching-service",
        0,
    )
    assert (update.org_id, update.service_id) == (None, None)
    assert (changed.from_status, changed.to_status, changed.actor) == ("draft", "failed", "network")
    assert closed_command(decision.outputs[2]) == ReferralClosed(
        command_id=f"closed:{NET}", referral_id=REF, category=Category.FOOD_INSECURITY
    )
    assert decision.record is not None
    assert decision.record.offer is None
    assert decision.record.pending_deadline() is None


def test_service_outside_the_patients_area_is_not_a_candidate() -> None:
    far = service("svc-far", "far-org", postal_codes=("90001",))
    decision = decide(None, open_command(), ctx(directory=(far,)))
    assert ev(decision.outputs[0]).business_status == "unmatched"


def test_network_referral_id_is_scoped_by_clinic_and_stays_within_the_id_limit() -> None:
    assert NET == "mott-haven:ref-1"
    assert network_referral_id(OTHER_CLINIC, REF) == "hunts-point:ref-1"
    # the longest referral id that still fits is kept readable
    fits = "r" * (MAX_ID_LENGTH - len(CLINIC) - 1)
    assert network_referral_id(CLINIC, fits) == f"{CLINIC}:{fits}"
    # one more character, or the longest id a clinic may send: a stable, derived id
    for long in (fits + "r", "r" * MAX_ID_LENGTH):
        mine = network_referral_id(CLINIC, long)
        assert mine.startswith(f"{CLINIC}:rrrr")
        assert len(mine) == MAX_ID_LENGTH
        assert network_referral_id(CLINIC, long) == mine
        theirs = network_referral_id(OTHER_CLINIC, long)
        assert theirs.startswith(f"{OTHER_CLINIC}:rrrr")
        assert len(theirs) <= MAX_ID_LENGTH
        assert theirs != mine
    assert network_referral_id(CLINIC, fits + "r") != network_referral_id(CLINIC, "r" * 128)
    # the longest clinic id a party may have still fits
    assert len(network_referral_id("c" * 63, "r" * MAX_ID_LENGTH)) <= MAX_ID_LENGTH
    # and the referral flows: organizations and the log see the network id, the clinic its own
    long = "r" * MAX_ID_LENGTH
    net = network_referral_id(CLINIC, long)
    decision = decide(None, open_command(long), ctx())
    assert where(decision) == [
        ("referral.offered", "sdoh.org.harlem-food.referrals.v1", net),
        ("referral.updated", UPDATES, long),
        ("referral.state-changed", EVENTS, net),
    ]
    offered, update, changed = (ev(o) for o in decision.outputs)
    assert (offered.event_id, offered.referral_id) == (derived_id(net, "offered", 1), net)
    assert (update.event_id, update.referral_id) == (derived_id(net, "updated", 1), long)
    assert (changed.event_id, changed.referral_id, changed.clinic_referral_id) == (
        derived_id(net, "state", 1),
        net,
        long,
    )


# ---------------------------------------------------------------- organization answers
def test_org_acceptance_is_mirrored_to_the_clinic() -> None:
    record = opened()
    decision = decide(record, org_says(ES_ORG, "accepted"), ctx(timedelta(hours=1)))
    assert where(decision) == [
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
    ]
    update, changed = (ev(o) for o in decision.outputs[:2])
    assert update == ReferralUpdated(
        event_id=derived_id(NET, "updated", 2),
        occurred_at=T0 + timedelta(hours=1),  # the network's time
        referral_id=REF,
        patient_id=PATIENT_ID,
        category="food-insecurity",
        screening_id="scr-1",
        status="accepted",
        business_status=None,
        org_id=ES_ORG,
        service_id="svc-es",
        attempt=1,
        reported_at=T0,  # the organization's own time, kept apart
    )
    assert (changed.from_status, changed.to_status, changed.actor, changed.cause_event_id) == (
        "requested",
        "accepted",
        "organization",
        eid(10),
    )
    new = decision.record
    assert new is not None
    assert new.offer is not None and new.offer.answered
    assert new.pending_deadline() is None
    assert new.seen == [f"open:{NET}", str(eid(10))]


def test_org_progress_and_completion_are_mirrored_and_completion_closes() -> None:
    record = step(opened(), org_says(ES_ORG, "accepted"))
    progress = decide(record, org_says(ES_ORG, "in-progress", event=11), ctx())
    assert [ev(o).status for o in progress.outputs[:1]] == ["in-progress"]
    assert len(output_labels(progress)) == 2
    assert progress.record is not None
    done = decide(
        progress.record, org_says(ES_ORG, "completed", event=12, outcome="enrolled"), ctx()
    )
    assert where(done) == [
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
        CLOSED,
    ]
    update = ev(done.outputs[0])
    assert (update.status, update.outcome, update.attempt) == ("completed", "enrolled", 1)
    assert done.record is not None and done.record.step == 4


def test_org_rejection_reroutes_to_the_next_service() -> None:
    record = opened()
    decision = decide(record, org_says(ES_ORG, "rejected", reason="no-capacity"), ctx())
    assert where(decision) == [
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
        ("referral.offered", "sdoh.org.bronx-pantry.referrals.v1", NET),
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
    ]
    rerouted, logged, offered, update, _ = (ev(o) for o in others(decision))
    assert (rerouted.status, rerouted.business_status, rerouted.reason) == (
        "requested",
        "re-routed",
        "no-capacity",
    )
    assert (rerouted.org_id, rerouted.attempt) == (ES_ORG, 1)
    # the log keeps the organization's own answer
    assert (logged.to_status, logged.actor) == ("rejected", "organization")
    assert offered.event_id == derived_id(NET, "offered", 2)
    assert (offered.service_id, offered.respond_by) == ("svc-en", T0 + timedelta(hours=4))
    assert (update.status, update.business_status, update.org_id, update.attempt) == (
        "requested",
        "offered",
        EN_ORG,
        2,
    )
    new = decision.record
    assert new is not None
    assert new.tried == ["svc-es", "svc-en"]
    assert new.offer is not None and (new.offer.org_id, new.offer.attempt) == (EN_ORG, 2)


def test_org_cancelling_before_accepting_reroutes_like_a_rejection() -> None:
    decision = decide(opened(), org_says(ES_ORG, "cancelled", reason="other"), ctx())
    assert output_labels(decision)[2] == "referral.offered"


def test_last_candidate_rejecting_fails_the_referral_unmatched() -> None:
    record = step(opened(), org_says(ES_ORG, "rejected", reason="no-capacity"))
    decision = decide(record, org_says(EN_ORG, "rejected", event=11, reason="not-eligible"), ctx())
    assert where(decision) == [
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
        CLOSED,
    ]
    final = ev(others(decision)[2])
    assert (final.status, final.business_status, final.reason, final.attempt) == (
        "failed",
        "unmatched",
        "no-matching-service",
        2,
    )
    assert decision.record is not None
    assert decision.record.tried == ["svc-es", "svc-en"]


def test_a_service_is_never_offered_the_same_referral_twice() -> None:
    only = ctx(directory=(SVC_ES,))
    record = opened(only)
    decision = decide(record, org_says(ES_ORG, "rejected", reason="no-capacity"), only)
    labels = output_labels(decision)
    assert "referral.offered" not in labels
    assert ev(others(decision)[2]).business_status == "unmatched"


def test_status_from_an_org_without_the_offer_is_an_authorization_dead_letter() -> None:
    record = opened()
    command = org_says(EN_ORG, "accepted")
    decision = decide(record, command, ctx(timedelta(minutes=5)))
    assert where(decision) == [("deadletter", "sdoh.deadletter.v1", NET)]
    assert decision.dead_letter == "authorization"
    letter = ev(decision.outputs[0])
    assert isinstance(letter, DeadLetter)
    assert letter.error.kind == "authorization"
    assert letter.source == command.source
    assert letter.occurred_at == T0 + timedelta(minutes=5)
    assert_refers_to(letter, to_bytes(command.event))
    assert decision.record is None  # unchanged, and the refused id is not remembered


def test_illegal_move_is_a_transition_dead_letter() -> None:
    record = opened()
    decision = decide(record, org_says(ES_ORG, "in-progress"), ctx())
    assert decision.dead_letter == "transition"
    assert output_labels(decision) == ["deadletter"]
    assert ev(decision.outputs[0]).error.kind == "transition"
    assert decision.record is None  # unchanged, and the refused id is not remembered


def test_status_after_the_referral_ended_is_a_transition_dead_letter() -> None:
    record = step(opened(), org_says(ES_ORG, "accepted"))
    record = step(record, org_says(ES_ORG, "completed", event=11, outcome="enrolled"))
    decision = decide(record, org_says(ES_ORG, "failed", event=12, reason="other"), ctx())
    assert decision.dead_letter == "transition"


def test_late_answer_from_the_previous_org_after_a_reroute_answers_a_withdrawn_offer() -> None:
    record = step(opened(), timeout(1), ctx(timedelta(hours=24)))
    decision = decide(record, org_says(ES_ORG, "accepted", event=15), ctx(timedelta(hours=25)))
    assert decision.dead_letter == "transition"  # it held the offer: not an authorization
    never = decide(record, org_says("elsewhere", "accepted", event=16), ctx(timedelta(hours=25)))
    assert never.dead_letter == "authorization"


@pytest.mark.parametrize(
    "command",
    [
        org_says(ES_ORG, "accepted"),
        cancel(),
    ],
    ids=["org-status", "cancel"],
)
def test_command_for_an_unknown_referral_is_an_unknown_referral_dead_letter(command: Any) -> None:
    decision = decide(None, command, ctx())
    assert decision.record is None
    assert decision.dead_letter == "unknown-referral"
    assert output_labels(decision) == ["deadletter"]
    letter = ev(decision.outputs[0])
    assert letter.error.kind == "unknown-referral"
    assert letter.source == command.source


def test_timeout_for_an_unknown_referral_does_nothing() -> None:
    assert decide(None, timeout(1), ctx()) == ReferralDecision(None, [])


# ---------------------------------------------------------------- time-outs
def test_timeout_before_respond_by_does_nothing() -> None:
    record = opened()
    due = timedelta(hours=24)
    assert decide(record, timeout(1), ctx(due - timedelta(seconds=1))) == ReferralDecision(None, [])


def test_due_timeout_withdraws_the_offer_and_offers_the_next_service() -> None:
    record = opened()
    now = timedelta(hours=24)
    decision = decide(record, timeout(1), ctx(now))
    assert where(decision) == [
        ("referral.withdrawn", "sdoh.org.harlem-food.referrals.v1", NET),
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
        ("referral.offered", "sdoh.org.bronx-pantry.referrals.v1", NET),
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
    ]
    withdrawn, rerouted, logged, offered, _, _ = (ev(o) for o in decision.outputs)
    assert withdrawn == ReferralWithdrawn(
        event_id=derived_id(NET, "withdrawn", 1),
        occurred_at=T0 + now,
        referral_id=NET,
        reason="timeout",
        attempt=1,
    )
    assert (rerouted.status, rerouted.business_status, rerouted.reason, rerouted.org_id) == (
        "requested",
        "re-routed",
        "timeout",
        ES_ORG,
    )
    assert (logged.actor, logged.reason, logged.org_id, logged.cause_event_id) == (
        "network",
        "timeout",
        ES_ORG,
        None,
    )
    assert (offered.service_id, offered.respond_by) == ("svc-en", T0 + now + timedelta(hours=4))
    new = decision.record
    assert new is not None
    assert new.pending_deadline() == T0 + now + timedelta(hours=4)
    assert new.seen[-1] == f"timeout:{NET}:1"


def test_timeout_of_the_last_candidate_fails_the_referral_unmatched() -> None:
    record = opened(ctx(directory=(SVC_ES,)))
    decision = decide(record, timeout(1), ctx(timedelta(days=2), directory=(SVC_ES,)))
    assert output_labels(decision) == [
        "referral.withdrawn",
        "referral.updated",
        "referral.state-changed",
        "referral.updated",
        "referral.state-changed",
        "command.closed",
    ]
    assert ev(decision.outputs[3]).business_status == "unmatched"


def test_stale_timeouts_do_nothing() -> None:
    late = ctx(timedelta(days=3))
    record = opened()
    assert decide(record, timeout(2), late) == ReferralDecision(None, [])
    accepted = step(record, org_says(ES_ORG, "accepted"))
    assert decide(accepted, timeout(1), late) == ReferralDecision(None, [])
    rerouted = step(record, org_says(ES_ORG, "rejected", reason="no-capacity"))
    assert decide(rerouted, timeout(1), late) == ReferralDecision(None, [])
    unmatched = decide(None, open_command(), ctx(directory=())).record
    assert unmatched is not None
    assert decide(unmatched, timeout(0), late) == ReferralDecision(None, [])


# ---------------------------------------------------------------- clinic cancels
def test_clinic_cancel_withdraws_the_offer_and_closes_the_referral() -> None:
    record = opened()
    decision = decide(record, cancel(), ctx(timedelta(hours=1)))
    assert where(decision) == [
        ("referral.withdrawn", "sdoh.org.harlem-food.referrals.v1", NET),
        ("referral.updated", UPDATES, REF),
        ("referral.state-changed", EVENTS, NET),
        CLOSED,
    ]
    withdrawn, update, changed = (ev(o) for o in decision.outputs[:3])
    assert withdrawn.reason == "cancelled-by-clinic"
    assert (update.status, update.business_status, update.reason, update.attempt) == (
        "cancelled",
        None,
        "patient-moved",
        1,
    )
    assert (changed.actor, changed.cause_event_id, changed.occurred_at) == (
        "clinic",
        eid(3),
        T0 + timedelta(hours=1),
    )
    assert decision.record is not None
    assert decision.record.pending_deadline() is None


def test_clinic_cancel_without_a_reason_says_cancelled_by_clinic() -> None:
    decision = decide(opened(), cancel(reason=None), ctx())
    assert ev(decision.outputs[1]).reason == "cancelled-by-clinic"


def test_clinic_cancel_of_an_accepted_referral_tells_the_org_to_stop() -> None:
    record = step(opened(), org_says(ES_ORG, "accepted"))
    decision = decide(record, cancel(), ctx())
    assert decision.outputs[0].label == "referral.withdrawn"
    assert decision.outputs[0].topic == "sdoh.org.harlem-food.referrals.v1"


def test_clinic_cancel_of_an_ended_referral_is_a_transition_dead_letter() -> None:
    record = step(opened(), cancel())
    again = cancel().model_copy(update={"command_id": "cancel:again"})
    decision = decide(record, again, ctx())
    assert decision.dead_letter == "transition"
    letter = ev(decision.outputs[0])
    assert letter.payload_bytes == 0  # an internal command: nothing of it is kept


def test_cancel_from_another_clinic_is_an_authorization_dead_letter() -> None:
    """A cancel naming this referral's network id from another clinic must not end it.

    (The patient owner scopes ids by clinic, so this is a second line of defence.)"""
    record = opened()
    decision = decide(record, cancel(clinic=OTHER_CLINIC), ctx())
    assert decision.dead_letter == "authorization"
    assert output_labels(decision) == ["deadletter"]
    assert decision.record is None  # nothing changes, nothing is remembered


# ---------------------------------------------------------------- terminal states close
def _ended_by(name: str) -> ReferralDecision:
    accepted = step(opened(), org_says(ES_ORG, "accepted"))
    commands = {
        "completed": (accepted, org_says(ES_ORG, "completed", event=11, outcome="enrolled")),
        "org-failed": (accepted, org_says(ES_ORG, "failed", event=11, reason="could-not-contact")),
        "org-cancelled-after-accepting": (
            accepted,
            org_says(ES_ORG, "cancelled", event=11, reason="client-declined"),
        ),
        "clinic-cancelled": (opened(), cancel()),
    }
    record, command = commands[name]
    return decide(record, command, ctx())


@pytest.mark.parametrize(
    ("name", "final"),
    [
        ("completed", "completed"),
        ("org-failed", "failed"),
        ("org-cancelled-after-accepting", "failed"),
        ("clinic-cancelled", "cancelled"),
    ],
)
def test_every_terminal_state_frees_the_patients_category(name: str, final: str) -> None:
    decision = _ended_by(name)
    assert decision.record is not None
    assert decision.record.status == final
    assert (decision.outputs[-1].label, decision.outputs[-1].topic, decision.outputs[-1].key) == (
        CLOSED
    )
    assert output_labels(decision).count("command.closed") == 1


# ---------------------------------------------------------------- idempotence
def test_repeated_command_ids_have_no_effect() -> None:
    record = opened()
    accept = org_says(ES_ORG, "accepted")
    accepted = step(record, accept)
    assert decide(accepted, accept, ctx()) == ReferralDecision(None, [])
    wrong = org_says(EN_ORG, "accepted", event=30)
    refused = decide(record, wrong, ctx())
    assert refused.record is None  # a refused command is not remembered: nobody grows the record
    assert decide(record, wrong, ctx()).outputs == refused.outputs  # the same dead letter again
    cancelled = step(record, cancel())
    assert decide(cancelled, cancel(), ctx()) == ReferralDecision(None, [])
    timed_out = step(record, timeout(1), ctx(timedelta(days=1)))
    assert decide(timed_out, timeout(1), ctx(timedelta(days=9))) == ReferralDecision(None, [])


def test_repeated_open_for_an_existing_referral_has_no_effect() -> None:
    record = opened()
    other = open_command(command_id="open:again", category="housing-instability")
    assert decide(record, open_command(), ctx()) == ReferralDecision(None, [])
    assert decide(record, other, ctx()) == ReferralDecision(None, [])


def test_same_inputs_give_identical_outputs() -> None:
    def scenario() -> list[Outgoing]:
        outputs: list[Outgoing] = []
        decision = decide(None, open_command(), ctx(), partition=2)
        outputs += decision.outputs
        record = decision.record
        for command, context in [
            (org_says(EN_ORG, "accepted", event=20), ctx()),
            (timeout(1), ctx(timedelta(hours=24))),
            (org_says(EN_ORG, "accepted", event=21), ctx(timedelta(hours=25))),
            (org_says(EN_ORG, "completed", event=22, outcome="enrolled"), ctx(timedelta(days=2))),
        ]:
            assert record is not None
            decision = decide(record, command, context)
            outputs += decision.outputs
            record = decision.record or record
        return outputs

    first, second = scenario(), scenario()
    assert first == second
    ids = [ev(o).event_id for o in first if not o.label.startswith("command.")]
    assert len(ids) == len(set(ids))


def test_decide_does_not_change_the_record_it_was_given() -> None:
    record = opened()
    before = record.model_dump()
    decide(record, org_says(ES_ORG, "rejected", reason="no-capacity"), ctx())
    decide(record, timeout(1), ctx(timedelta(days=1)))
    decide(record, cancel(), ctx())
    assert record.model_dump() == before


# ---------------------------------------------------------------- pending_deadline
def test_pending_deadline_is_the_respond_by_of_an_unanswered_offer_only() -> None:
    record = opened()
    assert record.pending_deadline() == T0 + timedelta(hours=24)
    assert step(record, org_says(ES_ORG, "accepted")).pending_deadline() is None
    assert step(record, cancel()).pending_deadline() is None
    no_offer = ReferralRecord.model_validate(
        record.model_dump() | {"offer": None, "status": "requested"}
    )
    assert no_offer.pending_deadline() is None
    # an unanswered offer on an ended referral is not waited for either
    ended = record.model_copy(update={"status": TaskStatus.FAILED})
    assert ended.pending_deadline() is None


# ---------------------------------------------------------------- any sequence
_ORGS = [ES_ORG, EN_ORG, "stranger-org"]
_STATUSES = [
    ("accepted", None, None),
    ("rejected", "no-capacity", None),
    ("in-progress", None, None),
    ("on-hold", None, None),
    ("completed", None, "enrolled"),
    ("failed", "could-not-contact", None),
    ("cancelled", "client-declined", None),
]
_command = st.one_of(
    st.tuples(st.just("org"), st.sampled_from(_ORGS), st.sampled_from(_STATUSES)),
    st.tuples(st.just("timeout"), st.integers(0, 3), st.integers(0, 60)),
    st.tuples(st.just("cancel"), st.just(None), st.just(None)),
    st.tuples(st.just("repeat"), st.just(None), st.just(None)),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_command, max_size=10))
def test_any_sequence_keeps_the_referral_consistent(script: list[Any]) -> None:
    decision = decide(None, open_command(), ctx(), partition=1)
    record = decision.record
    assert record is not None
    closes = 0
    last: Any = None
    hours = 0
    for n, (kind, a, b) in enumerate(script):
        if kind == "org":
            value, reason, outcome = b
            command: Any = org_says(a, value, event=100 + n, reason=reason, outcome=outcome)
        elif kind == "timeout":
            hours += b
            command = timeout(a)
        elif kind == "cancel":
            command = cancel().model_copy(update={"command_id": f"cancel:{n}"})
        else:
            if last is None:
                continue
            command = last
        was_terminal = record.state.terminal
        before = record.model_dump()
        decision = decide(record, command, ctx(timedelta(hours=hours)))
        last = command
        if decision.record is None:
            # stale or repeated: nothing; refused: a dead letter, and nothing remembered
            assert all(o.label.split(":")[0] in {"deadletter", *ANSWERS} for o in decision.outputs)
            assert (decision.dead_letter is None) == (decision.outputs == [])
            continue
        new = decision.record
        closes += output_labels(decision).count("command.closed")
        if decision.dead_letter is not None or was_terminal:
            # nothing moves; only the command id is remembered
            assert new.model_dump() == before | {"seen": [*before["seen"], command.command_id]}
        labels = output_labels(decision)
        assert labels.count("referral.updated") == labels.count("referral.state-changed")
        assert len(new.tried) == len(set(new.tried))
        assert new.attempt == len(new.tried)
        assert new.step >= record.step
        record = new
    assert closes == (1 if record.state.terminal else 0)


def test_a_referral_id_reused_for_another_patient_is_dead_lettered_and_frees_that_patient() -> None:
    """Clinic ids are the clinic's to choose: one id for two patients must not be
    dropped silently, nor leave the second patient's category blocked."""
    record = opened()
    second = open_command(patient=patient(id="pt-other"))
    decision = decide(record, second, ctx())
    assert decision.record is None
    assert decision.dead_letter == "validation"
    assert [(o.label, o.topic, o.key) for o in decision.outputs] == [
        ("deadletter", "sdoh.deadletter.v1", NET),
        ("command.closed", "sdoh.network.patients.v1", f"{CLINIC}:pt-other"),
    ]
    closed = ReferralClosed.model_validate_json(decision.outputs[1].value)
    assert (closed.referral_id, closed.category) == (REF, "food-insecurity")


# ---------------------------------------------------------------- answers to the sender
def refusal_of(decision: ReferralDecision) -> Any:
    [answer] = [o for o in decision.outputs if o.label.startswith("message.refused:")]
    return answer, ev(answer)


def test_an_org_naming_another_orgs_referral_hears_only_that_it_is_not_offered_to_it() -> None:
    record = opened()
    decision = decide(record, org_says(EN_ORG, "accepted"), ctx(timedelta(minutes=5)))
    out, refused = refusal_of(decision)
    assert (out.topic, out.key) == (TOPICS.org_referrals(EN_ORG), NET)
    assert refused.error.kind == "authorization"
    assert refused.referral_state.model_dump() == {
        "offer": "not-offered",
        "attempt": None,
        "withdrawn_event_id": None,
        "status": None,
        "at": None,
    }
    # nothing of the organization holding it, nor of the patient
    assert ES_ORG.encode() not in out.value
    assert b"svc-" not in out.value
    assert record.patient.given_name.encode() not in out.value


def test_an_update_to_a_closed_referral_is_answered_with_its_final_status() -> None:
    record = step(opened(), org_says(ES_ORG, "accepted"))
    record = step(record, org_says(ES_ORG, "completed", event=11, outcome="enrolled"))
    decision = decide(record, org_says(ES_ORG, "in-progress", event=12), ctx())
    out, refused = refusal_of(decision)
    assert out.topic == TOPICS.org_referrals(ES_ORG)
    assert refused.error.kind == "transition"
    assert refused.referral_state.offer == "closed"
    assert refused.referral_state.status == "completed"
    assert refused.referral_state.at == record.closed_at


def test_a_clinic_cancelling_an_unknown_referral_hears_it_on_its_updates_topic() -> None:
    decision = decide(None, cancel(), ctx())
    out, refused = refusal_of(decision)
    assert out.topic == TOPICS.clinic_updates(CLINIC)
    assert refused.error.kind == "unknown-referral"
    assert refused.source == cancel().source


def test_an_acceptance_after_the_offer_timed_out_and_the_referral_ended_names_the_withdrawal() -> (
    None
):
    record = opened()
    assert record.offer is not None
    late = ctx(record.offer.respond_by - T0 + timedelta(seconds=1))
    for _ in range(2):  # both services time out; nothing is left: failed / unmatched
        assert record.offer is not None
        record = step(record, timeout(record.offer.attempt), late)
        late = ctx(timedelta(days=3))
    assert record.state.terminal
    decision = decide(record, org_says(record.tried_orgs[-1], "accepted", event=40), late)
    out, refused = refusal_of(decision)
    assert out.topic == TOPICS.org_referrals(record.tried_orgs[-1])
    assert refused.referral_state.offer == "withdrawn"
    assert refused.referral_state.attempt == record.attempt
    assert refused.referral_state.withdrawn_event_id == derived_id(NET, "withdrawn", record.attempt)
    assert refused.referral_state.status == "failed"
