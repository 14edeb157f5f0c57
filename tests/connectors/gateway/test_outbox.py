"""The outbox keeps no patient data past need: a body leaves on delivery, and an
undelivered one at the topics' retention (kept: ids, attempts, times)."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors.gateway.egress import Policy
from connectors.gateway.notifier import Deliverer
from connectors.gateway.state import Gateway
from connectors.gateway.store import OUTBOX_RETENTION, Webhook
from connectors.observability.metrics import WEBHOOK_DELIVERIES
from connectors.retry import Backoff
from tests.connectors.gateway.receivers import Receiver

pytestmark = pytest.mark.integration

OFFER = b'{"data": {"patient": {"given_name": "Colin", "phone": "+17185550100"}}}'
DAY = 86400.0


async def _hook(gateway: Gateway, url: str) -> Webhook:
    hook = Webhook("hook-1", "org-a", url, "whsec_" + "A" * 44, time.time())
    await gateway.store.add_webhook(hook)
    return hook


async def _bodies(gateway: Gateway) -> list[bytes]:
    rows = await gateway.store.pool.fetch("SELECT body FROM gateway_deliveries ORDER BY id")
    return [bytes(row[0]) for row in rows]


async def test_a_delivered_body_leaves_the_outbox(gateway: Gateway) -> None:
    deliverer = Deliverer(
        gateway.store,
        gateway._target,
        retries=Backoff(first=30.0, cap=60.0),
        interval=0.05,
        policy=Policy(allow_private=True),
    )
    async with Receiver() as receiver:
        hook = await _hook(gateway, receiver.url())
        await gateway.store.enqueue("webhook", hook.id, "e1", OFFER)
        task = asyncio.create_task(deliverer.run())
        try:
            deadline = time.monotonic() + 20
            while not (await gateway.store.deliveries(hook.id))[0]["delivered"]:
                assert time.monotonic() < deadline, "never delivered"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert [body for _, body in receiver.requests] == [OFFER]
    assert (await gateway.store.deliveries(hook.id))[0]["event_id"] == "e1"
    assert await _bodies(gateway) == [b""]
    assert not await gateway.store.enqueue("webhook", hook.id, "e1", OFFER)  # still deduplicated


async def test_an_undelivered_body_expires_at_the_topics_retention(gateway: Gateway) -> None:
    store = gateway.store
    await store.enqueue("webhook", "hook-old", "e-old", OFFER)
    await store.enqueue("webhook", "hook-new", "e-new", OFFER)
    await store.enqueue("subscription", "sub-old", "e-sub", OFFER)
    await store.pool.execute(
        "UPDATE gateway_deliveries SET created_at = $1 WHERE event_id IN ('e-old', 'e-sub')",
        time.time() - OUTBOX_RETENTION - DAY,
    )
    assert OUTBOX_RETENTION == 30 * DAY
    deliverer = Deliverer(store, gateway._target, policy=Policy(allow_private=True))
    expired = {
        kind: WEBHOOK_DELIVERIES.labels(kind, "expired") for kind in ("webhook", "subscription")
    }
    before = {kind: counter._value.get() for kind, counter in expired.items()}
    assert await deliverer.expire() == 2
    assert {kind: counter._value.get() - before[kind] for kind, counter in expired.items()} == {
        "webhook": 1,
        "subscription": 1,
    }
    (old,) = await store.deliveries("hook-old")
    assert old["expired"] and old["last_error"] == "expired" and not old["delivered"]
    assert [d.event_id for d in await store.due(time.time() + DAY)] == ["e-new"]
    assert sorted(await _bodies(gateway)) == [b"", b"", OFFER]
    assert await deliverer.expire() == 0
