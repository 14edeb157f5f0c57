"""Signed webhooks (Standard Webhooks style) and the delivery loop of the gateway's outbox.

Each delivery is an HTTP POST with a JSON body and three headers:

``webhook-id``
    the event's id (the same on every retry: receivers deduplicate on it);
``webhook-timestamp``
    seconds since the epoch when this attempt was signed;
``webhook-signature``
    ``v1,`` and the base64 HMAC-SHA256, keyed by the secret's bytes, of
    ``{webhook-id}.{webhook-timestamp}.{body}``.

The secret is ``whsec_`` and base64 of 32 random bytes; the key is those bytes.
A delivery is retried with exponential backoff (base doubling per attempt, capped)
until the receiver answers 2xx; pending deliveries live in the gateway's outbox in
PostgreSQL (:mod:`connectors.gateway.store`), claimed by one replica at a time under
a lease, so a restart, or another replica, resumes them, up to the
topics' retention: every :data:`EXPIRY_INTERVAL` seconds the loop expires older
ones (their bodies leave the outbox; logged and counted as ``expired``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connectors.fhir.inputs import GatewayInputError
from connectors.gateway.egress import (
    Policy,
    failure_category,
    guarded_client,
    header_problem,
    status_category,
    url_problem,
)
from connectors.gateway.store import Delivery, GatewayStore
from connectors.observability.metrics import WEBHOOK_DELIVERIES
from connectors.retry import Backoff

log = logging.getLogger("refnet.gateway.webhooks")

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SIGNATURE_VERSION = "v1"
#: how far a receiver should let a timestamp stray from its clock
TOLERANCE_SECONDS = 300
#: waits between a delivery's attempts: from 2 s, doubling, at most an hour
WEBHOOK_RETRY = Backoff(first=2.0, cap=3600.0)
#: how long a replica holds a claimed delivery before another may attempt it (seconds)
DELIVERY_LEASE = 60.0
#: seconds between sweeps of the outbox for deliveries past the topics' retention
EXPIRY_INTERVAL = 300.0


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value of one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> bool:
    """What a receiver does: check the timestamp's age and any of the v1 signatures."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        given = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in given)


def check_url(url: str, *, allow_http_loopback: bool) -> str | None:
    """Why ``url`` cannot receive deliveries, or None (see :func:`~.egress.url_problem`:
    HTTPS only, parsed as the HTTP client will; plain http only to 127.0.0.1, localhost
    or ::1 when the dev setting allows it)."""
    return url_problem(url, allow_http_loopback=allow_http_loopback)


def receiver_url(value: object, *, allow_http_loopback: bool, missing: str) -> str:
    """``value`` if it is a URL deliveries can go to, else a 422 saying why (``missing``:
    there is no URL at all)."""
    problem = (
        check_url(value, allow_http_loopback=allow_http_loopback)
        if isinstance(value, str)
        else missing
    )
    if problem:
        raise GatewayInputError(problem)
    assert isinstance(value, str)
    return value


@dataclass(frozen=True)
class Target:
    """Where a delivery goes and how it is signed (None: the target is gone)."""

    url: str
    secret: str | None
    headers: dict[str, str]


class Deliverer:
    """Runs the outbox: claims due deliveries, posts them, records each outcome, backs off.

    Attempts run side by side, at most ``policy.concurrency`` at once and one per
    receiver at a time, each cut off after ``policy.attempt_deadline`` seconds in all:
    a slow receiver holds only its own deliveries. Each round claims at most one
    delivery per receiver (a receiver's backlog never starves another's), under a lease
    of ``lease`` seconds named ``owner`` (this replica): another replica attempts it
    only once the lease has expired, and a result is recorded only while the lease is
    held. At :meth:`stop` the attempts in flight finish within their deadline and are
    recorded; what is still held then is released. Whatever goes wrong in one attempt
    is recorded against that delivery (a category in ``last_error``); whatever goes
    wrong in a round of the loop is logged and counted, and the loop goes on.
    """

    def __init__(
        self,
        store: GatewayStore,
        resolve: Callable[[Delivery], Awaitable[Target | None]],
        *,
        retries: Backoff = WEBHOOK_RETRY,
        timeout: float = 10.0,
        verify_tls: bool | str = True,
        interval: float = 0.2,
        policy: Policy | None = None,
        owner: str | None = None,
        lease: float = DELIVERY_LEASE,
    ) -> None:
        self.store = store
        self.resolve = resolve
        self.retries = retries
        self.interval = interval
        self.policy = policy or Policy()
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.lease = max(lease, self.policy.attempt_deadline + 1.0)
        extra_ca = verify_tls if isinstance(verify_tls, str) else None
        self._client = guarded_client(
            allow_private=self.policy.allow_private, extra_ca=extra_ca, timeout=timeout
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._expired_at = 0.0
        self._running: dict[int, asyncio.Task[None]] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stopping:
                try:
                    await self._round()
                except Exception:
                    WEBHOOK_DELIVERIES.labels("loop", "loop-error").inc()
                    log.exception("a round of the delivery loop failed; it goes on")
                    await asyncio.sleep(self.interval)
        finally:
            await self._drain()

    async def stop(self) -> None:
        """Claim nothing more; let the attempts in flight finish (within their deadline)."""
        self._stopping = True
        self.wake()
        await self._drain()

    async def _drain(self) -> None:
        running = list(self._running.values())
        if running:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait(running, timeout=self.policy.attempt_deadline + 1.0)
        held = list(self._running)
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        if held:  # cut off before their result: give them back for another attempt now
            with contextlib.suppress(Exception):
                released = await self.store.release(held, self.owner)
                log.warning("released %d deliveries cut off at shutdown", released)
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def expire(self) -> int:
        """Drop the bodies of deliveries older than the topics' retention (logged, counted)."""
        self._expired_at = time.time()
        by_kind = await self.store.expire(self._expired_at)
        for kind, count in by_kind.items():
            WEBHOOK_DELIVERIES.labels(kind, "expired").inc(count)
        expired = sum(by_kind.values())
        if expired:
            log.warning("%d deliveries expired undelivered after the topics' retention", expired)
        return expired

    async def _round(self) -> None:
        self._wake.clear()
        if time.time() - self._expired_at >= EXPIRY_INTERVAL:
            await self.expire()
        room = self.policy.concurrency - len(self._running)
        if room > 0 and not self._stopping:
            claimed = await self.store.claim(self.owner, time.time(), self.lease, room)
            for delivery in claimed:
                self._running[delivery.id] = asyncio.create_task(
                    self._guarded(delivery), name=f"delivery-{delivery.id}"
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    async def _guarded(self, delivery: Delivery) -> None:
        try:
            await self._attempt(delivery)
        except Exception:
            log.exception("delivery %s %s failed to run", delivery.kind, delivery.target_id)
            with contextlib.suppress(Exception):
                await self._failed(delivery, "error")
        finally:
            self._running.pop(delivery.id, None)
            self.wake()

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            target = await self.resolve(delivery)
        except Exception:  # noqa: BLE001 - a stored row that cannot be read
            log.warning("delivery %s %s: its target cannot be read", delivery.kind, delivery.id)
            await self._failed(delivery, "invalid-target")
            return
        if target is None:  # the webhook or subscription was deleted, or its party revoked
            await self.store.drop_target(delivery.target_id)
            return
        headers = self._headers(delivery, target)
        if headers is None or url_problem(target.url, allow_http_loopback=True):
            await self._failed(delivery, "invalid-target")
            return
        error: str | None
        try:
            async with asyncio.timeout(self.policy.attempt_deadline):
                answer = await self._client.post(target.url, content=delivery.body, headers=headers)
            error = status_category(answer.status_code)
        except Exception as exc:  # noqa: BLE001 - any failure of this attempt is its own
            error = failure_category(exc)
        if error is not None:
            await self._failed(delivery, error)
            return
        if not await self.store.delivered(delivery.id, time.time(), self.owner):
            WEBHOOK_DELIVERIES.labels(delivery.kind, "lease-lost").inc()
            log.warning(
                "delivery %s %s: delivered after its lease passed", delivery.kind, delivery.id
            )
            return
        WEBHOOK_DELIVERIES.labels(delivery.kind, "delivered").inc()
        log.info(
            "delivered %s %s attempt %d", delivery.kind, delivery.target_id, delivery.attempts + 1
        )

    @staticmethod
    def _headers(delivery: Delivery, target: Target) -> dict[str, str] | None:
        """The attempt's headers, or None if the target's own cannot be sent."""
        own = dict(target.headers)
        if any(header_problem(f"{name}: {value}") for name, value in own.items()):
            return None
        headers = {"content-type": "application/json", **own}
        if target.secret is not None:
            stamp = int(time.time())
            headers.update(
                {
                    "webhook-id": delivery.event_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(
                        target.secret, delivery.event_id, stamp, delivery.body
                    ),
                }
            )
        return headers

    async def _failed(self, delivery: Delivery, error: str) -> None:
        wait = self.retries.delay(delivery.attempts + 1)
        if not await self.store.failed(delivery.id, time.time() + wait, error, self.owner):
            WEBHOOK_DELIVERIES.labels(delivery.kind, "lease-lost").inc()
            log.warning(
                "delivery %s %s: its lease passed before its result", delivery.kind, delivery.id
            )
            return
        WEBHOOK_DELIVERIES.labels(delivery.kind, "retried").inc()
        log.warning(
            "delivery %s %s attempt %d failed (%s); next in %.1fs",
            delivery.kind,
            delivery.target_id,
            delivery.attempts + 1,
            error,
            wait,
        )


__all__ = [
    "DELIVERY_LEASE",
    "WEBHOOK_RETRY",
    "Deliverer",
    "Target",
    "check_url",
    "new_secret",
    "receiver_url",
    "sign",
    "verify",
]
