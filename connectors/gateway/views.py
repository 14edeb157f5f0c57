"""The gateway's Kafka side: each party's producer and a current view of its inbox topic.

A clinic's view follows its updates topic (``referral.updated``: the latest per
referral); an organization's follows its referrals topic (``referral.offered``
and ``referral.withdrawn`` per network referral id); both keep the
``encounter.alerted`` events they read (``alerts``, by event id). A facility's
view follows its updates topic (the network's answers, nothing kept yet) and
publishes to its submissions topic. Each view reads its topic
from the beginning without a consumer group (only READ on the party's own
topic is needed) and is ready once it has caught up with the end offsets seen at
start. Every client connects as the party: on a secured broker with the party's
own SCRAM credentials (its credentials file), so the broker's ACLs hold for the
gateway as they do for the party's own clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from connectors.fhir.screening_reads import screening_record
from connectors.gateway.tokens import PartyRef
from connectors.kafka import clients
from connectors.kafka.auth import KafkaAuth, KafkaAuthError
from connectors.retry import Backoff
from schemas.events import (
    EncounterAlerted,
    Event,
    MessageRefused,
    ReferralStatusRecorded,
    to_bytes,
)
from schemas.topics import Topics

log = logging.getLogger("refnet.gateway.views")

Listener = Callable[[PartyRef, dict[str, Any]], Awaitable[None]]

#: the most screenings a clinic's view keeps for reading back (the newest)
MAX_SCREENINGS = 20_000
#: how long a view waits before reading its topic again after a failure
RECONNECT = Backoff(first=1.0, cap=30.0)

SKIPPED = Counter(
    "refnet_gateway_skipped_messages",
    "Messages a party's view could not use (not an event, or an invalid alert), by party kind",
    ["party_kind"],
)


class PartyView:
    """One party's producer and inbox view."""

    def __init__(
        self,
        party: PartyRef,
        topics: Topics,
        bootstrap: str,
        auth: KafkaAuth,
        listener: Listener | None = None,
        provisioned: Callable[[], bool] | None = None,
    ) -> None:
        self.party = party
        #: False once the party's token is revoked (deprovisioned): the view then stops
        self.provisioned = provisioned or (lambda: True)
        self.stopped = False
        self.topics = topics
        self.bootstrap = bootstrap
        self.auth = auth
        self.listener = listener
        if party.kind == "clinic":
            self.inbox = topics.clinic_updates(party.id)
            self.outbox = topics.clinic_submissions(party.id)
        elif party.kind == "facility":
            self.inbox = topics.facility_updates(party.id)
            self.outbox = topics.facility_submissions(party.id)
        else:
            self.inbox = topics.org_referrals(party.id)
            self.outbox = topics.org_updates(party.id)
        #: clinic: referral_id -> {"update", "authored_on"}; org: referral_id ->
        #: {"offer", "withdrawn", "modified"}
        self.records: dict[str, dict[str, Any]] = {}
        #: encounter.alerted events by event id, in the order read
        self.alerts: dict[str, dict[str, Any]] = {}
        #: clinic: screening_id -> what the gateway keeps of a screening it sent or the
        #: network answered (ids, instrument, time: connectors.fhir.screening_reads)
        self.screenings: dict[str, dict[str, Any]] = {}
        self.ready = asyncio.Event()
        self.changed = asyncio.Condition()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._producer_lock = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name=f"view-{self.party.label}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()

    async def wait_ready(self, within: float) -> bool:
        try:
            await asyncio.wait_for(self.ready.wait(), within)
        except TimeoutError:
            return False
        return True

    def keep_screening(self, kept: dict[str, Any]) -> None:
        """Keep a screening for reading back (the newest :data:`MAX_SCREENINGS`)."""
        self.screenings.pop(kept["screening_id"], None)
        self.screenings[kept["screening_id"]] = kept
        while len(self.screenings) > MAX_SCREENINGS:
            del self.screenings[next(iter(self.screenings))]

    async def publish(self, key: str, event: Event) -> None:
        async with self._producer_lock:
            if self._producer is None:
                producer = clients.producer(
                    self.bootstrap, self.auth, client_id=f"refnet-gateway-{self.party.label}"
                )
                await producer.start()
                self._producer = producer
        await self._producer.send_and_wait(self.outbox, to_bytes(event), key=key.encode())

    # ------------------------------------------------------------ the view
    async def _follow(self) -> None:
        failures = 0
        while True:
            consumer = clients.consumer(
                self.bootstrap,
                auth=self.auth,
                group_id=None,
                auto_offset_reset="earliest",
                client_id=f"refnet-gateway-{self.party.label}",
            )
            try:
                await consumer.start()
                partitions = await self._partitions(consumer)
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*partitions)
                ends = await consumer.end_offsets(partitions)
                self.records.clear()
                self.alerts.clear()
                failures = 0
                while True:
                    if not self.ready.is_set():
                        positions = [await consumer.position(tp) for tp in ends]
                        if all(p >= end for p, end in zip(positions, ends.values(), strict=True)):
                            self.ready.set()
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            await self._apply(record.value)
                    if batch:
                        async with self.changed:
                            self.changed.notify_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a view logs, waits and reads again
                failures += 1
                log.warning(
                    "view of %s: %s: %s; retrying in %.0fs",
                    self.party.label,
                    type(exc).__name__,
                    str(exc)[:200],
                    RECONNECT.delay(failures),
                )
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            if not self.provisioned():
                self.stopped = True
                log.info("stopped following %s: it is no longer provisioned", self.party.label)
                return
            await asyncio.sleep(RECONNECT.delay(failures))

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        for _ in range(100):
            found = consumer.partitions_for_topic(self.inbox)
            if found:
                return [TopicPartition(self.inbox, p) for p in sorted(found)]
            await consumer._client.force_metadata_update()  # the topic may be new to this client
            await asyncio.sleep(0.2)
        raise KafkaError(f"topic of {self.party.label} not found")

    async def _apply(self, value: bytes | None) -> None:
        try:
            message = json.loads(value or b"")
            if not isinstance(message, dict):
                return
            kind = message.get("event_type")
            if kind == "screening.answered" and self.party.kind == "clinic":
                self.keep_screening(screening_record(message))
                return  # read back, never notified
            if kind not in _FOLLOWED.get(self.party.kind, frozenset()):
                return  # e.g. the network's answers (message.refused, screening.answered)
            if kind == "encounter.alerted":
                message = EncounterAlerted.model_validate(message).model_dump(mode="json")
                self.alerts[str(message["event_id"])] = message
            elif not self._apply_referral(kind, message["referral_id"], message):
                return
        except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
            log.warning("view of %s: skipped a message that is not an event", self.party.label)
            SKIPPED.labels(self.party.kind).inc()
            return
        if self.listener is not None:
            try:
                await self.listener(self.party, message)
            except Exception:
                log.exception("gateway listener failed for %s", self.party.label)

    def _apply_referral(self, kind: str, rid: str, message: dict[str, Any]) -> bool:
        """Keep a referral event in ``records``; True if the party's webhooks and
        Subscriptions hear of it (the network's answers to the organization's own
        updates change its Task but are not pushed: it hears them in the PATCH's answer).

        An organization's record holds the offer, its withdrawal, the network's last
        confirmation of the organization's status (``recorded``, from
        ``referral.status-recorded``) and the last refusal of its updates since
        (``refused``, from ``message.refused``): the Task shows the network's truth."""
        if self.party.kind == "clinic":
            update = self.records.setdefault(rid, {"authored_on": message.get("occurred_at")})
            update["update"] = message
            return True
        if kind == "referral.offered":
            self.records.setdefault(rid, {}).update(
                offer=message,
                withdrawn=None,
                recorded=None,
                refused=None,
                modified=message.get("occurred_at"),
            )
            return True
        record = self.records.get(rid)
        if record is None:
            return False
        if kind == "referral.withdrawn":
            record.update(
                withdrawn=message.get("reason") or "withdrawn", modified=message.get("occurred_at")
            )
            return True
        if kind == "referral.status-recorded":
            recorded = ReferralStatusRecorded.model_validate(message)
            record.update(
                recorded=recorded.model_dump(mode="json"),
                refused=None,
                modified=recorded.occurred_at.isoformat(),
            )
        elif kind == "message.refused":
            refused = MessageRefused.model_validate(message)
            record["refused"] = {
                "event_id": str(refused.refused_event_id) if refused.refused_event_id else None,
                "kind": refused.error.kind.value,
                "rule": refused.error.rule,
                "offer": refused.referral_state.offer if refused.referral_state else None,
                "at": refused.occurred_at.isoformat(),
            }
        return False


#: The event types a view follows on each kind of party's inbox; others are ignored.
_FOLLOWED = {
    "clinic": frozenset({"referral.updated", "encounter.alerted"}),
    "org": frozenset(
        {
            "referral.offered",
            "referral.withdrawn",
            "referral.status-recorded",
            "message.refused",
            "encounter.alerted",
        }
    ),
    "facility": frozenset[str](),
}


def party_auth(data_dir: Path, party: PartyRef, default: KafkaAuth) -> tuple[str | None, KafkaAuth]:
    """The party's own Kafka login (its credentials file) if it has one, else ``default``."""
    path = data_dir / "credentials" / f"{party.kind}-{party.id}.json"
    if not path.exists():
        return None, default
    try:
        return KafkaAuth.from_file(path)
    except KafkaAuthError:
        log.warning("credentials of %s cannot be read; using the gateway's own", party.label)
        return None, default


__all__ = ["RECONNECT", "SKIPPED", "Listener", "PartyView", "party_auth"]
