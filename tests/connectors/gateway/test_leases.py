"""Replicas share the outbox: a delivery is leased to one replica at a time, only the
lease holder records its result, a dead replica's lease passes to another, a shutdown
records what is in flight, one receiver's backlog starves no other, and Subscription
event numbers stay unique and gap-free when replicas queue the same events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest

from connectors.gateway.egress import Policy
from connectors.gateway.notifier import Deliverer
from connectors.gateway.state import Gateway
from connectors.gateway.store import GatewayStore, Subscription, Webhook
from connectors.retry import Backoff
from tests.connectors.gateway.conftest import GENERATION
from tests.connectors.gateway.receivers import Receiver

pytestmark = pytest.mark.integration

NO_RETRY = Backoff(first=300.0, cap=600.0)


def _deliverer(gateway: Gateway, owner: str, **policy: object) -> Deliverer:
    return Deliverer(
        gateway.store,
        gateway._target,
        retries=NO_RETRY,
        interval=0.05,
        owner=owner,
        policy=Policy(**{"allow_private": True, **policy}),  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def _running(deliverer: Deliverer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(deliverer.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _hook(gateway: Gateway, url: str, org: str) -> Webhook:
    hook = Webhook(f"hook-{org}", org, url, "whsec_" + "A" * 44, time.time())
    await gateway.store.add_webhook(hook)
    return hook


async def test_a_lease_is_held_by_one_replica_and_passes_when_it_expires(
    gateway: Gateway, store_url: str
) -> None:
    a = gateway.store
    b = await GatewayStore.connect(store_url, lambda kind, party: GENERATION)
    try:
        for n in range(3):
            await a.enqueue("webhook", f"target-{n}", "e1", b"{}")
        now = time.time()
        first, second = await asyncio.gather(a.claim("a", now, 60, 10), b.claim("b", now, 60, 10))
        claimed = [d.id for d in first] + [d.id for d in second]
        assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 3
        assert await b.claim("b", now + 59, 60, 10) == []  # all held, none due again
        mine = first[0] if first else second[0]
        holder, other = ("a", "b") if first else ("b", "a")
        taken = await b.claim(other, now + 61, 60, 10)  # the holder died: its leases passed
        assert mine.id in [d.id for d in taken]
        assert not await a.delivered(mine.id, time.time(), holder)  # no longer its to record
        assert not await a.failed(mine.id, time.time(), "timeout", holder)
        assert await a.delivered(mine.id, time.time(), other)
        (row,) = await a.deliveries(mine.target_id)
        assert row["delivered"] and row["attempts"] == 1
    finally:
        await b.close()


async def test_a_backlog_of_one_receiver_starves_no_other(gateway: Gateway) -> None:
    store = gateway.store
    async with Receiver(status=503) as failing, Receiver() as good:
        busy = await _hook(gateway, failing.url(), "busy")
        for n in range(1500):
            await store.enqueue("webhook", busy.id, f"e{n}", b"{}")
        quiet = await _hook(gateway, good.url(), "quiet")
        await store.enqueue("webhook", quiet.id, "e0", b"{}")
        async with _running(_deliverer(gateway, "a", concurrency=1)):
            deadline = time.monotonic() + 20
            while not good.requests:
                assert time.monotonic() < deadline, "the quiet receiver starved"
                await asyncio.sleep(0.05)
    # it waited behind no more than one of the backlog (the backlog goes on meanwhile)
    assert sum(1 for t in failing.arrivals if t < good.arrivals[0]) <= 2


async def test_a_shutdown_records_the_attempt_in_flight(gateway: Gateway) -> None:
    async with Receiver(drip=0.01) as slow:  # answers in about a second
        hook = await _hook(gateway, slow.url(), "org-a")
        await gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        deliverer = _deliverer(gateway, "a")
        task = asyncio.create_task(deliverer.run())
        await asyncio.wait_for(slow.started.wait(), 10)
        await deliverer.stop()
        await asyncio.wait_for(task, 10)
    (row,) = await gateway.store.deliveries(hook.id)
    assert row["delivered"] and row["attempts"] == 1
    leased = await gateway.store.pool.fetchval("SELECT lease_owner FROM gateway_deliveries")
    assert leased is None


async def test_replicas_queueing_the_same_events_number_them_once(
    gateway: Gateway, store_url: str
) -> None:
    sub = Subscription("sub-1", "clinic", "c", "https://example.org/x", [], {}, 0.0, 0)
    await gateway.store.add_subscription(sub)
    replicas = [
        await GatewayStore.connect(store_url, lambda kind, party: GENERATION) for _ in range(3)
    ]
    try:

        def body(number: int) -> bytes:
            return json.dumps({"number": number}).encode()

        events = [f"e{n}" for n in range(20)]
        added = await asyncio.gather(
            *(r.enqueue_numbered(sub.id, e, body) for e in events for r in replicas)
        )
    finally:
        for replica in replicas:
            await replica.close()
    assert sum(added) == 20
    rows = await gateway.store.pool.fetch("SELECT body FROM gateway_deliveries")
    numbers = sorted(json.loads(bytes(r[0]))["number"] for r in rows)
    assert numbers == list(range(1, 21))
    (stored,) = await gateway.store.subscriptions("clinic", "c")
    assert stored.events == 20
