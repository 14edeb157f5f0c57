"""The closed loop on a secured broker, each party with only its own credentials file."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7
import pytest
from hl7.mllp import open_hl7_connection

from connectors.kafka.admin import apply_topics, create_acls
from connectors.kafka.auth import KafkaAuth
from connectors.mllp import ListenerConfig, serve
from deploy.provision import (
    deprovision_party,
    network_acls,
    network_principal,
    party_principal,
    provision_network,
    provision_party,
)
from schemas.topics import Topics
from tests.conftest import SecureKafka
from tests.network import builders as b
from tests.network.conftest import ANSWER_TYPES, Network
from tests.secure_clients import consume, fresh_group, kafka_config, produce

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

CLINIC, OTHER_CLINIC, ORG = "mott-haven", "gone-clinic", "bronx-pantry"


def is_answer(value: dict[str, Any]) -> bool:
    return value.get("event_type") in ANSWER_TYPES


class SecureNetwork(Network):
    """A worker that knows only its credentials file (no REFNET_KAFKA_BOOTSTRAP either)."""

    def __init__(self, secure: SecureKafka, topics: Topics, data_dir: Path) -> None:
        super().__init__(secure.bootstrap, topics, data_dir)
        self.secure = secure
        self.admin = secure.admin(data_dir, network_user=network_principal(topics))
        self.files: dict[str, Path] = {}

    async def provision(
        self, clinics: list[str], orgs: list[str], facilities: tuple[str, ...] = ()
    ) -> None:
        def run() -> None:
            t = self.topics
            self.files["network"] = provision_network(
                self.admin, t, self.app_id, network_principal(t)
            )
            apply_topics(self.bootstrap, t.apply_catalog(self.app_id), auth=self.admin.auth)
            create_acls(
                self.bootstrap,
                network_acls(t, self.app_id, network_principal(t)),
                auth=self.admin.auth,
            )
            parties = (
                ("clinic", clinics),
                ("org", orgs),
                ("facility", list(facilities)),
                ("admin", ["importer"]),
            )
            for kind, ids in parties:
                for party in ids:
                    done = provision_party(self.admin, t, kind, party)  # type: ignore[arg-type]
                    assert done.credentials is not None
                    self.files[party] = done.credentials

        await asyncio.to_thread(run)

    def env(self) -> dict[str, str]:
        env = super().env()
        del env["REFNET_KAFKA_BOOTSTRAP"]  # the credentials file names the brokers
        env["REFNET_KAFKA_CREDENTIALS"] = str(self.files["network"])
        return env

    def party(self, name: str) -> dict[str, str]:
        return kafka_config(self.files[name])

    def group(self, kind: str, name: str) -> str:
        return fresh_group(f"{party_principal(self.topics, kind, name)}.")  # type: ignore[arg-type]

    async def send(self, name: str, topic: str, key: str, event: Any) -> None:
        outcome = await asyncio.to_thread(produce, self.party(name), topic, [(key, event)])
        assert outcome.delivered == 1, outcome.errors

    async def receive(
        self, kind: str, name: str, topic: str, *, answers: bool = False, **kw: Any
    ) -> list[dict[str, Any]]:
        """What ``name`` reads of ``topic``: the network's answers to its own messages
        only with ``answers`` (then only them)."""
        if "until" in kw:
            until = kw["until"]
            kw["until"] = lambda vs: until([v for v in vs if is_answer(v) == answers])
        outcome = await asyncio.to_thread(
            consume, self.party(name), topic, group=self.group(kind, name), **kw
        )
        assert not outcome.errors, outcome.errors
        return [v for v in outcome.values if is_answer(v) == answers]


@pytest.fixture
async def secure_network(secure_kafka: SecureKafka, database_url: str, tmp_path: Path) -> Any:
    net = SecureNetwork(
        secure_kafka, Topics(prefix=f"q{uuid.uuid4().hex[:8]}", partitions=3), tmp_path
    )
    net.pg_server = database_url
    try:
        yield net
    finally:
        await net.close()


async def test_the_closed_loop_runs_with_each_party_on_its_own_credentials(
    secure_network: SecureNetwork,
) -> None:
    net = secure_network
    t = net.topics
    await net.provision([CLINIC, OTHER_CLINIC], [ORG])
    await net.send("importer", t.directory, "svc-p", b.service("svc-p", ORG))
    net.start_worker()

    await net.send("mott-haven", t.clinic_submissions(CLINIC), "pt-1", b.requested("ref-1"))
    offers = await net.receive("org", ORG, t.org_referrals(ORG), count=1, timeout=60)
    assert offers[0]["event_type"] == "referral.offered"
    network_id = offers[0]["referral_id"]
    await net.send("bronx-pantry", t.org_updates(ORG), network_id, b.status(network_id, "accepted"))
    done = b.status(network_id, "completed", outcome="enrolled in the pantry")
    await net.send("bronx-pantry", t.org_updates(ORG), network_id, done)
    updates = await net.receive(
        "clinic",
        CLINIC,
        t.clinic_updates(CLINIC),
        until=lambda vs: any(v.get("status") == "completed" for v in vs),
        timeout=60,
    )
    assert [u["status"] for u in updates] == ["requested", "accepted", "completed"]
    assert updates[0]["business_status"] == "offered"
    net.assert_alive()


async def test_a_hospitals_adt_over_mllp_is_published_with_its_own_login_and_alerts_the_pantry(
    secure_network: SecureNetwork,
) -> None:
    """``refnet mllp`` on the secured broker: the listener's own login may not write
    a facility's topic; it publishes with the facility's credentials file."""
    net = secure_network
    t = net.topics
    hospital = "lincoln-hospital"
    await net.provision([CLINIC], [ORG], facilities=(hospital,))
    await net.send("importer", t.directory, "svc-p", b.service("svc-p", ORG))
    net.start_worker()
    ana = {
        **b.patient("pt-ana"),
        "given_name": "Ana",
        "family_name": "Rivera",
        "birth_date": "1984-03-02",
        "phone": "+17185550100",
    }
    consent = {**b.consent(), "encounter_alerts": "encounter"}
    referral = b.requested("ref-ana", patient_fields=ana, consent_fields=consent)
    await net.send(CLINIC, t.clinic_submissions(CLINIC), "pt-ana", referral)
    offers = await net.receive("org", ORG, t.org_referrals(ORG), count=1, timeout=60)
    network_id = offers[0]["referral_id"]
    await net.send(ORG, t.org_updates(ORG), network_id, b.status(network_id, "accepted"))
    await net.receive(
        "clinic",
        CLINIC,
        t.clinic_updates(CLINIC),
        until=lambda vs: any(v.get("status") == "accepted" for v in vs),
        timeout=60,
    )

    stop = asyncio.Event()
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    _, network_auth = KafkaAuth.from_file(net.files["network"])
    listener = asyncio.create_task(
        serve(
            ListenerConfig(topics=t, port=0),
            net.bootstrap,
            stop,
            auth=network_auth,
            credentials_dir=net.data_dir / "credentials",
            on_listening=lambda host, port: bound.set_result((host, port)),
        )
    )
    try:
        host, port = await asyncio.wait_for(bound, 60)
        reader, writer = await open_hl7_connection(host, port)
        segments = [
            f"MSH|^~\\&|EPIC|{hospital}|REFNET|REFNET|20261127031209-0500||ADT^A01^ADT_A01|"
            "SEC-1|P|2.5.1",
            "EVN|A01|20261127031200-0500",
            "PID|1||MRN-1^^^LINCOLN^MR||Rivera^Ana||19840302|F|||^^^^10451||^PRN^PH^^1^718^5550100",
            "PV1|1|E|||||||||||||||||V-SEC-1",
        ]
        writer.writemessage(hl7.parse("\r".join(segments)))
        await writer.drain()
        ack = await asyncio.wait_for(reader.readmessage(), 30)
        writer.close()
        assert str(ack["MSA.F1"]) == "AA", str(ack)
    finally:
        stop.set()
        await listener
    alerts = await net.receive(
        "org",
        ORG,
        t.org_referrals(ORG),
        until=lambda vs: any(v.get("event_type") == "encounter.alerted" for v in vs),
        timeout=60,
    )
    [alert] = [a for a in alerts if a["event_type"] == "encounter.alerted"]
    assert (alert["referral_id"], alert["event"]) == (network_id, "ed-visit")
    net.assert_alive()


async def test_a_deprovisioned_clinic_never_blocks_the_worker_or_its_shutdown(
    secure_network: SecureNetwork,
) -> None:
    """The other clinic is deprovisioned (credentials, ACLs and topics gone) while its
    referral is open; the organization's answer then has nowhere to go. The worker
    goes on with everyone else and still stops on SIGTERM within its grace period."""
    net = secure_network
    t = net.topics
    net.extra_env["REFNET_SHUTDOWN_GRACE"] = "10"
    await net.provision([CLINIC, OTHER_CLINIC], [ORG])
    await net.send("importer", t.directory, "svc-p", b.service("svc-p", ORG))
    net.start_worker()
    await net.send(OTHER_CLINIC, t.clinic_submissions(OTHER_CLINIC), "pt-9", b.requested("ref-9"))
    offers = await net.receive("org", ORG, t.org_referrals(ORG), count=1, timeout=60)
    gone_id = offers[0]["referral_id"]
    await asyncio.to_thread(deprovision_party, net.admin, t, "clinic", OTHER_CLINIC)
    await net.send("bronx-pantry", t.org_updates(ORG), gone_id, b.status(gone_id, "accepted"))

    await net.send("mott-haven", t.clinic_submissions(CLINIC), "pt-1", b.requested("ref-1"))
    offers = await net.receive(
        "org",
        ORG,
        t.org_referrals(ORG),
        until=lambda vs: any(v["referral_id"].startswith(f"{CLINIC}:") for v in vs),
        timeout=60,
    )
    mine = next(v["referral_id"] for v in offers if v["referral_id"].startswith(f"{CLINIC}:"))
    await net.send("bronx-pantry", t.org_updates(ORG), mine, b.status(mine, "accepted"))
    updates = await net.receive(
        "clinic",
        CLINIC,
        t.clinic_updates(CLINIC),
        until=lambda vs: any(v.get("status") == "accepted" for v in vs),
        timeout=60,
    )
    assert [u["status"] for u in updates] == ["requested", "accepted"]
    net.assert_alive()
    assert net.proc is not None
    started = time.monotonic()
    net.stop_worker()
    assert time.monotonic() - started < 15, net.worker_log()


async def test_each_party_hears_the_answer_to_its_own_messages_within_seconds(
    secure_network: SecureNetwork,
) -> None:
    """Every refusal kind, a screening with only an unknown answer, and a late acceptance
    after a time-out: one answer each on the sender's own topic, read with its own
    credentials, naming its message and the rule, with no payload value and nothing
    about another party."""
    net = secure_network
    t = net.topics
    net.extra_env["REFNET_MAX_MESSAGE_BYTES"] = "4096"
    other = "harlem-food"
    await net.provision([CLINIC], [ORG, other])
    await net.send("importer", t.directory, "svc-p", b.service("svc-p", ORG, response_sla="PT2S"))
    await net.send("importer", t.directory, "svc-h", b.service("svc-h", other, categories=()))
    net.start_worker()

    # a late acceptance: the offer times out (PT2S) and is withdrawn, then accepted
    await net.send(CLINIC, t.clinic_submissions(CLINIC), "pt-1", b.requested("ref-1"))
    seen = await net.receive(
        "org",
        ORG,
        t.org_referrals(ORG),
        until=lambda vs: any(v["event_type"] == "referral.withdrawn" for v in vs),
        timeout=60,
    )
    offered, withdrawn = seen[0], seen[-1]
    assert withdrawn["reason"] == "timeout"
    network_id = offered["referral_id"]
    await net.send(ORG, t.org_updates(ORG), network_id, b.status(network_id, "accepted"))
    # another organization names that referral; and reports capacity of a service not its own
    await net.send(other, t.org_updates(other), network_id, b.status(network_id, "accepted"))
    await net.send(other, t.org_updates(other), "svc-p", b.capacity("svc-p", 0))

    # the clinic: a screening with only an unknown answer, and each edge refusal
    unknown = b.screening("scr-u", answers=[{"question": "96779-4", "answer": "LA9999-9"}])
    future = b.screening("scr-f").model_copy(
        update={"occurred_at": datetime(2099, 1, 1, tzinfo=UTC)}
    )
    big = b.screening("scr-big").model_dump(mode="json") | {"padding": "x" * 5000}
    sent_at_ms = time.time() * 1000
    messages: list[tuple[str | None, Any]] = [
        ("pt-1", unknown),
        ("pt-1", json.dumps(big).encode()),  # limit: size
        ("pt-1", b"{not json"),  # decode
        ("pt-1", b'{"a": ' * 40 + b"1" + b"}" * 40),  # limit: nesting
        ("pt-1", b'{"event_type": "screening.submitted", "screening_id": "scr-v"}'),  # validation
        ("pt-1", future),  # limit: clock skew
        ("pt-1", b.cancelled("ref-404")),  # unknown referral
    ]
    outcome = await asyncio.to_thread(
        produce, net.party(CLINIC), t.clinic_submissions(CLINIC), messages
    )
    assert outcome.delivered == 7, outcome.errors

    clinic = await net.receive(
        "clinic",
        CLINIC,
        t.clinic_updates(CLINIC),
        answers=True,
        until=lambda vs: len(vs) >= 7,
        timeout=30,
        timestamps=True,
    )
    for a in clinic:  # what the clinic's own client read (--log-cli-level=INFO shows it)
        log.info("clinic read: %s", json.dumps({k: v for k, v in a.items() if k[0] != "_"}))
    # each answer was on the clinic's topic within 5 s of the clinic's sending
    assert [round((a["_timestamp_ms"] - sent_at_ms) / 1000, 1) < 5 for a in clinic] == [True] * 7
    answered = [a for a in clinic if a["event_type"] == "screening.answered"]
    assert len(answered) == 1
    assert answered[0]["needs"] == [] and answered[0]["referrals"] == []
    assert {"kind": "unknown-answer", "question": "96779-4"} in answered[0]["problems"]
    refusals = sorted(
        (a for a in clinic if a["event_type"] == "message.refused"),
        key=lambda r: r["source"]["offset"],
    )
    assert [r["error"]["kind"] for r in refusals] == [
        "limit",
        "decode",
        "limit",
        "validation",
        "limit",
        "unknown-referral",
    ]
    by_kind = {r["error"]["kind"]: r for r in refusals}
    assert "REFNET_MAX_MESSAGE_BYTES" in refusals[0]["error"]["rule"]
    assert "nested deeper than" in refusals[2]["error"]["rule"]
    assert by_kind["unknown-referral"]["referral_id"] == "ref-404"
    assert all(r["source"]["topic"] == t.clinic_submissions(CLINIC) for r in refusals)
    for value in clinic:
        text = json.dumps(value)
        assert "LA9999-9" not in text and "xxxx" not in text and "Ana" not in text

    mine = await net.receive(
        "org", ORG, t.org_referrals(ORG), answers=True, until=lambda vs: len(vs) >= 1, timeout=30
    )
    [late] = mine
    log.info("org read: %s", json.dumps(late))
    assert late["error"]["kind"] == "transition"
    assert late["referral_state"]["offer"] == "withdrawn"
    assert late["referral_state"]["withdrawn_event_id"] == withdrawn["event_id"]
    assert late["refused_event_type"] == "referral.status-changed"

    theirs = await net.receive(
        "org",
        other,
        t.org_referrals(other),
        answers=True,
        until=lambda vs: len(vs) >= 2,
        timeout=30,
    )
    for a in theirs:
        log.info("other org read: %s", json.dumps(a))
    assert sorted(a["error"]["kind"] for a in theirs) == ["authorization", "authorization"]
    assert {"offer": "not-offered"}.items() <= next(
        a["referral_state"] for a in theirs if a["referral_state"]
    ).items()
    for value in theirs:
        assert ORG not in json.dumps(value) and "Ana" not in json.dumps(value)
    # exactly one answer per message, even a while later
    await asyncio.sleep(2)
    again = await net.receive("org", other, t.org_referrals(other), answers=True, timeout=5)
    assert len(again) == 2
    again = await net.receive("clinic", CLINIC, t.clinic_updates(CLINIC), answers=True, timeout=5)
    assert len(again) == 7
    net.assert_alive()
