"""The deliverer against real receivers on localhost and the gateway's real outbox (PostgreSQL):
one party's bad target, slow receiver or private address hurts only its own deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from connectors.gateway.egress import Policy
from connectors.gateway.notifier import Deliverer, verify
from connectors.gateway.state import Gateway
from connectors.gateway.store import Delivery, GatewayStore, Subscription, Webhook
from connectors.observability.metrics import WEBHOOK_DELIVERIES
from connectors.retry import Backoff
from deploy.local.ca import ensure_tls
from tests.connectors.gateway.receivers import Receiver

FAST_RETRY = Backoff(first=30.0, cap=60.0)  # a failed attempt is not retried within a test


pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def _running(deliverer: Deliverer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(deliverer.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _deliverer(gateway: Gateway, **policy: object) -> Deliverer:
    return Deliverer(
        gateway.store,
        gateway._target,
        retries=FAST_RETRY,
        interval=0.05,
        policy=Policy(**{"allow_private": True, **policy}),  # type: ignore[arg-type]
    )


async def _hook(gateway: Gateway, url: str, org: str = "org-a") -> Webhook:
    held = await gateway.store.webhooks(org)
    hook = Webhook(f"hook-{len(held)}-{org}", org, url, "whsec_" + "A" * 44, time.time())
    await gateway.store.add_webhook(hook)
    return hook


async def _state(gateway: Gateway, target_id: str) -> dict[str, object]:
    (row,) = await gateway.store.deliveries(target_id)
    return row


Row = dict[str, object]
_EMPTY: Row = {"attempts": 0, "delivered": False, "last_error": None}


async def _until(
    gateway: Gateway, check: Callable[[Callable[[str], Row]], bool], timeout: float = 20.0
) -> None:
    """Until ``check(st)`` holds, ``st(target)`` being the target's one delivery row now."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await gateway.store.pool.fetch("SELECT DISTINCT target_id FROM gateway_deliveries")
        now = {r[0]: (await gateway.store.deliveries(r[0]))[0] for r in rows}
        if check(lambda target, now=now: now.get(target, _EMPTY)):
            return
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def test_bad_stored_targets_fail_alone_and_the_loop_goes_on(gateway: Gateway) -> None:
    store = gateway.store
    bad_urls = ["https://h:abc/", "https://xn--/", "https://h:99999/", "https://a b/"]
    bad = [await _hook(gateway, url, org=f"bad-{i}") for i, url in enumerate(bad_urls)]
    header_sub = Subscription(
        "sub-bad",
        "clinic",
        "c",
        "https://example.org/x",
        ["X-Note: caf\u00e9", "Host: evil"],
        {},
        time.time(),
        0,
    )
    await store.add_subscription(header_sub)
    await store.add_subscription(
        Subscription("sub-junk", "clinic", "c2", "https://example.org/x", [7], {}, time.time(), 0)  # type: ignore[list-item]
    )
    for target in [*(h.id for h in bad), "sub-bad", "sub-junk"]:
        await store.enqueue(
            "webhook" if target.startswith("hook") else "subscription", target, "e1", b"{}"
        )
    deliverer = _deliverer(gateway)
    async with Receiver() as good, _running(deliverer) as task:
        await _until(gateway, lambda st: all(st(h.id)["attempts"] for h in bad))
        await _until(gateway, lambda st: st("sub-junk")["attempts"] == 1)
        hook = await _hook(gateway, good.url(), org="good")
        await store.enqueue("webhook", hook.id, "e2", b'{"n":2}')
        deliverer.wake()
        await _until(gateway, lambda st: bool(st(hook.id)["delivered"]))
        assert not task.done()
        for target in [*(h.id for h in bad), "sub-bad", "sub-junk"]:
            assert (await _state(gateway, target))["last_error"] == "invalid-target", target
        headers, body = good.requests[0]
        assert verify(hook.secret, headers, body)


async def test_a_slow_receiver_is_cut_off_and_holds_no_one_else(gateway: Gateway) -> None:
    deliverer = _deliverer(gateway, attempt_deadline=5.0)
    async with Receiver(drip=0.5) as slow, Receiver() as fast:
        slow_hook = await _hook(gateway, slow.url(), org="slow")
        await gateway.store.enqueue("webhook", slow_hook.id, "e1", b"{}")
        async with _running(deliverer):
            await asyncio.wait_for(slow.started.wait(), 10)
            fast_hook = await _hook(gateway, fast.url(), org="fast")
            await gateway.store.enqueue("webhook", fast_hook.id, "e1", b"{}")
            deliverer.wake()
            await _until(gateway, lambda st: bool(st(fast_hook.id)["delivered"]))
            assert not (await _state(gateway, slow_hook.id))["attempts"]  # delivered while it drips
            await _until(gateway, lambda st: st(slow_hook.id)["attempts"] == 1)
            assert (await _state(gateway, slow_hook.id)) == {
                "event_id": "e1",
                "attempts": 1,
                "delivered": False,
                "expired": False,
                "last_error": "timeout",
            }


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_address_is_refused_at_connect_time(gateway: Gateway, host: str) -> None:
    deliverer = _deliverer(gateway, allow_private=False)
    async with Receiver() as receiver:
        hook = await _hook(gateway, receiver.url(host))
        await gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer):
            await _until(gateway, lambda st: st(hook.id)["attempts"] == 1)
            assert (await _state(gateway, hook.id))["last_error"] == "blocked-address"
            assert receiver.requests == []


async def test_last_error_names_only_a_category(gateway: Gateway) -> None:
    deliverer = _deliverer(gateway)
    async with Receiver(status=503) as failing, Receiver(status=404) as missing:
        closed = Receiver()
        async with closed:
            closed_url = closed.url()
        hooks = {
            (await _hook(gateway, failing.url(), "a")).id: "http-5xx",
            (await _hook(gateway, missing.url(), "b")).id: "http-4xx",
            (await _hook(gateway, closed_url, "c")).id: "refused",
        }
        for hook_id in hooks:
            await gateway.store.enqueue("webhook", hook_id, "e1", b"{}")
        async with _running(deliverer):
            await _until(gateway, lambda st: all(st(h)["attempts"] for h in hooks))
            assert {h: (await _state(gateway, h))["last_error"] for h in hooks} == hooks


async def test_the_webhook_ca_adds_to_the_system_cas(gateway: Gateway, tmp_path: Path) -> None:
    import ssl

    files = ensure_tls(tmp_path / "tls")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.broker)
    deliverer = Deliverer(
        gateway.store,
        gateway._target,
        retries=FAST_RETRY,
        interval=0.05,
        verify_tls=str(files.ca_cert),
        policy=Policy(allow_private=True),
    )
    pool = deliverer._client._transport._pool  # type: ignore[attr-defined]
    trusted = pool._ssl_context.get_ca_certs()
    assert len(trusted) > 1  # the public CAs are still there
    async with Receiver(tls=server) as receiver:
        hook = await _hook(gateway, receiver.url())
        await gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer):
            await _until(gateway, lambda st: bool(st(hook.id)["delivered"]))


class FlakyStore(GatewayStore):
    """The real outbox, whose first ``claim`` fails (a lost connection, a failover)."""

    failures = 1

    async def claim(self, *args: Any, **kwargs: Any) -> list[Delivery]:
        if self.failures:
            self.failures -= 1
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        return await super().claim(*args, **kwargs)


async def test_a_failed_round_is_counted_and_the_loop_goes_on(gateway: Gateway) -> None:
    gateway._store = FlakyStore(gateway.store.pool, gateway.store.generation)
    before = WEBHOOK_DELIVERIES.labels("loop", "loop-error")._value.get()
    deliverer = _deliverer(gateway)
    async with Receiver() as receiver:
        hook = await _hook(gateway, receiver.url())
        await gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer) as task:
            await _until(gateway, lambda st: bool(st(hook.id)["delivered"]))
            assert not task.done()
    assert WEBHOOK_DELIVERIES.labels("loop", "loop-error")._value.get() == before + 1


async def test_a_certificate_no_trusted_ca_signed_is_a_tls_failure(
    gateway: Gateway, tmp_path: Path
) -> None:
    import ssl

    files = ensure_tls(tmp_path / "tls")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.broker)
    deliverer = _deliverer(gateway)  # without the local CA
    async with Receiver(tls=server) as receiver:
        hook = await _hook(gateway, receiver.url("localhost"))
        await gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer):
            await _until(gateway, lambda st: st(hook.id)["attempts"] == 1)
        assert (await _state(gateway, hook.id))["last_error"] == "tls"
        assert receiver.requests == []
