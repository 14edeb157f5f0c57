"""Per-party quotas at the ingress, without a broker: a flooding party's messages over
its quota are refused as ``limit`` dead letters naming the rule; another party's go on."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import DeadLetter, from_bytes, to_bytes
from streams.runtime.ingress import Ingress
from streams.runtime.quota import PartyQuota
from tests.streams.fixtures import CLINIC, PATIENT_ID, TOPICS, screening
from tests.streams.test_ingress_route import message, state_with_services

OTHER = "other-clinic"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refuses_past_its_burst_and_refills_at_its_rate() -> None:
    clock = Clock()
    quota = PartyQuota(rate=2, burst=3, clock=clock)
    assert [quota.admit("a") for _ in range(4)] == [True, True, True, False]
    assert quota.admit("b")  # another party has its own bucket
    clock.now += 0.5
    assert [quota.admit("a") for _ in range(2)] == [True, False]
    clock.now += 100
    assert [quota.admit("a") for _ in range(4)] == [True, True, True, False]


def test_a_quota_is_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError):
        PartyQuota(rate=0, burst=10)


def test_the_ingress_refuses_a_flooding_party_past_its_quota_and_serves_the_others() -> None:
    clock = Clock()
    producer: Any = None
    ingress = Ingress(
        "",
        TOPICS,
        producer,
        state_with_services(),
        group_id="g",
        refresh_seconds=1,
        quota=PartyQuota(rate=1, burst=2, clock=clock),
    )
    value = to_bytes(screening())
    flood = [
        ingress.admit(message(TOPICS.clinic_submissions(CLINIC), PATIENT_ID.encode(), value))
        for _ in range(5)
    ]
    other = ingress.admit(message(TOPICS.clinic_submissions(OTHER), PATIENT_ID.encode(), value))

    assert [out.topic for out in flood[:2]] == [TOPICS.network_patients] * 2
    assert {out.topic for out in flood[2:]} == {TOPICS.deadletter}
    letter = from_bytes(flood[2].value)
    assert isinstance(letter, DeadLetter)
    assert letter.error.kind == "limit"
    assert f"party {CLINIC} is over its quota" in letter.error.message
    assert other.topic == TOPICS.network_patients
