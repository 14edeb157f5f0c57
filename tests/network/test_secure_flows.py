"""The closed loop on a secured broker, each party with only its own credentials file."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from connectors.kafka.admin import apply_topics, create_acls
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
from tests.network.conftest import Network
from tests.secure_clients import consume, fresh_group, kafka_config, produce

pytestmark = pytest.mark.integration

CLINIC, OTHER_CLINIC, ORG = "mott-haven", "gone-clinic", "bronx-pantry"


class SecureNetwork(Network):
    """A worker that knows only its credentials file (no REFNET_KAFKA_BOOTSTRAP either)."""

    def __init__(self, secure: SecureKafka, topics: Topics, data_dir: Path) -> None:
        super().__init__(secure.bootstrap, topics, data_dir)
        self.secure = secure
        self.admin = secure.admin(data_dir, network_user=network_principal(topics))
        self.files: dict[str, Path] = {}

    async def provision(self, clinics: list[str], orgs: list[str]) -> None:
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
            for kind, ids in (("clinic", clinics), ("org", orgs), ("admin", ["importer"])):
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

    async def receive(self, kind: str, name: str, topic: str, **kw: Any) -> list[dict[str, Any]]:
        outcome = await asyncio.to_thread(
            consume, self.party(name), topic, group=self.group(kind, name), **kw
        )
        assert not outcome.errors, outcome.errors
        return outcome.values


@pytest.fixture
async def secure_network(secure_kafka: SecureKafka, tmp_path: Path) -> Any:
    net = SecureNetwork(
        secure_kafka, Topics(prefix=f"q{uuid.uuid4().hex[:8]}", partitions=3), tmp_path
    )
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
