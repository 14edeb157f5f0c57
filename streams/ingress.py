"""Ingress: reads every party's topic, decodes it once, re-keys it to its owner.

One consumer group subscribes by pattern to every clinic's submissions topic
and every organization's updates topic, so a party provisioned while the
network runs is read after the next metadata refresh (``REFNET_PATTERN_REFRESH``
seconds). Faust's own pattern subscription is not used: its aiokafka driver
notes that patterns do not work.

Each message is decoded by :func:`schemas.decode.decode`; a failure goes to the
dead-letter topic with its reason and the bytes, and the next message is read.
Offsets are committed only after everything a batch produced is acknowledged
by the broker (at-least-once; the owners de-duplicate by command id).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord

from schemas.codes import DeadLetterKind
from schemas.decode import Decoded, DecodeFailure, ServiceRemoved, decode
from schemas.events import (
    DeadLetterSource,
    ReferralCancelled,
    ReferralRequested,
    ReferralStatusChanged,
    ScreeningSubmitted,
    ServiceCapacityChanged,
)
from schemas.topics import TopicKind, Topics
from streams.commands import OrganizationStatus, SubmissionReceived, patient_key
from streams.outputs import Outgoing, dead_letter_event
from streams.view import NetworkState

log = logging.getLogger(__name__)

Observer = Callable[[str], None]


def ingress_pattern(topics: Topics) -> str:
    """One regex for every clinic's submissions and every organization's updates."""
    clinic = topics.clinic_submissions_pattern.strip("^$")
    org = topics.org_updates_pattern.strip("^$")
    return f"^(?:{clinic}|{org})$"


def route(record: ConsumerRecord[bytes, bytes], topics: Topics, state: NetworkState) -> Outgoing:
    """Where one party message goes: its owner's topic, or the dead-letter topic."""
    source = DeadLetterSource(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "backslashreplace") if record.key is not None else None,
    )
    result = decode(record.topic, record.key, record.value, topics)
    if isinstance(result, DecodeFailure):
        return _dead(result.kind, result.reason, source, record.value, record, topics)
    if isinstance(result, ServiceRemoved):  # pragma: no cover - only on the directory
        return _dead(DeadLetterKind.VALIDATION, "null value", source, record.value, record, topics)
    assert isinstance(result, Decoded) and result.party_id is not None
    event = result.event
    if result.kind is TopicKind.CLINIC_SUBMISSIONS:
        assert isinstance(event, ScreeningSubmitted | ReferralRequested | ReferralCancelled)
        if isinstance(event, ReferralCancelled):
            if not result.key:
                return _dead(
                    DeadLetterKind.VALIDATION,
                    "referral.cancelled needs the patient id as its message key",
                    source,
                    record.value,
                    record,
                    topics,
                )
            patient_id = result.key
        else:
            patient_id = event.patient.id
        command = SubmissionReceived(
            command_id=str(event.event_id), clinic_id=result.party_id, source=source, event=event
        )
        return Outgoing.command(
            topics.network_patients, patient_key(result.party_id, patient_id), command
        )
    if isinstance(event, ReferralStatusChanged):
        status = OrganizationStatus(
            command_id=str(event.event_id),
            org_id=result.party_id,
            event=event,
            source=source,
            raw_base64=base64.b64encode(record.value or b"").decode("ascii"),
        )
        return Outgoing.command(topics.network_referrals, event.referral_id, status)
    assert isinstance(event, ServiceCapacityChanged)
    service = state.services.get(event.service_id)
    if service is None or service.org_id != result.party_id:
        return _dead(
            DeadLetterKind.AUTHORIZATION,
            f"service is not in the directory under organization {result.party_id}",
            source,
            record.value,
            record,
            topics,
        )
    return Outgoing.event(topics.network_capacity, event.service_id, event)


def _dead(
    kind: DeadLetterKind,
    reason: str,
    source: DeadLetterSource,
    value: bytes | None,
    record: ConsumerRecord[bytes, bytes],
    topics: Topics,
) -> Outgoing:
    at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    letter = dead_letter_event(kind, reason, source, value, occurred_at=at)
    return Outgoing.event(topics.deadletter, source.key or "", letter)


class Ingress:
    """The consumer-group loop around :func:`route`."""

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        producer: AIOKafkaProducer,
        state: NetworkState,
        *,
        group_id: str,
        refresh_seconds: float,
        ready: Callable[[], Awaitable[object]] | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.producer = producer
        self.state = state
        self.group_id = group_id
        self.refresh_ms = int(refresh_seconds * 1000)
        self._ready = ready
        self._observe = observe or (lambda label: None)
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingress")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        if self._ready is not None:
            await self._ready()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=self.refresh_ms,
        )
        await consumer.start()
        self._consumer = consumer
        consumer.subscribe(pattern=ingress_pattern(self.topics))
        log.info("ingress subscribed to %s", ingress_pattern(self.topics))
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            if not batches:
                continue
            futures = []
            for records in batches.values():
                for record in records:
                    out = route(record, self.topics, self.state)
                    self._observe(out.label)
                    futures.append(
                        await self.producer.send(out.topic, out.value, key=out.key.encode())
                    )
            await asyncio.gather(*futures)
            try:
                await consumer.commit()
            except CommitFailedError:
                # a rebalance took the partitions: the new owner re-reads from the
                # last commit, and the owners ignore commands they already applied
                log.warning("ingress commit failed after a rebalance; batch will be re-read")


def is_party_topic(topics: Topics, name: str) -> bool:
    return re.fullmatch(ingress_pattern(topics), name) is not None
