"""Bad input is dead-lettered and skipped; repeats change nothing; crashes lose nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration


async def _one_offer(network: Network, orgs: list[str]) -> str:
    t = network.topics
    await network.provision(["mott-haven"], orgs)
    for org in orgs:
        await network.publish(t.directory, f"svc-{org}", b.service(f"svc-{org}", org))
    network.start_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", b.requested("ref-1"))
    offers = await network.read(t.org_referrals(orgs[0]), count=1)
    return str(offers[0]["referral_id"])


async def test_an_organization_updating_another_organizations_referral_is_dead_lettered(
    network: Network,
) -> None:
    t = network.topics
    await network.provision(["mott-haven"], ["bronx-pantry", "intruder-org"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", b.requested("ref-1"))
    offer = await network.read(t.org_referrals("bronx-pantry"), count=1)
    rid = offer[0]["referral_id"]
    await network.publish(
        t.org_updates("intruder-org"), rid, b.status(rid, "completed", outcome="x")
    )
    dead = await network.read(t.deadletter, count=1)
    assert dead[0]["error"]["kind"] == "authorization"
    assert dead[0]["source"]["topic"] == t.org_updates("intruder-org")
    # nothing changed: the rightful organization can still accept
    await network.publish(t.org_updates("bronx-pantry"), rid, b.status(rid, "accepted"))
    updates = await network.read(t.clinic_updates("mott-haven"), count=2)
    assert [u["status"] for u in updates] == ["requested", "accepted"]


async def test_garbage_and_an_unknown_status_are_dead_lettered_and_the_next_event_is_processed(
    network: Network,
) -> None:
    t = network.topics
    referral_id = await _one_offer(network, ["bronx-pantry"])
    updates_topic = t.org_updates("bronx-pantry")
    garbage = b"\xff\xfe not json at all"
    await network.publish(updates_topic, referral_id, garbage)
    bad_status = b.status(referral_id, "accepted").model_dump(mode="json")
    bad_status["status"] = "teleported"
    import json

    await network.publish(updates_topic, referral_id, json.dumps(bad_status).encode())
    await network.publish(
        t.clinic_submissions("mott-haven"), "pt-8c21", b'{"event_type": "screening.submitted"}'
    )
    await network.publish(updates_topic, referral_id, b.status(referral_id, "accepted"))
    dead = await network.read(t.deadletter, count=3)
    kinds = sorted(d["error"]["kind"] for d in dead)
    assert kinds == ["decode", "validation", "validation"]
    garbage_letter = next(d for d in dead if d["error"]["kind"] == "decode")
    # the dead letter names the message (size, hash, place) and shows its first bytes only
    assert garbage.startswith(base64.b64decode(garbage_letter["payload_base64"]))
    assert garbage_letter["payload_bytes"] == len(garbage)
    assert garbage_letter["payload_sha256"] == hashlib.sha256(garbage).hexdigest()
    updates = await network.read(t.clinic_updates("mott-haven"), count=2)
    assert updates[1]["status"] == "accepted"


async def test_an_illegal_status_change_is_dead_lettered_as_a_transition(network: Network) -> None:
    t = network.topics
    referral_id = await _one_offer(network, ["bronx-pantry"])
    # in-progress before accepting is not a legal move
    await network.publish(
        t.org_updates("bronx-pantry"), referral_id, b.status(referral_id, "in-progress")
    )
    dead = await network.read(t.deadletter, count=1)
    assert dead[0]["error"]["kind"] == "transition"


async def test_a_resent_event_changes_nothing(network: Network) -> None:
    t = network.topics
    referral_id = await _one_offer(network, ["bronx-pantry"])
    accepted = b.status(referral_id, "accepted")
    for _ in range(3):
        await network.publish(t.org_updates("bronx-pantry"), referral_id, accepted)
    await network.read(t.clinic_updates("mott-haven"), count=2)
    await asyncio.sleep(3)
    updates = await network.read(t.clinic_updates("mott-haven"), timeout=2)
    assert [u["status"] for u in updates] == ["requested", "accepted"]
    assert await network.read(t.deadletter, timeout=1) == []


async def test_replaying_the_inputs_from_the_beginning_produces_nothing_twice(
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
    screening = b.screening("scr-1")
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", screening)
    offers = await network.read(t.org_referrals("bronx-pantry"), count=1)
    referral_id = offers[0]["referral_id"]
    accepted = b.status(referral_id, "accepted")
    await network.publish(t.org_updates("bronx-pantry"), referral_id, accepted)
    await network.read(t.clinic_updates("mott-haven"), count=3)
    before = {
        topic: len(await network.read(topic, timeout=1))
        for topic in (
            t.org_referrals("bronx-pantry"),
            t.org_referrals("bronx-rides"),
            t.clinic_updates("mott-haven"),
            t.referral_events,
            t.screenings,
        )
    }
    # a replay: every input message again, as it was, and the worker restarted
    network.stop_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", screening)
    await network.publish(t.org_updates("bronx-pantry"), referral_id, accepted)
    network.start_worker()
    await asyncio.sleep(8)
    after = {topic: len(await network.read(topic, timeout=1)) for topic in before}
    assert after == before
    assert await network.read(t.deadletter, timeout=1) == []


async def test_a_worker_killed_mid_flow_recovers_its_tables_and_deadlines(network: Network) -> None:
    """SIGKILL the moment the offers appear, while they wait for answers: after a
    restart every referral still times out, re-routes and ends, and no service is
    offered a referral twice.

    Read as the contract tells every consumer to read: an event_id seen before has
    no second effect. Without Kafka transactions, a kill between an output's
    acknowledgement and its state's (milliseconds) delivers that output once more
    after recovery, with the same event_id; this test kills right in that window.
    """
    t = network.topics
    orgs = ["pantry-a", "pantry-b"]
    await network.provision(["mott-haven"], orgs)
    await network.publish(
        t.directory, "svc-a", b.service("svc-a", "pantry-a", available=20, response_sla="PT6S")
    )
    await network.publish(
        t.directory, "svc-b", b.service("svc-b", "pantry-b", available=10, response_sla="PT6S")
    )
    network.start_worker()
    patients = [f"pt-{i}" for i in range(6)]
    for pid in patients:
        await network.publish(
            t.clinic_submissions("mott-haven"),
            pid,
            b.screening(f"scr-{pid}", answers=b.FOOD_ONLY, patient_fields=b.patient(pid)),
        )
    await network.read(t.org_referrals("pantry-a"), count=len(patients))
    network.kill_worker()
    network.start_worker()

    def distinct(messages: list[dict]) -> list[dict]:
        seen: dict[str, dict] = {}
        for m in messages:
            seen.setdefault(m["event_id"], m)
        return list(seen.values())

    updates = distinct(
        await network.read(
            t.clinic_updates("mott-haven"),
            until=lambda vs: (
                sum(v["business_status"] == "unmatched" for v in distinct(vs)) >= len(patients)
            ),
            timeout=90,
        )
    )
    offers = [
        o
        for org in orgs
        for o in distinct(await network.read(t.org_referrals(org), timeout=1))
        if o["event_type"] == "referral.offered"
    ]
    pairs = [(o["referral_id"], o["service_id"]) for o in offers]
    assert len(pairs) == len(set(pairs)) == 2 * len(patients), sorted(pairs)
    per_referral: dict[str, list[str]] = {}
    for u in updates:
        per_referral.setdefault(u["referral_id"], []).append(u["business_status"])
    assert len(per_referral) == len(patients)
    assert all(
        seq == ["offered", "re-routed", "offered", "re-routed", "unmatched"]
        for seq in per_referral.values()
    ), per_referral
