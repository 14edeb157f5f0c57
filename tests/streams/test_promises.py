"""The core keeps its promises under races (issue 22), without a broker: capacity
reservations end with their offer, an answer is bound to the offer it answers, the
network's clock dates the network's events, and a patient's memory cannot pin a
category open."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from schemas.events import (
    MessageRefused,
    ReferralOffered,
    ReferralStateChanged,
    ReferralStatusChanged,
    ReferralUpdated,
    ReferralWithdrawn,
    from_bytes,
    to_bytes,
)
from streams.decisions import patients
from streams.decisions.commands import (
    PATIENT_COMMAND,
    OfferTimeout,
    OrganizationStatus,
    ReferralClosed,
    SubmissionReceived,
    network_referral_id,
)
from streams.decisions.network_state import NetworkState
from streams.decisions.outputs import Outgoing
from streams.decisions.referrals import Context, ReferralDecision, ReferralRecord, decide
from tests.streams.fixtures import (
    CLINIC,
    OTHER_CLINIC,
    PATIENT_ID,
    T0,
    TOPICS,
    eid,
    requested,
    service,
    source,
)
from tests.streams.test_referrals import cancel, open_command, org_says


def ctx(state: NetworkState, offset: timedelta = timedelta(0)) -> Context:
    return Context(
        topics=TOPICS,
        now=T0 + offset,
        directory=state,
        org_stats=state.org_stats(),
        load=state.load(),
    )


def logged(state: NetworkState, decision: ReferralDecision) -> ReferralDecision:
    """What every worker's view learns from the event log of ``decision``."""
    for out in decision.outputs:
        if out.label == "referral.state-changed":
            event = from_bytes(out.value)
            assert isinstance(event, ReferralStateChanged)
            state.record(event)
    return decision


def one_place() -> NetworkState:
    state = NetworkState()
    state.upsert(service("svc-one", "org-one", available=1, languages=("es",)))
    return state


def offered_to(decision: ReferralDecision) -> str | None:
    return next(
        (from_bytes(o.value).service_id for o in decision.outputs if o.label == "referral.offered"),
        None,
    )


def available(state: NetworkState) -> int | None:
    [svc] = state.directory()
    return svc.capacity.available if svc.capacity else None


# ---------------------------------------------------------------- 1: reservations
def test_a_cancelled_offer_releases_its_place_for_another_clinic() -> None:
    state = one_place()
    first = logged(state, decide(None, open_command(), ctx(state), partition=0))
    assert offered_to(first) == "svc-one" and available(state) == 0
    assert first.record is not None
    logged(state, decide(first.record, cancel(), ctx(state, timedelta(minutes=1))))
    assert available(state) == 1
    second = open_command("ref-9", clinic_id=OTHER_CLINIC)
    decision = logged(state, decide(None, second, ctx(state, timedelta(minutes=2)), partition=0))
    assert offered_to(decision) == "svc-one"


def test_a_rejected_or_timed_out_offer_releases_its_place_an_accepted_one_keeps_it() -> None:
    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None and available(state) == 0
    rejected = logged(
        state, decide(record, org_says("org-one", "rejected", reason="not-eligible"), ctx(state))
    )
    assert available(state) == 1
    assert rejected.record is not None and rejected.record.status == "failed"

    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None
    late = ctx(state, timedelta(days=2))
    timeout = OfferTimeout(command_id="t", referral_id=record.referral_id, attempt=1)
    logged(state, decide(record, timeout, late))
    assert available(state) == 1

    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None
    accepted = logged(state, decide(record, org_says("org-one", "accepted"), ctx(state)))
    assert available(state) == 0  # the organization works on it: the place stays taken
    assert accepted.record is not None
    done = org_says("org-one", "completed", event=11, outcome="enrolled")
    logged(state, decide(accepted.record, done, ctx(state)))
    assert available(state) == 1


def test_releases_survive_a_snapshot_of_the_view() -> None:
    from streams.runtime.view_snapshot import Document

    state = one_place()
    record = logged(state, decide(None, open_command(), ctx(state))).record
    assert record is not None and available(state) == 0
    raw = json.dumps(state.record_snapshot(100), default=lambda t: t.isoformat())
    document = Document.model_validate_json(raw)
    restored = one_place()
    restored.restore(document)
    assert available(restored) == 0
    logged(restored, decide(record, cancel(), ctx(restored, timedelta(minutes=1))))
    assert available(restored) == 1


# ---------------------------------------------------------------- 6: answers bound to offers
def same_org_twice() -> NetworkState:
    state = NetworkState()
    state.upsert(service("svc-a", "org-two", available=5, languages=("es",)))
    state.upsert(service("svc-b", "org-two", available=5, languages=("en",)))
    return state


def answer(value: str, *, event: int, **fields: Any) -> OrganizationStatus:
    referral_id = network_referral_id(CLINIC, "ref-1")
    changed = ReferralStatusChanged.model_validate(
        {
            "event_id": eid(event),
            "occurred_at": T0,
            "referral_id": referral_id,
            "status": value,
            **fields,
        }
    )
    return OrganizationStatus(
        command_id=str(changed.event_id),
        org_id="org-two",
        event=changed,
        source=source(TOPICS.org_updates("org-two"), referral_id, offset=event),
        raw_base64=base64.b64encode(to_bytes(changed)).decode("ascii"),
    )


def reoffered_to_the_same_org() -> tuple[NetworkState, ReferralRecord]:
    state = same_org_twice()
    record = decide(None, open_command(), ctx(state)).record
    assert record is not None and record.offer is not None
    assert record.offer.service_id == "svc-a"
    timeout = OfferTimeout(command_id="t", referral_id=record.referral_id, attempt=1)
    again = decide(record, timeout, ctx(state, timedelta(days=2)))
    assert offered_to(again) == "svc-b"
    assert again.record is not None
    return state, again.record


def test_a_late_answer_to_a_withdrawn_offer_is_not_applied_to_the_newer_one() -> None:
    state, record = reoffered_to_the_same_org()
    late = answer("accepted", event=30, attempt=1)
    decision = decide(record, late, ctx(state, timedelta(days=2, minutes=1)))
    assert decision.record is None
    assert decision.dead_letter == "transition"
    by_service = answer("accepted", event=31, service_id="svc-a")
    assert decide(record, by_service, ctx(state, timedelta(days=2))).dead_letter == "transition"
    current = answer("accepted", event=32, attempt=2, service_id="svc-b")
    applied = decide(record, current, ctx(state, timedelta(days=2)))
    assert applied.record is not None and applied.record.status == "accepted"


def test_offers_and_withdrawals_name_their_attempt() -> None:
    state = same_org_twice()
    opened = decide(None, open_command(), ctx(state))
    [offer] = [from_bytes(o.value) for o in opened.outputs if o.label == "referral.offered"]
    assert isinstance(offer, ReferralOffered) and offer.attempt == 1
    assert opened.record is not None
    timeout = OfferTimeout(command_id="t", referral_id=opened.record.referral_id, attempt=1)
    again = decide(opened.record, timeout, ctx(state, timedelta(days=2)))
    withdrawn = [from_bytes(o.value) for o in again.outputs if o.label == "referral.withdrawn"]
    assert [w.attempt for w in withdrawn if isinstance(w, ReferralWithdrawn)] == [1]


def test_an_answer_queued_behind_its_timeout_is_a_transition_not_authorization() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-two", available=5, languages=("es",)))
    state.upsert(service("svc-c", "org-three", available=5, languages=("en",)))
    record = decide(None, open_command(), ctx(state)).record
    assert record is not None
    timeout = OfferTimeout(command_id="t", referral_id=record.referral_id, attempt=1)
    timed_out = decide(record, timeout, ctx(state, timedelta(days=2)))
    moved = timed_out.record
    assert moved is not None and moved.offer is not None and moved.offer.org_id == "org-three"
    [withdrawal] = [
        e
        for e in (from_bytes(o.value) for o in timed_out.outputs)
        if isinstance(e, ReferralWithdrawn)
    ]
    decision = decide(moved, answer("accepted", event=33), ctx(state, timedelta(days=2)))
    assert decision.dead_letter == "transition"
    letter, refused = (from_bytes(o.value) for o in decision.outputs)
    assert "withdrawn" in letter.error.message
    # the organization hears it on its own referrals topic, naming the withdrawal
    assert decision.outputs[1].topic == "sdoh.org.org-two.referrals.v1"
    assert isinstance(refused, MessageRefused)
    assert refused.error.kind == "transition"
    assert refused.referral_state is not None
    assert refused.referral_state.offer == "withdrawn"
    assert refused.referral_state.attempt == 1
    assert refused.referral_state.withdrawn_event_id == withdrawal.event_id
    assert refused.refused_event_type == "referral.status-changed"


def test_the_gateway_binds_an_organizations_task_to_the_offer_it_is_of() -> None:
    from connectors.fhir.tasks import status_change_from

    state = same_org_twice()
    opened = decide(None, open_command(), ctx(state))
    [offer] = [from_bytes(o.value) for o in opened.outputs if o.label == "referral.offered"]
    assert isinstance(offer, ReferralOffered)
    event = status_change_from({"resourceType": "Task", "status": "accepted"}, "r", offer)
    assert (event.attempt, event.service_id) == (1, "svc-a")


# ---------------------------------------------------------------- 7: the network's clock
def test_an_answer_is_dated_by_the_network_and_keeps_the_party_time_apart() -> None:
    state = same_org_twice()
    record = decide(None, open_command(), ctx(state)).record
    assert record is not None
    claimed = T0 - timedelta(days=3)  # before the offer was even made
    changed = ReferralStatusChanged.model_validate(
        {
            "event_id": eid(40),
            "occurred_at": claimed,
            "referral_id": record.referral_id,
            "status": "accepted",
        }
    )
    command = OrganizationStatus(
        command_id=str(changed.event_id),
        org_id="org-two",
        event=changed,
        source=source(TOPICS.org_updates("org-two"), record.referral_id),
        raw_base64=base64.b64encode(to_bytes(changed)).decode("ascii"),
    )
    now = timedelta(hours=1)
    decision = decide(record, command, ctx(state, now))
    update, logged_change, _confirmed = (from_bytes(o.value) for o in decision.outputs)
    assert isinstance(update, ReferralUpdated) and isinstance(logged_change, ReferralStateChanged)
    assert update.occurred_at == T0 + now and logged_change.occurred_at == T0 + now
    assert update.reported_at == claimed and logged_change.reported_at == claimed


# ---------------------------------------------------------------- 8: the patient's memory
def submit(event: Any) -> SubmissionReceived:
    return SubmissionReceived(
        command_id=str(event.event_id),
        clinic_id=CLINIC,
        source=source(TOPICS.clinic_submissions(CLINIC), PATIENT_ID),
        event=event,
    )


def only_command(outputs: list[Outgoing]) -> Any:
    [out] = outputs
    return out


def test_reopening_a_closed_referral_the_patient_forgot_closes_the_category_again() -> None:
    # the patient opened ref-1 and it closed; it then forgot ref-1 (its 1000-id
    # memory), while the referral owner still keeps the closed record (retention)
    opened = patients.decide(None, submit(requested("ref-1")), topics=TOPICS)
    assert opened.record is not None
    open_out = only_command(opened.outputs)
    state = same_org_twice()
    owner = decide(None, open_command(), ctx(state))
    assert owner.record is not None
    ended = decide(owner.record, cancel(), ctx(state, timedelta(minutes=1)))
    assert ended.record is not None and ended.record.state.terminal
    closed = PATIENT_COMMAND.validate_json(ended.outputs[-1].value)
    patient = patients.decide(opened.record, closed, topics=TOPICS).record
    assert patient is not None and not patient.open
    forgetful = patient.model_copy(update={"referrals": {}})

    # the clinic reuses ref-1: the patient marks the category open again
    reused = patients.decide(forgetful, submit(requested("ref-1", event=60)), topics=TOPICS)
    assert reused.record is not None and reused.record.open
    reopen = only_command(reused.outputs)
    assert reopen.topic == open_out.topic
    from streams.decisions.commands import REFERRAL_COMMAND

    command = REFERRAL_COMMAND.validate_json(reopen.value)
    answer_ = decide(ended.record, command, ctx(state, timedelta(minutes=2)))
    closes = [
        PATIENT_COMMAND.validate_json(o.value)
        for o in answer_.outputs
        if o.topic == TOPICS.network_patients
    ]
    assert closes and all(isinstance(c, ReferralClosed) for c in closes)
    patient = reused.record
    for c in closes:
        patient = patients.decide(patient, c, topics=TOPICS).record or patient
    assert not patient.open  # a later screening in the category is not a duplicate


# ---------------------------------------------------------------- an organization removed
async def test_one_listing_without_an_organizations_topic_withdraws_nothing(
    monkeypatch: Any,
) -> None:
    import connectors.kafka.admin as admin
    from streams.runtime.view import NetworkView

    listings: list[list[str]] = []
    monkeypatch.setattr(admin, "admin_client", lambda *a, **k: object())
    monkeypatch.setattr(admin, "list_topics", lambda *a, **k: listings.pop(0))
    view = NetworkView("nowhere:9092", TOPICS, refresh_seconds=0)
    removed: list[frozenset[str]] = []

    async def on_removed(orgs: frozenset[str]) -> None:
        removed.append(orgs)

    view.on_orgs_removed = on_removed
    both = [TOPICS.org_referrals("org-a"), TOPICS.org_referrals("org-b")]
    only_a = both[:1]
    for listing in (both, only_a, both, only_a):
        listings.append(listing)
        await view.list_orgs()
    assert removed == []  # each time it was missing once only
    assert view.state.reachable == frozenset({"org-a"})  # no new offers meanwhile
    listings.append(only_a)
    await view.list_orgs()
    assert removed == [frozenset({"org-b"})]
    listings.append(only_a)
    await view.list_orgs()
    assert removed == [frozenset({"org-b"})]  # acted on once
