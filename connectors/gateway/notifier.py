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
until the receiver answers 2xx; pending deliveries live in the gateway's SQLite
outbox (:mod:`connectors.gateway.store`), so a restart resumes them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from connectors.fhir.inputs import GatewayInputError
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
    """Why ``url`` cannot receive deliveries, or None. HTTPS only; plain http only to
    127.0.0.1/localhost/::1 when the dev setting allows it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if len(url) > 2000 or not parts.hostname:
        return "a webhook URL needs a host (at most 2000 characters)"
    if parts.username or parts.password:
        return "a webhook URL must not carry credentials"
    if parts.scheme == "https":
        return None
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "http" and loopback and allow_http_loopback:
        return None
    return (
        "a webhook URL must be https:// (http:// to loopback only with "
        "REFNET_GATEWAY_DEV_HTTP_WEBHOOKS)"
    )


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
    """Runs the outbox: posts due deliveries, records each outcome, backs off on failure."""

    def __init__(
        self,
        store: GatewayStore,
        resolve: Callable[[Delivery], Target | None],
        *,
        retries: Backoff = WEBHOOK_RETRY,
        timeout: float = 10.0,
        verify_tls: bool | str = True,
        interval: float = 0.2,
    ) -> None:
        self.store = store
        self.resolve = resolve
        self.retries = retries
        self.interval = interval
        self._client = httpx.AsyncClient(timeout=timeout, verify=verify_tls, follow_redirects=False)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                due = await asyncio.to_thread(self.store.due, time.time())
                if due:
                    await asyncio.gather(*(self._attempt(d) for d in due))
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
        finally:
            await self._client.aclose()

    async def _attempt(self, delivery: Delivery) -> None:
        target = self.resolve(delivery)
        if target is None:  # the webhook or subscription was deleted
            await asyncio.to_thread(self.store.drop_target, delivery.target_id)
            return
        stamp = int(time.time())
        headers = {"content-type": "application/json", **target.headers}
        if target.secret is not None:
            headers.update(
                {
                    "webhook-id": delivery.event_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(
                        target.secret, delivery.event_id, stamp, delivery.body
                    ),
                }
            )
        error: str | None
        try:
            answer = await self._client.post(target.url, content=delivery.body, headers=headers)
            error = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if error is None:
            WEBHOOK_DELIVERIES.labels("delivered").inc()
            await asyncio.to_thread(self.store.delivered, delivery.id, time.time())
            log.info(
                "delivered %s %s attempt %d",
                delivery.kind,
                delivery.target_id,
                delivery.attempts + 1,
            )
            return
        WEBHOOK_DELIVERIES.labels("retried").inc()
        wait = self.retries.delay(delivery.attempts + 1)
        await asyncio.to_thread(self.store.failed, delivery.id, time.time() + wait, error)
        log.warning(
            "delivery %s %s attempt %d failed (%s); next in %.1fs",
            delivery.kind,
            delivery.target_id,
            delivery.attempts + 1,
            error,
            wait,
        )


__all__ = [
    "WEBHOOK_RETRY",
    "Deliverer",
    "Target",
    "check_url",
    "new_secret",
    "receiver_url",
    "sign",
    "verify",
]
