"""Consent at every disclosure, referrals that end, replays that repeat, logs without PHI."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import ConsentUpdated
from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration

CLINIC = "mott-haven"


def _consent(expires_in: float | None = None, granted: bool = True) -> dict[str, object]:
    expires = (
        (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
        if expires_in is not None
        else None
    )
    return {"granted": granted, "categories": None, "expires_at": expires}


async def test_a_re_route_after_consent_expired_sends_nothing_to_the_next_organization(
    network: Network,
) -> None:
    t = network.topics
    await network.provision([CLINIC], ["first-org", "second-org", "warm-org"])
    housing = ("housing-instability",)
    await network.publish(t.directory, "svc-w", b.service("svc-w", "warm-org", categories=housing))
    await network.publish(
        t.directory, "svc-a", b.service("svc-a", "first-org", response_sla="PT4S")
    )
    await network.publish(t.directory, "svc-b", b.service("svc-b", "second-org"))
    network.start_worker()
    # warm up: once this is offered, the worker answers within milliseconds
    warm = b.requested("warm", "housing-instability", patient_fields=b.patient("pt-warm"))
    await network.publish(t.clinic_submissions(CLINIC), "pt-warm", warm)
    await network.read(t.org_referrals("warm-org"), count=1, timeout=40)
    await network.publish(
        t.clinic_submissions(CLINIC),
        "pt-8c21",
        b.requested("ref-1", consent_fields=_consent(expires_in=2), service_id="svc-a"),
    )
    offers = await network.read(t.org_referrals("first-org"), count=2, timeout=40)
    assert [o["event_type"] for o in offers] == ["referral.offered", "referral.withdrawn"]
    assert offers[1]["reason"] == "timeout"
    updates = await network.read(
        t.clinic_updates(CLINIC),
        until=lambda vs: any(v["status"] == "failed" and v["referral_id"] == "ref-1" for v in vs),
    )
    last = [u for u in updates if u["referral_id"] == "ref-1"][-1]
    assert (last["status"], last["business_status"], last["reason"]) == (
        "failed",
        "consent-required",
        "consent-expired",
    )
    assert await network.read(t.org_referrals("second-org"), timeout=3) == []


async def test_consent_updated_withdraws_an_open_offer(network: Network) -> None:
    t = network.topics
    await network.provision([CLINIC], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-1"))
    await network.read(t.org_referrals("bronx-pantry"), count=1, timeout=30)
    revoked = ConsentUpdated.new(
        patient_id="pt-8c21", consent={"granted": False, "categories": None, "expires_at": None}
    )
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", revoked)
    org = await network.read(t.org_referrals("bronx-pantry"), count=2)
    assert (org[1]["event_type"], org[1]["reason"]) == ("referral.withdrawn", "consent-withdrawn")
    updates = await network.read(t.clinic_updates(CLINIC), count=2)
    assert (updates[1]["status"], updates[1]["business_status"], updates[1]["reason"]) == (
        "failed",
        "consent-required",
        "consent-withdrawn",
    )
    # the category is free again: a new, consented referral opens
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-2"))
    offers = await network.read(t.org_referrals("bronx-pantry"), count=3)
    assert offers[2]["referral_id"] == f"{CLINIC}:ref-2"


async def test_an_accepted_referral_left_silent_expires_and_frees_its_category(
    network: Network,
) -> None:
    t = network.topics
    network.extra_env["REFNET_REFERRAL_IDLE_EXPIRY"] = "PT3S"
    await network.provision([CLINIC], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-1"))
    offer = (await network.read(t.org_referrals("bronx-pantry"), count=1, timeout=30))[0]
    rid = offer["referral_id"]
    await network.publish(t.org_updates("bronx-pantry"), rid, b.status(rid, "accepted"))
    updates = await network.read(t.clinic_updates(CLINIC), count=3, timeout=30)
    assert [u["status"] for u in updates] == ["requested", "accepted", "failed"]
    assert (updates[2]["business_status"], updates[2]["reason"]) == ("expired", "no-recent-update")
    org = await network.read(t.org_referrals("bronx-pantry"), count=2)
    assert (org[1]["event_type"], org[1]["reason"]) == ("referral.withdrawn", "expired")
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-2"))
    offers = await network.read(t.org_referrals("bronx-pantry"), count=3)
    assert offers[2]["referral_id"] == f"{CLINIC}:ref-2"


async def test_a_command_replayed_after_a_crash_re_sends_its_recorded_outputs(
    network: Network,
) -> None:
    """The worker dies right after the offer's state is durable and before the offer
    is produced; the directory then changes so that another service would win. The
    restarted worker re-sends the recorded decision (the outbox), byte for byte,
    instead of choosing again."""
    import asyncio

    t = network.topics
    await network.provision([CLINIC], ["first-org", "better-org"])
    await network.publish(t.directory, "svc-a", b.service("svc-a", "first-org", available=5))
    network.start_worker("tests.network.crashing_worker")
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-1"))
    assert network.proc is not None
    for _ in range(600):
        if network.proc.poll() is not None:
            break
        await asyncio.sleep(0.1)
    assert network.proc.returncode == 70, network.worker_log()
    network.proc = None
    assert await network.read(t.org_referrals("first-org"), timeout=2) == []
    # the directory changes: a service with far more room would now win
    await network.publish(t.directory, "svc-b", b.service("svc-b", "better-org", available=999))
    network.start_worker()
    offers = await network.read(t.org_referrals("first-org"), count=1, timeout=60)
    assert offers[0]["service_id"] == "svc-a"
    updates = await network.read(t.clinic_updates(CLINIC), count=1)
    assert (updates[0]["status"], updates[0]["service_id"]) == ("requested", "svc-a")
    await asyncio.sleep(2)
    assert len(await network.read(t.org_referrals("first-org"), timeout=1)) == 1
    assert await network.read(t.org_referrals("better-org"), timeout=2) == []


async def test_a_full_flow_logs_no_patient_data(network: Network) -> None:
    t = network.topics
    network.extra_env["REFNET_LOG_LEVEL"] = "info"
    await network.provision([CLINIC], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    secret = uuid.uuid4().hex[:6]
    patient = {
        "id": "pt-logs",
        "given_name": f"Zenobia{secret}",
        "family_name": f"Quixote{secret}",
        "phone": f"+1718555{secret[:4].translate(str.maketrans('abcdef', '123456'))}",
        "preferred_language": "en",
        "postal_code": "10451",
        "birth_date": "1961-07-13",
    }
    answers = [*b.FOOD_ONLY, {"question": "56799-0", "answer": f"{secret} Elm Street"}]
    event = b.screening("scr-logs", answers=answers, patient_fields=patient)
    await network.publish(t.clinic_submissions(CLINIC), "pt-logs", event)
    offer = (await network.read(t.org_referrals("bronx-pantry"), count=1, timeout=30))[0]
    rid = offer["referral_id"]
    await network.publish(t.org_updates("bronx-pantry"), rid, b.status(rid, "accepted"))
    # a refused update and garbage, so the error paths log too
    bad = b.status(rid, "completed", outcome=f"note about {patient['given_name']}")
    await network.publish(t.org_updates("bronx-pantry"), rid, bad.model_copy(update={}))
    await network.publish(t.clinic_submissions(CLINIC), "pt-logs", b"\xff" + secret.encode())
    await network.publish(
        t.org_updates("bronx-pantry"), rid, b.status(rid, "completed", outcome="enrolled")
    )
    await network.read(
        t.clinic_updates(CLINIC), until=lambda vs: any(v["status"] == "completed" for v in vs)
    )
    scored = await network.read(t.screenings, count=1)
    assert all("Elm Street" not in str(a["answer"]) for a in scored[0]["answers"])
    network.stop_worker()
    log = network.log_path.read_text(errors="replace")
    assert "network view ready" in log  # the capture holds the worker's log
    for value in (patient["given_name"], patient["family_name"], patient["phone"], secret):
        assert value not in log, value
    assert "1961-07-13" not in log


async def _tombstones(network: Network, table: str) -> set[str]:
    """Keys the worker deleted from a table (null values on its changelog)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        f"{network.app_id}-{table}-changelog",
        bootstrap_servers=network.bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    deleted: set[str] = set()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return deleted
            for records in batch.values():
                for r in records:
                    if r.value is None and r.key is not None:
                        deleted.add(str(json.loads(r.key)))
    finally:
        await consumer.stop()


async def test_closed_referrals_and_their_patients_leave_the_tables_after_retention(
    network: Network,
) -> None:
    import asyncio

    t = network.topics
    network.extra_env["REFNET_RETENTION"] = "PT2S"
    await network.provision([CLINIC], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    await network.publish(t.clinic_submissions(CLINIC), "pt-8c21", b.requested("ref-1"))
    rid = (await network.read(t.org_referrals("bronx-pantry"), count=1, timeout=30))[0][
        "referral_id"
    ]
    await network.publish(t.org_updates("bronx-pantry"), rid, b.status(rid, "accepted"))
    await network.publish(
        t.org_updates("bronx-pantry"), rid, b.status(rid, "completed", outcome="enrolled")
    )
    await network.read(t.clinic_updates(CLINIC), count=3)
    for _ in range(30):
        referrals = await _tombstones(network, "referrals")
        patients = await _tombstones(network, "patients")
        if rid in referrals and f"{CLINIC}:pt-8c21" in patients:
            break
        await asyncio.sleep(1)
    assert rid in referrals
    assert f"{CLINIC}:pt-8c21" in patients
    network.assert_alive()


async def test_a_deprovisioned_organization_s_referrals_re_route_or_end(network: Network) -> None:
    """Its topics vanish: a pending offer goes to the next organization, active work
    ends failed / organization-removed, and nothing waits on the missing topic."""
    import asyncio

    from connectors.kafka.admin import delete_topics

    t = network.topics
    await network.provision([CLINIC], ["leaving-org", "staying-org"])
    await network.publish(t.directory, "svc-a", b.service("svc-a", "leaving-org", available=50))
    await network.publish(t.directory, "svc-b", b.service("svc-b", "staying-org", available=5))
    network.start_worker()
    await network.publish(t.clinic_submissions(CLINIC), "pt-1", b.requested("pending-1"))
    direct = b.requested(
        "active-1", "food-insecurity", patient_fields=b.patient("pt-2"), service_id="svc-a"
    )
    await network.publish(t.clinic_submissions(CLINIC), "pt-2", direct)
    offers = await network.read(t.org_referrals("leaving-org"), count=2, timeout=40)
    active = next(o["referral_id"] for o in offers if o["referral_id"].endswith("active-1"))
    await network.publish(t.org_updates("leaving-org"), active, b.status(active, "accepted"))
    await network.read(
        t.clinic_updates(CLINIC), until=lambda vs: any(v["status"] == "accepted" for v in vs)
    )
    await asyncio.to_thread(
        delete_topics, network.bootstrap, [spec.name for spec in t.org_catalog("leaving-org")]
    )
    moved = await network.read(t.org_referrals("staying-org"), count=1, timeout=40)
    assert moved[0]["referral_id"] == f"{CLINIC}:pending-1"
    updates = await network.read(
        t.clinic_updates(CLINIC),
        until=lambda vs: any(v["business_status"] == "organization-removed" for v in vs),
        timeout=40,
    )
    ended = next(u for u in updates if u["business_status"] == "organization-removed")
    assert (ended["referral_id"], ended["status"], ended["reason"]) == (
        "active-1",
        "failed",
        "organization-removed",
    )
    rerouted = [u for u in updates if u["referral_id"] == "pending-1"]
    assert ("requested", "re-routed", "organization-removed") in [
        (u["status"], u["business_status"], u["reason"]) for u in rerouted
    ]
    network.assert_alive()
