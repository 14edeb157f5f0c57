"""The deliverer against real receivers on localhost and the gateway's real SQLite outbox:
one party's bad target, slow receiver or private address hurts only its own deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from connectors.gateway.egress import Policy
from connectors.gateway.notifier import Deliverer, verify
from connectors.gateway.state import Gateway, GatewayConfig
from connectors.gateway.store import Delivery, GatewayStore, Subscription, Webhook
from connectors.observability.metrics import WEBHOOK_DELIVERIES
from connectors.retry import Backoff
from deploy.local.ca import ensure_tls
from schemas.topics import Topics
from tests.connectors.gateway.receivers import Receiver

FAST_RETRY = Backoff(first=30.0, cap=60.0)  # a failed attempt is not retried within a test


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gateway = Gateway(GatewayConfig(bootstrap="", topics=Topics(prefix="t"), data_dir=tmp_path))
    gateway._store = GatewayStore(tmp_path / "gateway.sqlite3")
    return gateway


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


def _hook(gateway: Gateway, url: str, org: str = "org-a") -> Webhook:
    hook = Webhook(
        f"hook-{len(gateway.store.webhooks(org))}-{org}", org, url, "whsec_" + "A" * 44, time.time()
    )
    gateway.store.add_webhook(hook)
    return hook


def _state(gateway: Gateway, target_id: str) -> dict[str, object]:
    (row,) = gateway.store.deliveries(target_id)
    return row


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def test_bad_stored_targets_fail_alone_and_the_loop_goes_on(gateway: Gateway) -> None:
    store = gateway.store
    bad_urls = ["https://h:abc/", "https://xn--/", "https://h:99999/", "https://a b/"]
    bad = [_hook(gateway, url, org=f"bad-{i}") for i, url in enumerate(bad_urls)]
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
    store.add_subscription(header_sub)
    store.add_subscription(
        Subscription("sub-junk", "clinic", "c2", "https://example.org/x", [7], {}, time.time(), 0)  # type: ignore[list-item]
    )
    for target in [*(h.id for h in bad), "sub-bad", "sub-junk"]:
        store.enqueue(
            "webhook" if target.startswith("hook") else "subscription", target, "e1", b"{}"
        )
    deliverer = _deliverer(gateway)
    async with Receiver() as good, _running(deliverer) as task:
        await _until(lambda: all(_state(gateway, h.id)["attempts"] for h in bad))
        await _until(lambda: _state(gateway, "sub-junk")["attempts"] == 1)
        hook = _hook(gateway, good.url(), org="good")
        store.enqueue("webhook", hook.id, "e2", b'{"n":2}')
        deliverer.wake()
        await _until(lambda: bool(_state(gateway, hook.id)["delivered"]))
        assert not task.done()
        for target in [*(h.id for h in bad), "sub-bad", "sub-junk"]:
            assert _state(gateway, target)["last_error"] == "invalid-target", target
        headers, body = good.requests[0]
        assert verify(hook.secret, headers, body)


async def test_a_slow_receiver_is_cut_off_and_holds_no_one_else(gateway: Gateway) -> None:
    deliverer = _deliverer(gateway, attempt_deadline=5.0)
    async with Receiver(drip=0.5) as slow, Receiver() as fast:
        slow_hook = _hook(gateway, slow.url(), org="slow")
        gateway.store.enqueue("webhook", slow_hook.id, "e1", b"{}")
        async with _running(deliverer):
            await asyncio.wait_for(slow.started.wait(), 10)
            fast_hook = _hook(gateway, fast.url(), org="fast")
            gateway.store.enqueue("webhook", fast_hook.id, "e1", b"{}")
            deliverer.wake()
            await _until(lambda: bool(_state(gateway, fast_hook.id)["delivered"]))
            assert not _state(gateway, slow_hook.id)["attempts"]  # delivered while it drips
            await _until(lambda: _state(gateway, slow_hook.id)["attempts"] == 1)
            assert _state(gateway, slow_hook.id) == {
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
        hook = _hook(gateway, receiver.url(host))
        gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer):
            await _until(lambda: _state(gateway, hook.id)["attempts"] == 1)
            assert _state(gateway, hook.id)["last_error"] == "blocked-address"
            assert receiver.requests == []


async def test_last_error_names_only_a_category(gateway: Gateway) -> None:
    deliverer = _deliverer(gateway)
    async with Receiver(status=503) as failing, Receiver(status=404) as missing:
        closed = Receiver()
        async with closed:
            closed_url = closed.url()
        hooks = {
            _hook(gateway, failing.url(), "a").id: "http-5xx",
            _hook(gateway, missing.url(), "b").id: "http-4xx",
            _hook(gateway, closed_url, "c").id: "refused",
        }
        for hook_id in hooks:
            gateway.store.enqueue("webhook", hook_id, "e1", b"{}")
        async with _running(deliverer):
            await _until(lambda: all(_state(gateway, h)["attempts"] for h in hooks))
            assert {h: _state(gateway, h)["last_error"] for h in hooks} == hooks


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
        hook = _hook(gateway, receiver.url())
        gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer):
            await _until(lambda: bool(_state(gateway, hook.id)["delivered"]))


class FlakyStore(GatewayStore):
    """The real outbox, whose first ``due`` query fails (a locked or broken database)."""

    failures = 1

    def due(self, now: float, limit: int = 50) -> list[Delivery]:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return super().due(now, limit)


async def test_a_failed_round_is_counted_and_the_loop_goes_on(
    gateway: Gateway, tmp_path: Path
) -> None:
    gateway._store = FlakyStore(tmp_path / "flaky.sqlite3")
    before = WEBHOOK_DELIVERIES.labels("loop-error")._value.get()
    deliverer = _deliverer(gateway)
    async with Receiver() as receiver:
        hook = _hook(gateway, receiver.url())
        gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer) as task:
            await _until(lambda: bool(_state(gateway, hook.id)["delivered"]))
            assert not task.done()
    assert WEBHOOK_DELIVERIES.labels("loop-error")._value.get() == before + 1


async def test_a_certificate_no_trusted_ca_signed_is_a_tls_failure(
    gateway: Gateway, tmp_path: Path
) -> None:
    import ssl

    files = ensure_tls(tmp_path / "tls")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.broker)
    deliverer = _deliverer(gateway)  # without the local CA
    async with Receiver(tls=server) as receiver:
        hook = _hook(gateway, receiver.url("localhost"))
        gateway.store.enqueue("webhook", hook.id, "e1", b"{}")
        async with _running(deliverer):
            await _until(lambda: _state(gateway, hook.id)["attempts"] == 1)
        assert _state(gateway, hook.id)["last_error"] == "tls"
        assert receiver.requests == []
