"""Revoking a party, or rotating its token, removes what it registered (issue 18, item 3):
its webhooks, Subscriptions, pending deliveries (bodies and all), statuses, capacity and
Encounters. A revoked organization's webhook receives nothing more; a re-provisioned id
inherits nothing; nothing made under an old token survives a new one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.gateway.egress import Policy
from connectors.gateway.notifier import Deliverer
from connectors.gateway.state import Gateway, GatewayConfig
from connectors.gateway.store import GatewayStore, Subscription, Webhook
from connectors.gateway.tokens import issue_token, revoke_token
from connectors.retry import Backoff
from schemas.topics import Topics
from tests.connectors.gateway.receivers import Receiver

pytestmark = pytest.mark.integration

ORG, OTHER, FACILITY = "org-a", "org-b", "fac-a"


@pytest.fixture
async def gateway(store_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway reading a real token registry (not started: no Kafka)."""
    gateway = Gateway(GatewayConfig(bootstrap="", topics=Topics(prefix="t"), data_dir=tmp_path))
    for kind, party in (("org", ORG), ("org", OTHER), ("facility", FACILITY)):
        issue_token(tmp_path, kind, party)  # type: ignore[arg-type]
    gateway._store = await GatewayStore.connect(store_url, gateway.tokens.generation)
    try:
        yield gateway
    finally:
        await gateway.store.close()


async def _register(gateway: Gateway, org: str, url: str) -> tuple[Webhook, Subscription]:
    store = gateway.store
    hook = Webhook(f"hook-{org}", org, url, "whsec_" + "A" * 44, time.time())
    await store.add_webhook(hook)
    sub = Subscription(f"sub-{org}", "org", org, url, [], {}, time.time(), 0)
    await store.add_subscription(sub)
    assert await store.set_capacity(org, f"svc-{org}", {"available": 3})
    return hook, sub


async def _until(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def test_a_revoked_organizations_webhook_receives_nothing_more(
    gateway: Gateway, tmp_path: Path
) -> None:
    store = gateway.store
    deliverer = Deliverer(
        store,
        gateway._target,
        retries=Backoff(first=30.0, cap=60.0),
        interval=0.05,
        policy=Policy(allow_private=True),
    )
    async with Receiver() as receiver, Receiver() as other_receiver:
        hook, _ = await _register(gateway, ORG, receiver.url())
        other, _ = await _register(gateway, OTHER, other_receiver.url())
        task = asyncio.create_task(deliverer.run())
        try:
            await store.enqueue("webhook", hook.id, "e1", b'{"n":1}')

            async def first() -> bool:
                return bool((await store.deliveries(hook.id))[0]["delivered"])

            await _until(first)
            revoke_token(tmp_path, "org", ORG)  # what `refnet deprovision org org-a` does
            await store.enqueue("webhook", hook.id, "e2", b'{"n":2}')  # a view still reading
            await store.enqueue("webhook", other.id, "e2", b'{"n":2}')

            async def others() -> bool:
                return bool(other_receiver.requests)

            await _until(others)  # the deliverer ran past the revoked party's delivery
            await asyncio.sleep(0.5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert [body for _, body in receiver.requests] == [b'{"n":1}']
    assert await store.webhooks(ORG) == []
    assert await store.deliveries(hook.id) == []  # pending ones gone, bodies and all


async def test_after_rotation_or_reprovisioning_nothing_old_survives(
    gateway: Gateway, tmp_path: Path
) -> None:
    store = gateway.store
    hook, sub = await _register(gateway, ORG, "https://example.org/hook")
    kept, kept_sub = await _register(gateway, OTHER, "https://example.org/other")
    await store.set_encounter(FACILITY, "enc-1", {"resourceType": "Encounter", "id": "enc-1"})
    for target in (hook.id, sub.id, kept.id):
        await store.enqueue("webhook", target, "e1", b'{"patient": "Colin"}')
    await gateway.purge()
    assert await store.webhooks(ORG) == [hook]  # nothing changed: nothing purged

    issue_token(tmp_path, "org", ORG)  # rotated
    revoke_token(tmp_path, "facility", FACILITY)
    issue_token(tmp_path, "facility", FACILITY)  # deprovisioned, then provisioned again
    # what the old token made is gone at once for reads, and from the tables at the purge
    assert await store.webhooks(ORG) == []
    assert await store.subscription(sub.id) is None
    assert await store.capacities(ORG) == {}
    assert await store.encounter(FACILITY, "enc-1") is None
    await gateway.purge()
    for table, column in (
        ("gateway_webhooks", "org_id"),
        ("gateway_subscriptions", "party_id"),
        ("gateway_capacity", "org_id"),
    ):
        parties = await store.pool.fetch(f"SELECT DISTINCT {column} FROM {table}")
        assert [p[0] for p in parties] == [OTHER], table
    assert await store.pool.fetchval("SELECT count(*) FROM gateway_encounters") == 0
    targets = await store.pool.fetch("SELECT target_id FROM gateway_deliveries")
    assert [t[0] for t in targets] == [kept.id]
    assert await store.webhooks(OTHER) == [kept]
    assert await store.subscription(kept_sub.id) == kept_sub


async def test_the_deprovisioning_command_purges_at_once(
    gateway: Gateway, tmp_path: Path, store_url: str
) -> None:
    from deploy.provision.revocation import purge_gateway_state

    hook, _ = await _register(gateway, ORG, "https://example.org/hook")
    await gateway.store.enqueue("webhook", hook.id, "e1", b'{"patient": "Colin"}')
    revoke_token(tmp_path, "org", ORG)
    removed = await asyncio.to_thread(purge_gateway_state, tmp_path, store_url)
    assert removed["gateway_webhooks"] == 1 and removed["gateway_deliveries"] == 1
    assert await gateway.store.pool.fetchval("SELECT count(*) FROM gateway_subscriptions") == 0
