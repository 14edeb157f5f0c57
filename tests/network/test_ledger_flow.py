"""The worker writes every referral state change into the PostgreSQL ledger."""

from __future__ import annotations

import asyncio
import json

import pytest

from connectors.ledger.sink import Ledger
from tests.network import builders as b
from tests.network.conftest import Network

pytestmark = pytest.mark.integration


async def test_the_ledger_records_each_state_change_once_and_lists_disclosures(
    network: Network, database_url: str
) -> None:
    t = network.topics
    network.database_url = database_url
    await network.provision(["mott-haven"], ["bronx-pantry"])
    await network.publish(t.directory, "svc-p", b.service("svc-p", "bronx-pantry"))
    network.start_worker()
    await network.publish(t.clinic_submissions("mott-haven"), "pt-8c21", b.requested("ref-1"))
    offer = await network.read(t.org_referrals("bronx-pantry"), count=1)
    referral_id = offer[0]["referral_id"]  # the network's id, which the ledger keys on
    accepted = b.status(referral_id, "accepted")
    await network.publish(t.org_updates("bronx-pantry"), referral_id, accepted)
    await network.read(t.referral_events, count=2)

    ledger = await Ledger.connect(database_url)
    try:
        history = []
        for _ in range(100):
            history = await ledger.history(referral_id)
            if len(history) >= 2:
                break
            await asyncio.sleep(0.2)
        assert [(h.status, h.business_status) for h in history] == [
            ("requested", "offered"),
            ("accepted", None),
        ]
        # the same event again: the ledger does not grow
        await network.publish(t.org_updates("bronx-pantry"), referral_id, accepted)
        await asyncio.sleep(3)
        assert len(await ledger.history(referral_id)) == 2
        disclosed = await ledger.disclosures(referral_id)
        assert [
            (d["recipient_org_id"], d["service_id"], d["patient_id"], d["category"])
            for d in disclosed
        ] == [("bronx-pantry", "svc-p", "pt-8c21", "food-insecurity")]
        # the accounting of disclosures: which fields went out, under which consent
        assert sorted(disclosed[0]["fields_disclosed"]) == [
            "given_name",
            "phone",
            "postal_code",
            "preferred_language",
        ]
        consent = disclosed[0]["consent"]
        consent = json.loads(consent) if isinstance(consent, str) else consent
        assert consent["granted"] is True
    finally:
        await ledger.close()
