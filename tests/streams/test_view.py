"""The network view's pure part: the directory, reported capacity, and each org's record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from schemas.events import Capacity, ReferralStateChanged
from streams.decisions.matching import OrgRecord
from streams.decisions.network_state import NetworkState
from tests.streams.fixtures import CLINIC, PATIENT_ID, T0, capacity, eid, service

DIRECTORY_AT = T0 - timedelta(days=1)


def changed(
    *,
    to_status: str,
    actor: str,
    business_status: str | None = None,
    org_id: str | None = "org-a",
    service_id: str | None = "svc-a",
    reason: str | None = None,
    n: int = 1,
) -> ReferralStateChanged:
    fields: dict[str, Any] = {
        "event_id": eid(500 + n),
        "occurred_at": T0,
        "referral_id": f"ref-{n}",
        "patient_id": PATIENT_ID,
        "clinic_id": CLINIC,
        "category": "food-insecurity",
        "from_status": "requested",
        "to_status": to_status,
        "business_status": business_status,
        "org_id": org_id,
        "service_id": service_id,
        "reason": reason,
        "attempt": 1,
        "actor": actor,
    }
    return ReferralStateChanged.model_validate(fields)


def offered(service_id: str = "svc-a", org_id: str = "org-a", n: int = 1) -> ReferralStateChanged:
    return changed(
        to_status="requested",
        actor="network",
        business_status="offered",
        org_id=org_id,
        service_id=service_id,
        n=n,
    )


# ---------------------------------------------------------------- directory
def test_upsert_adds_and_replaces_a_service_by_id() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=3, at=DIRECTORY_AT))
    state.upsert(service("svc-b", "org-b"))
    newer = service("svc-a", "org-a", available=9, at=T0)
    state.upsert(newer)
    assert sorted(state.services) == ["svc-a", "svc-b"]
    assert state.services["svc-a"] == newer
    assert [s.service_id for s in state.directory()] == ["svc-a", "svc-b"]


def test_remove_drops_a_service_and_ignores_an_unknown_one() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a"))
    state.remove("svc-a")
    state.remove("svc-never")
    assert state.services == {}
    assert state.directory() == []


# ---------------------------------------------------------------- capacity
def test_capacity_report_newer_than_the_directory_record_overrides_it() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(capacity("svc-a", 0, at=DIRECTORY_AT + timedelta(hours=1)))
    [effective] = state.directory()
    assert effective.capacity == Capacity(available=0, unit="families")
    assert effective.service_id == "svc-a"
    # the directory record itself is kept as published
    assert state.services["svc-a"].capacity == Capacity(available=12, unit="families")


def test_capacity_report_at_the_same_time_as_the_directory_record_wins() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(capacity("svc-a", 4, at=DIRECTORY_AT))
    assert state.directory()[0].capacity == Capacity(available=4, unit="families")


def test_capacity_report_older_than_the_directory_record_is_ignored() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(capacity("svc-a", 0, at=DIRECTORY_AT - timedelta(seconds=1)))
    assert state.directory()[0].capacity == Capacity(available=12, unit="families")


def test_capacity_report_applies_to_a_service_published_without_capacity() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=None, at=DIRECTORY_AT))
    state.report_capacity(capacity("svc-a", 7, at=T0))
    assert state.directory()[0].capacity == Capacity(available=7, unit=None)


def test_an_older_capacity_report_does_not_replace_a_newer_one() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(capacity("svc-a", 5, at=T0))
    state.report_capacity(capacity("svc-a", 1, at=T0 - timedelta(minutes=1)))
    assert state.directory()[0].capacity == Capacity(available=5, unit="families")
    state.report_capacity(capacity("svc-a", 2, at=T0 + timedelta(minutes=1)))
    assert state.directory()[0].capacity == Capacity(available=2, unit="families")


def test_a_newer_directory_record_overrides_an_older_capacity_report() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(capacity("svc-a", 0, at=T0))
    state.upsert(service("svc-a", "org-a", available=30, at=T0 + timedelta(hours=1)))
    assert state.directory()[0].capacity == Capacity(available=30, unit="families")


def test_capacity_of_another_service_changes_nothing() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(capacity("svc-b", 0, at=T0))
    assert state.directory()[0].capacity == Capacity(available=12, unit="families")


# ---------------------------------------------------------------- record
def test_org_answers_count_as_on_time() -> None:
    state = NetworkState()
    state.record(changed(to_status="accepted", actor="organization", n=1))
    state.record(changed(to_status="rejected", actor="organization", reason="no-capacity", n=2))
    state.record(changed(to_status="accepted", actor="organization", org_id="org-b", n=3))
    assert state.on_time == {"org-a": 2, "org-b": 1}
    assert state.timed_out == {}
    assert state.org_stats() == {
        "org-a": OrgRecord(answered_in_time=2, timed_out=0),
        "org-b": OrgRecord(answered_in_time=1, timed_out=0),
    }


def test_other_org_moves_are_not_answers() -> None:
    state = NetworkState()
    for n, to in enumerate(["in-progress", "on-hold", "completed", "failed", "cancelled"]):
        state.record(changed(to_status=to, actor="organization", reason="other", n=n))
    state.record(changed(to_status="cancelled", actor="clinic", reason="other", n=9))
    assert state.org_stats() == {}


def test_network_timeouts_count_against_the_org() -> None:
    state = NetworkState()
    state.record(
        changed(
            to_status="requested", actor="network", business_status="re-routed", reason="timeout"
        )
    )
    assert state.org_stats() == {"org-a": OrgRecord(answered_in_time=0, timed_out=1)}


def test_a_timeout_reason_from_anyone_but_the_network_is_not_a_timeout() -> None:
    state = NetworkState()
    state.record(changed(to_status="cancelled", actor="clinic", reason="timeout"))
    state.record(
        changed(
            to_status="requested",
            actor="network",
            business_status="re-routed",
            reason="no-capacity",
            n=2,
        )
    )
    assert state.org_stats() == {}


def test_changes_without_an_org_are_not_counted_against_anyone() -> None:
    state = NetworkState()
    state.record(
        changed(
            to_status="failed",
            actor="network",
            business_status="unmatched",
            reason="timeout",
            org_id=None,
            service_id=None,
        )
    )
    assert state.org_stats() == {}
    assert state.load() == {}


def test_offers_are_counted_per_service_as_load() -> None:
    state = NetworkState()
    state.record(offered("svc-a", n=1))
    state.record(offered("svc-a", n=2))
    state.record(offered("svc-b", org_id="org-b", n=3))
    # a re-route or an answer is not an offer
    state.record(
        changed(to_status="requested", actor="network", business_status="re-routed", reason="x")
    )
    state.record(changed(to_status="accepted", actor="organization", n=4))
    assert state.load() == {"svc-a": 2, "svc-b": 1}


def test_stats_and_load_are_read_only_views() -> None:
    """No copy per command (the referral owner reads them for every offer), and no
    caller can change the view through them."""
    state = NetworkState()
    state.record(offered())
    state.record(changed(to_status="accepted", actor="organization"))
    load = state.load()
    with pytest.raises(TypeError):
        load["svc-a"] = 99  # type: ignore[index]
    assert state.load() == {"svc-a": 1}
    stats = state.org_stats()
    with pytest.raises(TypeError):
        stats["org-a"] = OrgRecord()  # type: ignore[index]
    assert state.org_stats() == {"org-a": OrgRecord(answered_in_time=1, timed_out=0)}
    state.record(changed(to_status="accepted", actor="organization", n=2))
    assert state.org_stats()["org-a"].answered_in_time == 2  # rebuilt after a change


def test_a_fresh_view_knows_nothing() -> None:
    state = NetworkState()
    assert (state.directory(), state.org_stats(), state.load()) == ([], {}, {})


def test_the_directory_is_rebuilt_after_every_kind_of_change() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=5, at=T0))
    assert [s.service_id for s in state.directory()] == ["svc-a"]
    state.upsert(service("svc-b", "org-b", available=5, at=T0))
    assert sorted(s.service_id for s in state.directory()) == ["svc-a", "svc-b"]
    state.report_capacity(capacity("svc-a", 0, at=T0 + timedelta(minutes=1)))
    available = {s.service_id: s.capacity.available for s in state.directory() if s.capacity}
    assert available == {"svc-a": 0, "svc-b": 5}
    state.remove("svc-b")
    assert [s.service_id for s in state.directory()] == ["svc-a"]
    assert state.directory() is state.directory()  # unchanged: not rebuilt


def test_services_of_organizations_without_a_referrals_topic_are_left_out() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=5, at=T0))
    state.upsert(service("svc-b", "org-b", available=5, at=T0))
    assert len(state.directory()) == 2  # not known yet: nothing filtered
    state.set_reachable(frozenset({"org-a"}))
    assert [s.service_id for s in state.directory()] == ["svc-a"]
    state.set_reachable(frozenset({"org-a", "org-b"}))  # org-b provisioned later
    assert sorted(s.service_id for s in state.directory()) == ["svc-a", "svc-b"]


# ---------------------------------------------------------------- the event log's fast path
async def test_the_event_log_counts_state_changes_and_passes_over_the_rest() -> None:
    from schemas.topics import Topics
    from streams.runtime.view import NetworkView

    topics = Topics(prefix="t", partitions=3)
    view = NetworkView("127.0.0.1:1", topics)
    log = topics.referral_events
    answer = changed(to_status="accepted", actor="organization", n=1).model_dump_json()
    await view._apply(log, 0, 0, b"r", answer.encode())
    await view._apply(log, 0, 1, b"r", offered(n=2).model_dump_json().encode())
    # not a state change; unreadable; a tombstone; oversized: no effect, no exception
    await view._apply(log, 0, 2, b"r", b'{"event_type": "screening.scored"}')
    await view._apply(log, 0, 3, b"r", b'{"event_type": "referral.state-changed", "x": ')
    await view._apply(log, 0, 4, b"r", None)
    await view._apply(log, 0, 5, b"r", b'"referral.state-changed"' + b" " * (300 * 1024))
    assert view.state.org_stats() == {"org-a": OrgRecord(answered_in_time=1, timed_out=0)}
    assert view.state.load() == {"svc-a": 1}
