"""`refnet gateway` after a party's token is replaced (issue 18, item 3): nothing made under
the old token survives the new one. Its webhook receives nothing more, its Subscription
is gone, and the new token finds none of them; another organization is untouched."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from connectors.fhir.subscriptions import TASK_TOPIC
from connectors.gateway.tokens import issue_token
from schemas.events import ReferralOffered
from tests.network.conftest import Network
from tests.network.test_gateway_flows import GatewayProcess, Receiver, auth, eventually, provision

pytestmark = pytest.mark.integration

CLINIC, ORG, OTHER = "revoke-clinic", "revoke-org", "revoke-other"


def _offer(n: int) -> ReferralOffered:
    return ReferralOffered.new(
        referral_id=f"{CLINIC}:ref-{n}",
        service_id="svc-1",
        category="food-insecurity",
        respond_by="2030-01-01T00:00:00Z",
        attempt=1,
        patient={"given_name": "Colin", "phone": "+17185550100", "postal_code": "10451"},
    )


def _offers(receiver: Receiver) -> list[str]:
    return [json.loads(body)["data"]["referral_id"] for _, body, _ in receiver.calls]


async def test_after_a_new_token_the_old_webhook_and_subscription_are_gone(
    network: Network,
) -> None:
    tokens = await asyncio.to_thread(provision, network, [CLINIC], [ORG, OTHER])
    gateway = GatewayProcess(network)
    gateway.start()
    try:
        await gateway.up()
        async with (
            Receiver() as hook,
            Receiver() as other_hook,
            Receiver() as sub_receiver,
            httpx.AsyncClient(base_url=gateway.url, timeout=20) as client,
        ):
            old = auth(tokens[ORG])
            made = await client.post("/webhooks", json={"url": hook.url}, headers=old)
            assert made.status_code == 201, made.text
            other = auth(tokens[OTHER])
            kept = await client.post("/webhooks", json={"url": other_hook.url}, headers=other)
            assert kept.status_code == 201, kept.text
            sub = await client.post(
                "/fhir/Subscription",
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "follow referrals",
                    "criteria": TASK_TOPIC,
                    "channel": {"type": "rest-hook", "endpoint": sub_receiver.url},
                },
                headers=old,
            )
            assert sub.status_code == 201, sub.text
            sub_id = sub.json()["id"]
            topic = network.topics.org_referrals
            await network.publish(topic(ORG), f"{CLINIC}:ref-1", _offer(1))

            async def first() -> bool:
                notified = len(sub_receiver.notifications) == 1
                return notified and _offers(hook) == [f"{CLINIC}:ref-1"]

            await eventually(first, what="the first offer at the webhook and Subscription")

            new = auth(await asyncio.to_thread(issue_token, network.data_dir, "org", ORG))

            async def gone() -> bool:
                hooks = await client.get("/webhooks", headers=new)
                return hooks.status_code == 200 and hooks.json() == []

            await eventually(gone, what="the old webhook gone for the new token")
            assert (await client.get("/webhooks", headers=old)).status_code == 401
            read = await client.get(f"/fhir/Subscription/{sub_id}", headers=new)
            assert read.status_code == 404
            await network.publish(topic(ORG), f"{CLINIC}:ref-2", _offer(2))
            await network.publish(topic(OTHER), f"{CLINIC}:ref-3", _offer(3))

            async def others() -> bool:
                return _offers(other_hook) == [f"{CLINIC}:ref-3"]

            await eventually(others, what="the other organization's offer")
            await asyncio.sleep(2)
            assert _offers(hook) == [f"{CLINIC}:ref-1"]  # nothing more to the old webhook
            assert len(sub_receiver.notifications) == 1  # nothing more to the old Subscription
    finally:
        gateway.stop()
