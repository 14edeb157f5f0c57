"""Screenings become referrals offered to the right services (real broker, real worker)."""

from __future__ import annotations

import pytest

from tests.network import builders as b
from tests.network.conftest import Network
from tests.network.placed import placed_id

pytestmark = pytest.mark.integration


async def test_a_screening_with_two_needs_is_offered_to_two_right_services(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry", "bronx-rides", "far-pantry"])
    await network.publish(t.directory, "svc-pantry", b.service("svc-pantry", "bronx-pantry"))
    await network.publish(
        t.directory,
        "svc-rides",
        b.service("svc-rides", "bronx-rides", categories=("transportation-insecurity",)),
    )
    await network.publish(
        t.directory, "svc-far", b.service("svc-far", "far-pantry", postal_codes=("90012",))
    )
    network.start_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", b.screening("scr-1"))

    pantry = await network.read(t.org_referrals("bronx-pantry"), count=1)
    rides = await network.read(t.org_referrals("bronx-rides"), count=1)
    assert pantry[0]["event_type"] == "referral.offered"
    assert pantry[0]["category"] == "food-insecurity"
    assert pantry[0]["service_id"] == "svc-pantry"
    assert rides[0]["category"] == "transportation-insecurity"
    # minimum necessary: no birth date, no answers, no other needs
    assert set(pantry[0]["patient"]) == {"given_name", "phone", "preferred_language", "postal_code"}
    assert await network.read(t.org_referrals("far-pantry"), timeout=2) == []

    updates = await network.read(t.clinic_updates("mott-haven"), count=2)
    assert {(u["category"], u["status"], u["business_status"], u["attempt"]) for u in updates} == {
        ("food-insecurity", "requested", "offered", 1),
        ("transportation-insecurity", "requested", "offered", 1),
    }
    assert all(u["screening_id"] == "scr-1" and u["patient_id"] == "pt-8c21" for u in updates)
    scored = await network.read(t.screenings, count=1)
    assert {n["category"] for n in scored[0]["needs"]} == {
        "food-insecurity",
        "transportation-insecurity",
    }


async def test_a_spanish_speaker_goes_to_the_spanish_speaking_pantry_first(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["english-pantry", "spanish-pantry"])
    # the English-only pantry has more capacity: language still comes first
    await network.publish(
        t.directory,
        "svc-en",
        b.service("svc-en", "english-pantry", languages=("en",), available=50),
    )
    await network.publish(
        t.directory,
        "svc-es",
        b.service("svc-es", "spanish-pantry", languages=("en", "es"), available=3),
    )
    network.start_worker()
    spanish = b.patient("pt-es", language="es")
    await network.publish(
        t.clinic_submissions("mott-haven"),
        "pt-es",
        b.screening("scr-es", answers=b.FOOD_ONLY, patient_fields=spanish),
    )
    offers = await network.read(t.org_referrals("spanish-pantry"), count=1)
    assert offers[0]["patient"]["preferred_language"] == "es"
    assert await network.read(t.org_referrals("english-pantry"), timeout=2) == []


async def test_a_postal_code_no_service_covers_ends_unmatched(network: Network) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry"])
    await network.publish(t.directory, "svc-pantry", b.service("svc-pantry", "bronx-pantry"))
    network.start_worker()
    faraway = b.patient("pt-la", postal_code="90012")
    await network.publish(
        t.clinic_submissions("mott-haven"),
        "pt-la",
        b.screening("scr-la", answers=b.FOOD_ONLY, patient_fields=faraway),
    )
    updates = await network.read(t.clinic_updates("mott-haven"), count=1)
    assert (updates[0]["status"], updates[0]["business_status"]) == ("failed", "unmatched")
    assert await network.read(t.org_referrals("bronx-pantry"), timeout=2) == []


async def test_a_clinicians_request_for_a_service_is_honoured(network: Network) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["big-pantry", "small-pantry"])
    await network.publish(t.directory, "svc-big", b.service("svc-big", "big-pantry", available=90))
    await network.publish(
        t.directory, "svc-small", b.service("svc-small", "small-pantry", available=2)
    )
    network.start_worker()
    await network.publish(
        t.clinic_submissions("mott-haven"),
        "pt-8c21",
        b.requested("ref-clinic-42", service_id="svc-small"),
    )
    offers = await network.read(t.org_referrals("small-pantry"), count=1)
    # organizations see the network's id, scoped by the clinic (ids may collide across clinics)
    assert offers[0]["referral_id"] == "mott-haven:ref-clinic-42"
    updates = await network.read(t.clinic_updates("mott-haven"), count=1)
    assert updates[0]["referral_id"] == "ref-clinic-42"


async def test_a_clinic_provisioned_while_the_worker_runs_is_read(network: Network) -> None:
    t = network.topics
    await network.provision([], ["bronx-pantry"])
    await network.publish(t.directory, "svc-pantry", b.service("svc-pantry", "bronx-pantry"))
    network.start_worker()
    await network.read(t.directory, count=1)  # worker is up and reading
    import asyncio

    await asyncio.sleep(3)
    await network.provision(["new-clinic"], [])
    start = asyncio.get_running_loop().time()
    await network.publish(
        t.clinic_submissions("new-clinic"), "pt-1", b.screening("scr-new", answers=b.FOOD_ONLY)
    )
    await network.read(t.org_referrals("bronx-pantry"), count=1, timeout=20)
    elapsed = asyncio.get_running_loop().time() - start
    assert elapsed < 10, f"new clinic read after {elapsed:.1f}s"


async def test_capacity_reported_by_an_organization_steers_the_next_offer(network: Network) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["big-pantry", "small-pantry"])
    await network.publish(t.directory, "svc-big", b.service("svc-big", "big-pantry", available=50))
    await network.publish(
        t.directory, "svc-small", b.service("svc-small", "small-pantry", available=5)
    )
    network.start_worker()
    sub = t.clinic_submissions("mott-haven")
    await network.publish(sub, "pt-1", b.requested("ref-1", patient_fields=b.patient("pt-1")))
    first = await network.read(t.org_referrals("big-pantry"), count=1)
    assert first[0]["referral_id"] == "mott-haven:ref-1"
    # the big pantry is full now; another organization cannot speak for its service
    await network.publish(t.org_updates("small-pantry"), "svc-big", b.capacity("svc-big", 99))
    await network.publish(t.org_updates("big-pantry"), "svc-big", b.capacity("svc-big", 0))
    dead = await network.read(t.deadletter, count=1)
    assert dead[0]["error"]["kind"] == "authorization"
    import asyncio

    await asyncio.sleep(2)  # the capacity report reaches every worker's view
    await network.publish(sub, "pt-2", b.requested("ref-2", patient_fields=b.patient("pt-2")))
    small = await network.read(t.org_referrals("small-pantry"), count=1)
    assert small[0]["referral_id"] == "mott-haven:ref-2"


async def test_a_service_removed_from_the_directory_is_no_longer_offered(network: Network) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["gone-pantry", "bronx-pantry"])
    await network.publish(
        t.directory, "svc-gone", b.service("svc-gone", "gone-pantry", available=90)
    )
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry", available=5))
    await network.publish(t.directory, "svc-gone", None)  # tombstone: compacted away
    network.start_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-1", b.requested("ref-1"))
    assert len(await network.read(t.org_referrals("bronx-pantry"), count=1)) == 1
    assert await network.read(t.org_referrals("gone-pantry"), timeout=2) == []


async def test_two_clinics_using_the_same_ids_get_two_separate_referrals(network: Network) -> None:
    t = network.topics
    await network.provision(["clinic-a", "clinic-b"], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    for clinic in ("clinic-a", "clinic-b"):
        await network.publish(
            t.clinic_submissions(clinic), "pt-1", b.screening("scr-0001", answers=b.FOOD_ONLY)
        )
    offers = await network.read(t.org_referrals("bronx-pantry"), count=2)
    assert sorted(o["referral_id"] for o in offers) == [
        placed_id(t, "clinic-a", "scr-0001", "pt-8c21"),
        placed_id(t, "clinic-b", "scr-0001", "pt-8c21"),
    ]
    for clinic in ("clinic-a", "clinic-b"):
        updates = await network.read(t.clinic_updates(clinic), count=1)
        assert updates[0]["referral_id"] == "scr-0001.food-insecurity"
        assert updates[0]["business_status"] == "offered"


async def test_a_service_of_an_unprovisioned_organization_is_skipped_not_fatal(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry"])
    # in the directory, but its organization's topics were never provisioned
    await network.publish(
        t.directory, "svc-ghost", b.service("svc-ghost", "ghost-org", available=99)
    )
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry", available=5))
    network.start_worker()
    sub = t.clinic_submissions("mott-haven")
    await network.publish(sub, "pt-1", b.requested("ref-1", patient_fields=b.patient("pt-1")))
    offers = await network.read(t.org_referrals("bronx-pantry"), count=1)
    assert offers[0]["service_id"] == "svc-p"
    # and the network goes on
    await network.publish(sub, "pt-2", b.requested("ref-2", patient_fields=b.patient("pt-2")))
    assert len(await network.read(t.org_referrals("bronx-pantry"), count=2)) == 2
