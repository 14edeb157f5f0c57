"""The submissions loop subscribes to the listed topics that match, not to a pattern."""

from __future__ import annotations

from typing import Any

from streams.runtime.ingress_groups import submissions_pattern
from streams.runtime.subscription import Listed
from tests.streams.fixtures import TOPICS


class FakeConsumer:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def subscribe(self, *, topics: list[str], listener: Any) -> None:
        self.calls.append(("subscribe", topics, listener))

    def unsubscribe(self) -> None:
        self.calls.append(("unsubscribe",))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def listing(*clinics: str, orgs: int = 3) -> set[str]:
    names = {TOPICS.clinic_submissions(c) for c in clinics}
    names |= {TOPICS.clinic_updates(c) for c in clinics}
    names |= {TOPICS.org_updates(f"org-{i}") for i in range(orgs)}
    names |= {TOPICS.org_referrals(f"org-{i}") for i in range(orgs)}
    return names | {TOPICS.network_patients, TOPICS.directory}


def test_only_the_listed_submissions_topics_are_subscribed_and_again_when_they_change() -> None:
    names = listing("mott-haven", orgs=500)
    clock, consumer, listener = Clock(), FakeConsumer(), object()
    listed = Listed(submissions_pattern(TOPICS), lambda: names, look_every=1.0, clock=clock)

    assert listed.refresh(consumer, listener)  # type: ignore[arg-type]
    assert consumer.calls == [("subscribe", [TOPICS.clinic_submissions("mott-haven")], listener)]

    names |= listing("bronx-clinic")
    clock.now = 0.5  # not looked at again yet
    assert listed.refresh(consumer, listener)  # type: ignore[arg-type]
    assert len(consumer.calls) == 1
    clock.now = 1.0
    listed.refresh(consumer, listener)  # type: ignore[arg-type]
    assert consumer.calls[-1] == (
        "subscribe",
        sorted(
            [TOPICS.clinic_submissions("bronx-clinic"), TOPICS.clinic_submissions("mott-haven")]
        ),
        listener,
    )
    clock.now = 2.0
    listed.refresh(consumer, listener)  # type: ignore[arg-type]
    assert len(consumer.calls) == 2  # unchanged: no new subscription, no rebalance


def test_with_no_such_topic_nothing_is_subscribed_until_one_is_listed() -> None:
    names = listing(orgs=2)
    clock, consumer = Clock(), FakeConsumer()
    listed = Listed(submissions_pattern(TOPICS), lambda: names, look_every=1.0, clock=clock)
    assert not listed.refresh(consumer, object())  # type: ignore[arg-type]
    assert consumer.calls == []
    names |= listing("new-clinic")
    clock.now = 1.0
    assert listed.refresh(consumer, object())  # type: ignore[arg-type]
    names.difference_update(listing("new-clinic") - listing())
    clock.now = 2.0
    assert not listed.refresh(consumer, object())  # type: ignore[arg-type]
    assert consumer.calls[-1] == ("unsubscribe",)


def test_a_facility_s_submissions_are_read_too() -> None:
    names = listing() | {TOPICS.facility_submissions("st-barnabas")}
    listed = Listed(submissions_pattern(TOPICS), lambda: names)
    assert listed.wanted() == {TOPICS.facility_submissions("st-barnabas")}
