"""Referrals follow their lifecycle: re-routing, time-outs, cancellation, consent."""

from __future__ import annotations

import pytest

from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration


def steps(updates: list[dict]) -> list[tuple]:
    return [
        (u["status"], u["business_status"], u["org_id"], u["attempt"], u["reason"]) for u in updates
    ]


async def test_a_rejection_re_routes_to_the_next_pantry_which_accepts_and_completes(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["first-pantry", "second-pantry"])
    await network.publish(t.directory, "svc-1", b.service("svc-1", "first-pantry", available=20))
    await network.publish(t.directory, "svc-2", b.service("svc-2", "second-pantry", available=5))
    network.start_worker()
    await network.publish(
        t.clinic_submissions("mott-haven"), "pt-8c21", b.screening("scr-1", answers=b.FOOD_ONLY)
    )
    first = await network.read(t.org_referrals("first-pantry"), count=1)
    referral_id = first[0]["referral_id"]
    await network.publish(
        t.org_updates("first-pantry"), referral_id, b.status(referral_id, "rejected", "no-capacity")
    )
    second = await network.read(t.org_referrals("second-pantry"), count=1)
    assert second[0]["referral_id"] == referral_id
    await network.publish(
        t.org_updates("second-pantry"), referral_id, b.status(referral_id, "accepted")
    )
    await network.read(t.clinic_updates("mott-haven"), count=4)
    await network.publish(
        t.org_updates("second-pantry"),
        referral_id,
        b.status(referral_id, "completed", outcome="enrolled in weekly pantry"),
    )
    updates = await network.read(t.clinic_updates("mott-haven"), count=5)
    assert steps(updates) == [
        ("requested", "offered", "first-pantry", 1, None),
        ("requested", "re-routed", "first-pantry", 1, "no-capacity"),
        ("requested", "offered", "second-pantry", 2, None),
        ("accepted", None, "second-pantry", 2, None),
        ("completed", None, "second-pantry", 2, None),
    ]
    assert updates[-1]["outcome"] == "enrolled in weekly pantry"
    events = await network.read(t.referral_events, count=5)
    assert [e["to_status"] for e in events] == [
        "requested",
        "rejected",
        "requested",
        "accepted",
        "completed",
    ]


async def test_unanswered_offers_time_out_re_route_and_finally_end_unmatched(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["slow-pantry", "slower-pantry"])
    await network.publish(
        t.directory, "svc-a", b.service("svc-a", "slow-pantry", available=20, response_sla="PT2S")
    )
    await network.publish(
        t.directory, "svc-b", b.service("svc-b", "slower-pantry", available=5, response_sla="PT2S")
    )
    network.start_worker()
    await network.publish(
        t.clinic_submissions("mott-haven"), "pt-8c21", b.screening("scr-1", answers=b.FOOD_ONLY)
    )
    slow = await network.read(t.org_referrals("slow-pantry"), count=2, timeout=30)
    assert [m["event_type"] for m in slow] == ["referral.offered", "referral.withdrawn"]
    assert slow[1]["reason"] == "timeout"
    slower = await network.read(t.org_referrals("slower-pantry"), count=2, timeout=30)
    assert [m["event_type"] for m in slower] == ["referral.offered", "referral.withdrawn"]
    updates = await network.read(t.clinic_updates("mott-haven"), count=5, timeout=30)
    assert steps(updates) == [
        ("requested", "offered", "slow-pantry", 1, None),
        ("requested", "re-routed", "slow-pantry", 1, "timeout"),
        ("requested", "offered", "slower-pantry", 2, None),
        ("requested", "re-routed", "slower-pantry", 2, "timeout"),
        ("failed", "unmatched", None, 2, "no-matching-service"),
    ]
    # withdrawn within 2 s of respond_by
    from datetime import datetime

    due = datetime.fromisoformat(slow[0]["respond_by"])
    withdrawn = datetime.fromisoformat(slow[1]["occurred_at"])
    assert 0 <= (withdrawn - due).total_seconds() < 2


async def test_a_clinic_cancellation_withdraws_the_offer(network: Network) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", b.requested("ref-42"))
    await network.read(t.org_referrals("bronx-pantry"), count=1)
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", b.cancelled("ref-42"))
    org = await network.read(t.org_referrals("bronx-pantry"), count=2)
    assert org[1]["event_type"] == "referral.withdrawn"
    assert org[1]["reason"] == "cancelled-by-clinic"
    updates = await network.read(t.clinic_updates("mott-haven"), count=2)
    assert (updates[1]["status"], updates[1]["reason"]) == ("cancelled", "patient moved")


async def test_without_consent_the_clinic_hears_consent_required_and_no_org_hears_anything(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry", "bronx-rides"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    await network.publish(
        t.directory,
        "svc-r",
        b.service("svc-r", "bronx-rides", categories=("transportation-insecurity",)),
    )
    network.start_worker()
    await network.publish(
        t.clinic_submissions("mott-haven"),
        "pt-8c21",
        b.screening("scr-1", consent_fields=b.consent(granted=False)),
    )
    updates = await network.read(t.clinic_updates("mott-haven"), count=2)
    assert {(u["category"], u["status"], u["business_status"]) for u in updates} == {
        ("food-insecurity", "failed", "consent-required"),
        ("transportation-insecurity", "failed", "consent-required"),
    }
    assert await network.read(t.org_referrals("bronx-pantry"), timeout=2) == []
    assert await network.read(t.org_referrals("bronx-rides"), timeout=1) == []


async def test_consent_for_food_only_opens_only_the_food_referral(network: Network) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry", "bronx-rides"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    await network.publish(
        t.directory,
        "svc-r",
        b.service("svc-r", "bronx-rides", categories=("transportation-insecurity",)),
    )
    network.start_worker()
    await network.publish(
        t.clinic_submissions("mott-haven"),
        "pt-8c21",
        b.screening("scr-1", consent_fields=b.consent(["food-insecurity"])),
    )
    updates = await network.read(t.clinic_updates("mott-haven"), count=2)
    assert {(u["category"], u["business_status"]) for u in updates} == {
        ("food-insecurity", "offered"),
        ("transportation-insecurity", "consent-required"),
    }
    assert len(await network.read(t.org_referrals("bronx-pantry"), count=1)) == 1
    assert await network.read(t.org_referrals("bronx-rides"), timeout=2) == []


async def test_a_second_screening_with_the_same_open_need_opens_no_second_referral(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    sub = t.clinic_submissions("mott-haven")
    await network.publish(sub, "pt-8c21", b.screening("scr-1", answers=b.FOOD_ONLY))
    await network.read(t.org_referrals("bronx-pantry"), count=1)
    await network.publish(sub, "pt-8c21", b.screening("scr-2", answers=b.FOOD_ONLY))
    updates = await network.read(t.clinic_updates("mott-haven"), count=2)
    dup = updates[1]
    assert (dup["status"], dup["business_status"], dup["reason"]) == (
        "cancelled",
        "duplicate",
        "duplicate-open-referral",
    )
    assert dup["duplicate_of"] == updates[0]["referral_id"]
    assert len(await network.read(t.org_referrals("bronx-pantry"), timeout=2)) == 1
