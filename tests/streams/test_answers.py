"""The answers a party hears on its own inbox topic of each message the edge refuses."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from schemas.events import MessageRefused, from_bytes, to_bytes
from streams.decisions.limits import Limits
from streams.decisions.network_state import NetworkState
from streams.decisions.outputs import Outgoing, answer_topic
from streams.runtime.ingress import Ingress, answer, route
from streams.runtime.quota import PartyQuota
from tests.streams.fixtures import CLINIC, TOPICS, capacity, screening, service, status
from tests.streams.test_ingress_route import ORG, message

SUBMISSIONS = TOPICS.clinic_submissions(CLINIC)
UPDATES = TOPICS.org_updates(ORG)


def refused(record: Any, out: Outgoing) -> tuple[Outgoing, MessageRefused]:
    """The answer to ``record``, checked to say nothing of its payload's values."""
    reply = answer(record, out, TOPICS)
    assert reply is not None and reply.label.startswith("message.refused:")
    event = from_bytes(reply.value)
    assert isinstance(event, MessageRefused)
    assert (event.source.topic, event.source.partition, event.source.offset) == (
        record.topic,
        2,
        41,
    )
    return reply, event


def test_the_inbox_of_a_clinic_is_its_updates_topic_and_of_an_org_its_referrals_topic() -> None:
    assert answer_topic(TOPICS, SUBMISSIONS) == TOPICS.clinic_updates(CLINIC)
    assert answer_topic(TOPICS, UPDATES) == TOPICS.org_referrals(ORG)
    assert answer_topic(TOPICS, TOPICS.directory) is None
    assert answer_topic(TOPICS, "elsewhere") is None


def test_a_message_over_the_size_limit_is_answered_as_limit_without_its_payload() -> None:
    value = to_bytes(screening("scr-big"))
    record = message(SUBMISSIONS, b"pt-8c21", value)
    out = route(record, TOPICS, NetworkState(), Limits(max_message_bytes=100))
    reply, event = refused(record, out)
    assert (reply.topic, reply.key) == (TOPICS.clinic_updates(CLINIC), "pt-8c21")
    assert event.error.kind == "limit" and "REFNET_MAX_MESSAGE_BYTES" in event.error.rule
    assert reply.label == "message.refused:limit"  # the metrics count answers by kind
    assert event.screening_id == "scr-big"
    assert event.refused_event_type == "screening.submitted"
    assert b"Ana" not in reply.value and b"+1718" not in reply.value


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"{not json", "decode"),
        (b"\xff\xfe", "decode"),
        (b'{"event_type": "screening.submitted", "screening_id": "scr-9"}', "validation"),
        (b'{"event_type": "no.such-event"}', "unknown-event-type"),
    ],
)
def test_an_unusable_message_is_answered_with_its_kind(value: bytes, kind: str) -> None:
    record = message(SUBMISSIONS, b"pt-1", value)
    reply, event = refused(record, route(record, TOPICS, NetworkState()))
    assert reply.topic == TOPICS.clinic_updates(CLINIC)
    assert event.error.kind == kind
    assert event.refused_event_type is None or event.refused_event_type == "screening.submitted"


def test_a_message_from_the_future_is_answered_as_limit_naming_the_skew_rule() -> None:
    event = screening("scr-1")
    record = message(SUBMISSIONS, b"pt-8c21", to_bytes(event))
    out = route(record, TOPICS, NetworkState(), now=event.occurred_at - timedelta(hours=1))
    _, refusal = refused(record, out)
    assert refusal.error.kind == "limit" and "REFNET_MAX_CLOCK_SKEW" in refusal.error.rule
    assert refusal.refused_event_id == event.event_id


def test_capacity_for_another_orgs_service_is_answered_without_naming_that_org() -> None:
    state = NetworkState()
    state.upsert(service("svc-theirs", "harlem-food"))
    record = message(UPDATES, b"svc-theirs", to_bytes(capacity("svc-theirs", 0)))
    reply, event = refused(record, route(record, TOPICS, state))
    assert reply.topic == TOPICS.org_referrals(ORG)
    assert event.error.kind == "authorization"
    assert b"harlem-food" not in reply.value


def test_a_routed_message_is_not_answered() -> None:
    record = message(UPDATES, b"k", to_bytes(status("mott-haven:ref-1", "accepted")))
    assert answer(record, route(record, TOPICS, NetworkState()), TOPICS) is None


def test_a_party_over_its_quota_hears_one_answer_per_refused_message() -> None:
    ingress = Ingress(
        "localhost:9092",
        TOPICS,
        producer=None,  # type: ignore[arg-type]
        state=NetworkState(),
        group_id="g",
        refresh_seconds=5,
        quota=PartyQuota(rate=0.001, burst=1),
    )
    value = to_bytes(screening("scr-1"))
    ingress.admit(message(SUBMISSIONS, b"pt-8c21", value))
    record = message(SUBMISSIONS, b"pt-8c21", value)
    reply, event = refused(record, ingress.admit(record))
    assert event.error.kind == "limit"
    assert json.loads(reply.value)["screening_id"] == "scr-1"


def test_the_answer_to_a_message_has_one_id_however_often_it_is_read() -> None:
    record = message(SUBMISSIONS, b"pt-1", b"{not json")
    first = answer(record, route(record, TOPICS, NetworkState()), TOPICS)
    again = answer(record, route(record, TOPICS, NetworkState()), TOPICS)
    assert first is not None and again is not None
    assert from_bytes(first.value).event_id == from_bytes(again.value).event_id
