"""What keeps the network alive and finite, without a broker: edge limits, excerpts,
reservations, the patient owner's consent and forgetting, the outbox, supervision."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.codes import Category
from schemas.events import ConsentUpdated, DeadLetter, ScreeningScored, from_bytes, to_bytes
from streams.decisions.commands import (
    REFERRAL_COMMAND,
    ForgetReferral,
    ReferralClosed,
    SubmissionReceived,
    UpdateConsent,
)
from streams.decisions.limits import Limits
from streams.decisions.network_state import NetworkState
from streams.decisions.outputs import (
    MAX_EXCERPT_BYTES,
    RAW_EXCERPT_BYTES,
    Outgoing,
    dead_letter_event,
    excerpt,
)
from streams.decisions.patients import PatientRecord, decide, scored_answers
from streams.runtime.ingress import route
from streams.runtime.supervise import Supervisor
from tests.streams.fixtures import (
    CLINIC,
    FOOD_ONLY,
    NO_NEED,
    PATIENT_ID,
    T0,
    TOPICS,
    capacity,
    requested,
    screening,
    service,
    source,
)
from tests.streams.test_ingress_route import message, state_with_services

NOW = datetime(2026, 11, 24, 14, 15, tzinfo=UTC)


def letter_of(out: Outgoing) -> DeadLetter:
    event = from_bytes(out.value)
    assert isinstance(event, DeadLetter)
    return event


# ---------------------------------------------------------------- the edge
def test_a_message_over_the_size_limit_is_refused_before_parsing() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    big = b"\xff" * (300 * 1024)
    out = route(message(topic, b"pt-1", big), TOPICS, NetworkState(), Limits(), now=NOW)
    letter = letter_of(out)
    assert letter.error.kind == "limit"
    assert "307200 bytes" in letter.error.message and "262144" in letter.error.message
    assert letter.payload_bytes == len(big)
    assert len(base64.b64decode(letter.payload_base64)) == RAW_EXCERPT_BYTES
    assert len(out.value) < 2048


def test_the_size_limit_is_a_setting() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    value = to_bytes(screening())
    small = Limits(max_message_bytes=100)
    assert (
        letter_of(route(message(topic, b"pt", value), TOPICS, NetworkState(), small)).error.kind
        == "limit"
    )
    assert route(message(topic, b"pt", value), TOPICS, NetworkState(), Limits(), now=NOW).label == (
        "command.submission"
    )


def test_occurred_at_too_far_ahead_of_the_network_clock_is_refused() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    ahead = to_bytes(screening(at=NOW + timedelta(minutes=6)))
    letter = letter_of(route(message(topic, b"pt", ahead), TOPICS, NetworkState(), now=NOW))
    assert letter.error.kind == "limit"
    assert "REFNET_MAX_CLOCK_SKEW" in letter.error.message
    within = to_bytes(screening(at=NOW + timedelta(minutes=4)))
    assert route(message(topic, b"pt", within), TOPICS, NetworkState(), now=NOW).label == (
        "command.submission"
    )


def test_a_capacity_report_dated_far_ahead_is_refused_and_cannot_pin_capacity() -> None:
    topic = TOPICS.org_updates("bronx-pantry")
    report = to_bytes(capacity("svc-mine", 0, at=NOW + timedelta(days=3000)))
    out = route(message(topic, b"svc-mine", report), TOPICS, state_with_services(), now=NOW)
    assert letter_of(out).error.kind == "limit"


def test_consent_updated_goes_to_the_patients_owner() -> None:
    event = ConsentUpdated.new(patient_id=PATIENT_ID, consent={"granted": False}, occurred_at=NOW)
    topic = TOPICS.clinic_submissions(CLINIC)
    out = route(message(topic, b"whatever", to_bytes(event)), TOPICS, NetworkState(), now=NOW)
    assert (out.topic, out.key, out.label) == (
        TOPICS.network_patients,
        f"{CLINIC}:{PATIENT_ID}",
        "command.submission",
    )


def test_a_timestamp_out_of_range_in_the_record_does_not_break_the_dead_letter() -> None:
    topic = TOPICS.clinic_submissions(CLINIC)
    record = message(topic, b"pt", b"garbage")
    record = dataclasses.replace(record, timestamp=2**62)  # a producer may set any CreateTime
    assert letter_of(route(record, TOPICS, NetworkState(), now=NOW)).error.kind == "decode"


# ---------------------------------------------------------------- excerpts
def test_an_excerpt_never_holds_patient_fields_or_free_text() -> None:
    event = screening(answers=[*FOOD_ONLY, {"question": "56799-0", "answer": "12 Elm Street"}])
    shown = excerpt(to_bytes(event))
    assert len(shown) <= MAX_EXCERPT_BYTES
    text = shown.decode()
    for secret in ("Ana", "Rivera", "+17185550100", "1984-03-02", "Elm Street", "10451"):
        assert secret not in text
    assert json.loads(text)["event_type"] == "screening.submitted"
    assert "patient" in json.loads(text)["other_fields"]


def test_an_excerpt_of_a_cut_or_huge_message_is_bounded() -> None:
    cut = to_bytes(screening())[:60]
    assert json.loads(excerpt(cut))["event_id"]  # a cut-short object still shows its ids
    many = json.dumps({f"field-{n}": n for n in range(10_000)}).encode()
    assert len(excerpt(many)) <= MAX_EXCERPT_BYTES
    assert excerpt(b"[" * 100_000) == b"[" * RAW_EXCERPT_BYTES


def test_a_dead_letter_is_small_whatever_the_payload() -> None:
    letter = dead_letter_event(
        "validation",  # type: ignore[arg-type]
        "x" * 5000,
        source(TOPICS.clinic_submissions(CLINIC), "pt"),
        b"{" + b'"a":"b",' * 200_000,
        occurred_at=NOW,
    )
    assert len(to_bytes(letter)) < 3000
    assert letter.payload_bytes == 1 + 8 * 200_000


# ---------------------------------------------------------------- reservations
def test_each_offer_reserves_a_place_until_the_organization_reports_again() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=2))
    assert state.directory()[0].capacity.available == 2  # type: ignore[union-attr]
    state.reserve("r-1", 1, "svc-a", T0)
    state.reserve("r-1", 1, "svc-a", T0)  # the same offer again (owner, then the log)
    assert state.directory()[0].capacity.available == 1  # type: ignore[union-attr]
    state.reserve("r-2", 1, "svc-a", T0)
    state.reserve("r-3", 1, "svc-a", T0)
    assert state.directory()[0].capacity.available == 0  # type: ignore[union-attr]
    state.report_capacity(capacity("svc-a", 4, at=T0 + timedelta(minutes=1)))
    assert state.directory()[0].capacity.available == 4  # type: ignore[union-attr]
    state.reserve("r-0", 2, "svc-a", T0)  # older than the new figure: already in it
    assert state.directory()[0].capacity.available == 4  # type: ignore[union-attr]


def test_reservations_spread_offers_as_capacity_runs_out() -> None:
    from streams.decisions.matching import MatchRequest, rank

    state = NetworkState()
    state.upsert(service("svc-big", "org-a", available=3))
    state.upsert(service("svc-small", "org-b", available=2))
    request = MatchRequest(category=Category.FOOD_INSECURITY, postal_code="10451")
    chosen = []
    for n in range(5):
        best = rank(state.directory(), request)[0].service
        chosen.append(best.service_id)
        state.reserve(f"r-{n}", 1, best.service_id, T0)
    assert chosen.count("svc-big") == 3 and chosen.count("svc-small") == 2
    assert rank(state.directory(), request) == []  # full: nothing is offered


# ---------------------------------------------------------------- the patient owner
def submit(event: Any) -> SubmissionReceived:
    return SubmissionReceived(
        command_id=str(event.event_id),
        clinic_id=CLINIC,
        source=source(TOPICS.clinic_submissions(CLINIC), PATIENT_ID),
        event=event,
    )


def test_screening_scored_carries_coded_answers_to_scored_questions_only() -> None:
    answers = [
        *FOOD_ONLY,
        {"question": "56799-0", "answer": "12 Elm Street"},  # address: PRAPARE, unscored
        {"question": "88122-7", "answer": "sometimes, when money ran out"},  # free text
        {"question": "95618-5", "answer": 3},  # an AHC safety item: a scored number
    ]
    decision = decide(None, submit(screening(answers=answers)), topics=TOPICS)
    scored = from_bytes(decision.outputs[0].value)
    assert isinstance(scored, ScreeningScored)
    kept = [(a.question, a.answer) for a in scored.answers]
    assert ("56799-0", "12 Elm Street") not in kept
    assert all(not isinstance(v, str) or v.startswith("LA") for _, v in kept)
    assert ("95618-5", 3) in kept
    assert [(a["question"], a["answer"]) for a in FOOD_ONLY] == kept[:2]


def test_scored_answers_drop_demographics_of_prapare() -> None:
    from schemas.codes import Instrument
    from schemas.events import Answer

    answers = [
        Answer(question="63586-2", answer=40000),
        Answer(question="93031-3", answer="LA30125-1"),
    ]
    assert scored_answers(Instrument.PRAPARE, answers) == answers[1:]


def test_consent_updated_reaches_every_open_referral_of_the_patient() -> None:
    opened = decide(None, submit(requested("ref-a")), topics=TOPICS).record
    assert opened is not None and opened.open
    event = ConsentUpdated.new(patient_id=PATIENT_ID, consent={"granted": False}, occurred_at=T0)
    decision = decide(opened, submit(event), topics=TOPICS)
    [out] = decision.outputs
    command = REFERRAL_COMMAND.validate_json(out.value)
    assert isinstance(command, UpdateConsent)
    assert (command.referral_id, command.consent.granted) == (f"{CLINIC}:ref-a", False)


def test_a_patient_with_nothing_open_or_remembered_leaves_the_table() -> None:
    no_need = decide(None, submit(screening(answers=NO_NEED)), topics=TOPICS)
    assert no_need.delete
    record = decide(None, submit(requested("ref-a")), topics=TOPICS).record
    assert record is not None
    closed = ReferralClosed(command_id="closed:x", referral_id="ref-a", category="food-insecurity")
    after_close = decide(record, closed, topics=TOPICS)
    assert not after_close.delete  # still remembers ref-a (a reused id is refused)
    assert after_close.record is not None
    forget = ForgetReferral(command_id="forget:x", referral_id="ref-a")
    assert decide(after_close.record, forget, topics=TOPICS).delete


def test_a_patient_remembers_a_bounded_number_of_referrals() -> None:
    from streams.decisions.patients import REFERRALS_LIMIT

    record = PatientRecord()
    for n in range(REFERRALS_LIMIT + 50):
        record.referrals[f"old-{n}"] = Category.FOOD_INSECURITY
    record.open[Category.HOUSING_INSTABILITY] = "old-0"
    record.remember("x")
    assert len(record.referrals) == REFERRALS_LIMIT
    assert "old-0" in record.referrals  # open ones stay


def test_a_screening_id_at_the_limit_gives_ids_within_the_limit() -> None:
    event = screening("s" * 128, answers=FOOD_ONLY)
    decision = decide(None, submit(event), topics=TOPICS)
    command = REFERRAL_COMMAND.validate_json(decision.outputs[1].value)
    assert len(command.referral_id) <= 128
    assert len(command.clinic_referral_id) <= 128  # type: ignore[union-attr]


# ---------------------------------------------------------------- the outbox
def test_the_outbox_keeps_bytes_exactly() -> None:
    out = Outgoing.event(TOPICS.screenings, "k", screening())
    stored = json.loads(json.dumps(out.stored()))
    assert Outgoing.from_stored(stored) == out


# ---------------------------------------------------------------- supervision
async def test_a_failing_task_is_restarted_and_counted() -> None:
    runs = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(3600)

    fatal: list[str] = []
    supervisor = Supervisor(first_backoff=0.01, on_fatal=fatal.append)
    supervisor.start("flaky", flaky)
    for _ in range(100):
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.02)
    assert len(runs) == 3
    assert supervisor.failures("flaky") == 2
    assert fatal == []
    await supervisor.stop()


async def test_a_task_that_keeps_failing_stops_the_worker() -> None:
    async def broken() -> None:
        raise ConnectionError("no broker")

    fatal: list[str] = []
    supervisor = Supervisor(first_backoff=0.001, max_failures=4, on_fatal=fatal.append)
    supervisor.start("ingress", broken)
    for _ in range(200):
        if fatal:
            break
        await asyncio.sleep(0.01)
    assert fatal and "ingress" in fatal[0] and "ConnectionError" in fatal[0]
    assert "no broker" not in fatal[0]  # the type, never the message
    await supervisor.stop()
