"""A service's effective capacity, asked again and again as offers are ranked,
follows every change: an offer's reservation, its release, a new figure from the
organization or the directory, the service's removal."""

from __future__ import annotations

from datetime import timedelta

from streams.decisions.network_state import NetworkState
from tests.streams.fixtures import T0, capacity, service


def available(state: NetworkState, service_id: str) -> int | None:
    found = state.effective(state.services[service_id])
    return found.capacity.available if found.capacity else None


def test_the_same_answer_is_given_while_nothing_changed() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=5))
    state.reserve("ref-1", 1, "svc-a", T0)
    first = state.effective(state.services["svc-a"])
    assert first.capacity is not None and first.capacity.available == 4
    assert state.effective(state.services["svc-a"]) == first


def test_each_reservation_and_release_shows_at_once() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=5))
    assert available(state, "svc-a") == 5
    state.reserve("ref-1", 1, "svc-a", T0)
    assert available(state, "svc-a") == 4
    state.reserve("ref-2", 1, "svc-a", T0)
    assert available(state, "svc-a") == 3
    state.release("ref-1")
    assert available(state, "svc-a") == 4
    state.release("ref-2")
    assert available(state, "svc-a") == 5


def test_a_new_figure_shows_at_once() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=5))
    state.reserve("ref-1", 1, "svc-a", T0)
    assert available(state, "svc-a") == 4
    state.report_capacity(capacity("svc-a", 9, at=T0 + timedelta(minutes=1)))
    assert available(state, "svc-a") == 9
    state.reserve("ref-2", 1, "svc-a", T0 + timedelta(minutes=2))
    assert available(state, "svc-a") == 8
    state.upsert(service("svc-a", "org-a", available=2, at=T0 + timedelta(minutes=3)))
    assert available(state, "svc-a") == 2


def test_a_removed_service_is_forgotten() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=5))
    state.reserve("ref-1", 1, "svc-a", T0)
    assert available(state, "svc-a") == 4
    state.remove("svc-a")
    assert state._effective == {}
