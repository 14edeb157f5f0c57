"""The confluent-kafka admin client, and waiting on the futures its requests return."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.kafka.clients import librdkafka
from schemas.errors import RefnetError

#: Seconds a question to the broker (metadata, ACLs) may take by default.
QUERY_TIMEOUT = 15.0
#: Seconds a change on the broker (topics, ACLs, credentials) may take by default.
CHANGE_TIMEOUT = 30.0


class AdminError(RefnetError, RuntimeError):
    """The broker refused or did not answer an admin request."""


def admin_client(bootstrap: str, auth: KafkaAuth = PLAINTEXT) -> AdminClient:
    """confluent-kafka's admin client: unlike aiokafka's it has the ACL and SCRAM calls."""
    return AdminClient(librdkafka(bootstrap, auth))


def existing_topics(admin: AdminClient, bootstrap: str, timeout: float) -> dict[str, Any]:
    """The broker's topics (name -> metadata), internal ones included."""
    try:
        topics: dict[str, Any] = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise AdminError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    return topics


def outcomes(futures: Mapping[str, Any], what: str, timeout: float) -> dict[str, Exception | None]:
    """Each request's refusal by the broker (None when it succeeded), by name.

    Anything else going wrong while waiting is an :class:`AdminError` at once.
    """
    results: dict[str, Exception | None] = {}
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout)
            results[name] = None
        except KafkaException as exc:
            results[name] = exc
        except Exception as exc:
            raise AdminError(f"{what} {name}: {exc}") from exc
    return results


def settle(
    futures: Mapping[Any, Any],
    what: str,
    timeout: float,
    *,
    name: Callable[[Any], object] = lambda key: key,
) -> list[Any]:
    """Every request's result; the first the broker refused is an :class:`AdminError`
    saying ``"{what} {name(key)}: {refusal}"``."""
    results = []
    for key, future in futures.items():
        try:
            results.append(future.result(timeout=timeout))
        except KafkaException as exc:
            raise AdminError(f"{what} {name(key)}: {exc}") from exc
    return results


def wait_until_done(
    pending: Callable[[], list[str]], what: str, timeout: float, every: float
) -> None:
    """Ask ``pending()`` every ``every`` seconds until it is empty; after ``timeout`` seconds
    an :class:`AdminError` says ``"{what} after {timeout}s: {what is still pending}"``."""
    deadline = time.monotonic() + timeout
    while True:
        left = pending()
        if not left:
            return
        if time.monotonic() > deadline:
            raise AdminError(f"{what} after {timeout:.0f}s: {', '.join(left)}")
        time.sleep(every)


__all__ = [
    "CHANGE_TIMEOUT",
    "QUERY_TIMEOUT",
    "AdminError",
    "admin_client",
    "existing_topics",
    "outcomes",
    "settle",
    "wait_until_done",
]
