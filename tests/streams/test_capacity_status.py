"""The IG's capacity status on a capacity report (issue 18, item 19): what matching makes
of ``no-capacity``, ``waitlist`` and ``additional-assessment-required``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from schemas.events import Capacity, ServiceCapacityChanged
from streams.decisions.network_state import NetworkState
from tests.streams.fixtures import T0, eid, service

DIRECTORY_AT = T0 - timedelta(days=1)


def report(status: str, available: int | None = None) -> ServiceCapacityChanged:
    return ServiceCapacityChanged.model_validate(
        {
            "event_id": eid(30),
            "occurred_at": T0,
            "service_id": "svc-a",
            "capacity_status": status,
            "available": available,
        }
    )


def test_no_capacity_is_zero_places_left() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(report("no-capacity"))
    assert state.directory()[0].capacity == Capacity(available=0, unit="families")


@pytest.mark.parametrize("status", ["waitlist", "additional-assessment-required", "capacity"])
def test_a_status_without_a_count_makes_the_places_left_unknown(status: str) -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=0, at=DIRECTORY_AT))
    state.report_capacity(report(status))
    # unknown: the service may be offered, after every service with places left
    assert state.directory()[0].capacity is None


def test_a_count_given_with_a_status_is_the_places_left() -> None:
    state = NetworkState()
    state.upsert(service("svc-a", "org-a", available=12, at=DIRECTORY_AT))
    state.report_capacity(report("waitlist", 2))
    assert state.directory()[0].capacity == Capacity(available=2, unit="families")


def test_a_report_needs_a_count_or_a_status_and_no_capacity_has_no_places() -> None:
    with pytest.raises(ValidationError, match="available or capacity_status"):
        ServiceCapacityChanged.new(service_id="svc-a")
    with pytest.raises(ValidationError, match="no-capacity"):
        report("no-capacity", 3)
    assert report("no-capacity").available == 0
