"""The gateway's running parts: token lookup, per-party views, the store and the deliverer.

Every event a party's view reads (referral events, and ``encounter.alerted``) is
queued, once per webhook and subscription of the party created before it, in the
store's outbox; the deliverer posts it (:mod:`connectors.gateway.notifier`). A
Subscription's notification points at the Task, or at an alert's Communication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.fhir.communications import communication_id
from connectors.fhir.inputs import GatewayInputError
from connectors.fhir.mapping import fhir_id
from connectors.fhir.subscriptions import notification
from connectors.gateway.connections import InboxReader, Producers
from connectors.gateway.egress import Policy
from connectors.gateway.names import OrgNames
from connectors.gateway.notifier import DELIVERY_LEASE, WEBHOOK_RETRY, Deliverer, Target
from connectors.gateway.rest import FHIR_JSON
from connectors.gateway.store import Delivery, GatewayStore
from connectors.gateway.tokens import PartyRef, TokenStore
from connectors.gateway.views import PartyView, party_auth
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from connectors.retry import Backoff
from schemas.events import Event
from schemas.topics import Topics

log = logging.getLogger("refnet.gateway")


@dataclass(frozen=True)
class GatewayConfig:
    bootstrap: str
    topics: Topics
    data_dir: Path
    auth: KafkaAuth = PLAINTEXT
    #: testing and local development: let webhooks and subscriptions post to http://127.0.0.1
    allow_http_webhooks: bool = False
    #: a failed delivery's first wait, doubling per attempt up to ``retry_max`` (seconds)
    retry_base: float = WEBHOOK_RETRY.first
    retry_max: float = WEBHOOK_RETRY.cap
    #: a CA file that receivers' certificates may also chain to (e.g. the local CA)
    webhook_ca: str | None = None
    #: receivers' addresses, attempts' deadline and concurrency, per-party limits
    policy: Policy = field(default_factory=Policy)
    ready_timeout: float = 15.0
    #: how long an organization's Task update waits for the network's answer (seconds)
    confirm_wait: float = 2.0
    base_url: str = "http://127.0.0.1:8080"
    #: the PostgreSQL of the gateway's state (the ledger's server); None: cannot start
    database_url: str | None = None
    #: how long a replica holds a claimed delivery before another may attempt it (seconds)
    delivery_lease: float = DELIVERY_LEASE
    #: seconds between looks at the token registry for revoked or rotated parties
    revocation_interval: float = 1.0
    #: this replica's name in its transactional ids (``REFNET_GATEWAY_REPLICA``)
    replica: str = "gateway"
    #: producers writing as parties held open at once, and closed after this long unused
    producer_capacity: int = 32
    producer_idle: float = 300.0


class Gateway:
    """The running parts: token lookup, per-party views, the store and the deliverer."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.tokens = TokenStore(config.data_dir)
        self.views: dict[PartyRef, PartyView] = {}
        self._store: GatewayStore | None = None
        self._deliverer: Deliverer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._purged_version = -1
        self._reader: InboxReader | None = None
        self._producers: Producers | None = None
        #: organizations' names, from the directory topic (read by the inbox reader)
        self.names = OrgNames()

    @property
    def store(self) -> GatewayStore:
        if self._store is None:
            raise RuntimeError("the gateway has not started")
        return self._store

    @property
    def deliverer(self) -> Deliverer:
        if self._deliverer is None:
            raise RuntimeError("the gateway has not started")
        return self._deliverer

    async def start(self) -> None:
        """Open the store and start the deliverer and the views (nothing before: building
        the app, for instance to publish its OpenAPI description, touches no database)."""
        if not self.config.database_url:
            raise RuntimeError(
                "the gateway keeps its state in PostgreSQL: set REFNET_DATABASE_URL "
                "or run 'refnet dev up' for the embedded one"
            )
        self._store = await GatewayStore.connect(self.config.database_url, self.tokens.generation)
        await self.purge()
        self._deliverer = Deliverer(
            self._store,
            self._target,
            retries=Backoff(first=self.config.retry_base, cap=self.config.retry_max),
            verify_tls=self.config.webhook_ca or True,
            policy=self.config.policy,
            lease=self.config.delivery_lease,
        )
        for party in self.tokens.parties():
            self.view(party)
        self._connections()[0].start()  # the directory's names, even with no party yet
        self._tasks.append(asyncio.create_task(self.deliverer.run(), name="deliverer"))
        self._tasks.append(asyncio.create_task(self._watch_tokens(), name="revocation"))

    async def stop(self) -> None:
        if self._deliverer is not None:  # in-flight attempts finish and are recorded
            with contextlib.suppress(Exception):
                await self._deliverer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(v.stop() for v in self.views.values()))
        await self._close_connections()
        if self._store is not None:
            await self._store.close()

    async def purge(self) -> None:
        """If the token registry changed: remove what revoked or rotated parties registered
        (their webhooks, Subscriptions, pending deliveries, statuses, capacity)."""
        current = self.tokens.generations()
        if self.tokens.version == self._purged_version:
            return
        version = self.tokens.version
        removed = await self.store.purge(current)
        self._purged_version = version
        gone = {table: n for table, n in removed.items() if n}
        if gone:
            log.warning("revoked or rotated parties: removed %s", gone)

    async def _watch_tokens(self) -> None:
        while True:
            await asyncio.sleep(self.config.revocation_interval)
            try:
                await self.purge()
            except Exception:
                log.exception("purging revoked parties' rows failed; tried again")

    def view(self, party: PartyRef) -> PartyView:
        found = self.views.get(party)
        if found is None or found.stopped:
            reader, producers = self._connections()
            bootstrap, auth = party_auth(self.config.data_dir, party, self.config.auth)
            found = PartyView(
                party,
                self.config.topics,
                self.config.bootstrap or bootstrap or "",
                auth,
                listener=self._on_event,
                reader=reader,
                producers=producers,
            )
            self.views[party] = found
            found.start()
        return found

    def _connections(self) -> tuple[InboxReader, Producers]:
        """The one inbox reader (as the gateway) and the bounded producers (as the parties)."""
        if self._reader is None or self._producers is None:
            self._reader = InboxReader(
                self.config.bootstrap,
                self.config.auth,
                provisioned=self.tokens.parties,
                directory=self.config.topics.directory,
                names=self.names,
            )
            self._producers = Producers(
                self.config.bootstrap,
                capacity=self.config.producer_capacity,
                idle=self.config.producer_idle,
                replica=self.config.replica,
                prefix=self.config.topics.prefix,
            )
        return self._reader, self._producers

    async def _close_connections(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
        if self._producers is not None:
            await self._producers.stop()

    async def ready_view(self, party: PartyRef) -> PartyView:
        view = self.view(party)
        if not await view.wait_ready(self.config.ready_timeout):
            raise GatewayInputError(
                "the gateway is still reading this party's topic; retry shortly",
                status=503,
                code="transient",
            )
        return view

    async def publish(self, who: PartyRef, key: str, event: Event) -> None:
        """Send ``event`` to the party's outbox topic (any failure: a 503 to retry)."""
        await self.publish_all(who, [(key, event)])

    async def publish_all(self, who: PartyRef, events: list[tuple[str, Event]]) -> None:
        """Send ``events`` to the party's outbox topic: one alone, several in one Kafka
        transaction, so that either all reach the network or none (any failure: a 503)."""
        view = self.view(who)
        try:
            if len(events) == 1:
                await view.publish(*events[0])
            else:
                await view.publish_all(events)
        except Exception as exc:  # noqa: BLE001 - any failure to publish is the same 503
            log.warning("publishing for %s failed: %s", who.label, type(exc).__name__)
            raise GatewayInputError(
                "the network could not be reached; nothing was sent, retry",
                status=503,
                code="transient",
            ) from None

    # ------------------------------------------------------------ notifications
    async def _on_event(self, party: PartyRef, message: dict[str, Any]) -> None:
        event_id = str(message.get("event_id"))
        occurred = _epoch(message.get("occurred_at"))
        added = False
        if party.kind == "org":
            body = _webhook_body(message)
            for hook in await self.store.webhooks(party.id):
                if occurred >= hook.created_at - 1:
                    added |= await self.store.enqueue("webhook", hook.id, event_id, body)
        for sub in await self.store.subscriptions(party.kind, party.id):
            # a view re-reads its topic at every start: an event already queued keeps its number
            if occurred >= sub.created_at - 1:
                focus_type, focus_id = _focus(message)

                def bundle(
                    number: int,
                    sub_id: str = sub.id,
                    focus: tuple[str, str] = (focus_type, focus_id),
                ) -> bytes:
                    document = notification(
                        sub_id,
                        number,
                        message.get("occurred_at"),
                        self.config.base_url,
                        focus[1],
                        focus[0],
                    )
                    return json.dumps(document).encode()

                added |= await self.store.enqueue_numbered(sub.id, event_id, bundle)
        if added:
            self.deliverer.wake()

    async def _target(self, delivery: Delivery) -> Target | None:
        if delivery.kind == "webhook":
            hook = await self.store.webhook(delivery.target_id)
            return None if hook is None else Target(hook.url, hook.secret, {})
        sub = await self.store.subscription(delivery.target_id)
        if sub is None:
            return None
        headers = {}
        for line in sub.headers:
            name, _, value = line.partition(":")
            if name.strip() and value.strip():
                headers[name.strip()] = value.strip()
        return Target(sub.endpoint, None, {**headers, "content-type": FHIR_JSON})


def _focus(message: dict[str, Any]) -> tuple[str, str]:
    """What a Subscription notification points at: an alert's Communication, else the Task."""
    if message.get("event_type") == "encounter.alerted":
        return "Communication", communication_id(message)
    return "Task", fhir_id(str(message["referral_id"]))


def _webhook_body(message: dict[str, Any]) -> bytes:
    """What a webhook receives: the event's type and time, and the event."""
    document = {
        "type": message.get("event_type"),
        "timestamp": message.get("occurred_at"),
        "data": message,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _epoch(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return time.time()


__all__ = ["Gateway", "GatewayConfig"]
