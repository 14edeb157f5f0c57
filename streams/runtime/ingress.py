"""Ingress: reads every party's topic, decodes it once, re-keys it to its owner.

Two consumer groups (:mod:`streams.runtime.ingress_groups`), each reading the party
topics its pattern matches: ``{app_id}-ingress`` every clinic's and every facility's
submissions topic, ``{app_id}-ingress-updates`` every organization's updates topic.
In the worker each subscribes to the matching topics of the network's listing
(:mod:`streams.runtime.subscription`), else to the pattern; either way a party
provisioned while the network runs is read within about ``REFNET_PATTERN_REFRESH``
seconds. Apart, a screening never waits for a fetch
naming every organization's topic (aiokafka has no incremental fetch sessions),
and a rebalance of either group (a new organization's topic found) never stops
the other. Faust's own pattern subscription is not used: its aiokafka driver
notes that patterns do not work.

Each message is decoded by :func:`schemas.decode.decode`; a failure goes to the
dead-letter topic with its reason and the bytes, and the sender hears a
``message.refused`` on its own inbox topic (:func:`answer`); the next message is read.
A party over its quota (:mod:`streams.runtime.quota`, when the worker is given
one) has its messages refused as ``limit`` dead letters before they are decoded.
Offsets are committed only after everything a batch produced is acknowledged
by the broker (at-least-once; the owners de-duplicate by command id), in the
background while the next batch is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from connectors.kafka import clients
from connectors.kafka.auth import PLAINTEXT, KafkaAuth
from schemas.codes import DeadLetterKind
from schemas.decode import Decoded, DecodeFailure, ServiceRemoved, decode
from schemas.events import (
    ConsentUpdated,
    DeadLetter,
    DeadLetterSource,
    EncounterNotified,
    ReferralCancelled,
    ReferralRequested,
    ReferralStatusChanged,
    ScreeningSubmitted,
    ServiceCapacityChanged,
)
from schemas.topics import TopicKind, Topics
from streams.decisions.commands import OrganizationStatus, SubmissionReceived, patient_key
from streams.decisions.encounters import encounter_of, find_command, patient_keys, strict_keys
from streams.decisions.limits import Limits
from streams.decisions.network_state import NetworkState
from streams.decisions.outputs import Outgoing, refusal_answer
from streams.runtime import letters
from streams.runtime.clock import Clock, system_clock
from streams.runtime.ingress_commit import Committer
from streams.runtime.letters import MAX_KEY_IN_SOURCE
from streams.runtime.positions import SeekToCommitted
from streams.runtime.quota import PartyQuota
from streams.runtime.subscription import LISTED_METADATA_AGE_MS, Listed

log = logging.getLogger(__name__)

Observer = Callable[[str], None]


def ingress_pattern(topics: Topics) -> str:
    """One regex for every clinic's submissions, every organization's updates and
    every facility's submissions: every topic some ingress reads."""
    clinic = topics.clinic_submissions_pattern.strip("^$")
    org = topics.org_updates_pattern.strip("^$")
    facility = topics.facility_submissions_pattern.strip("^$")
    return f"^(?:{clinic}|{org}|{facility})$"


def route(
    record: ConsumerRecord[bytes, bytes],
    topics: Topics,
    state: NetworkState,
    limits: Limits | None = None,
    *,
    now: datetime | None = None,
    secret: bytes | None = None,
) -> Outgoing:
    """Where one party message goes: its owner's topic, or the dead-letter topic.

    The edge's limits (:class:`streams.decisions.limits.Limits`) are enforced here, once:
    size (before any parsing), JSON depth and field bounds (in the decoder),
    and time: an ``occurred_at`` more than ``max_clock_skew`` ahead of ``now``
    is refused. A capacity report is stamped with ``now``, the time the network
    received it, so reports are ordered by the network's clock, not the party's.

    ``secret`` (the network's linkage secret) computes the patient's linkage keys
    of a clinic's screening or referral request, and of a facility's encounter,
    which goes on with its keys and without its demographics
    (:mod:`streams.decisions.encounters`).
    """
    limits = limits or Limits()
    now = now or system_clock()
    key_text = record.key.decode("utf-8", "backslashreplace") if record.key is not None else None
    source = DeadLetterSource(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key_text[:MAX_KEY_IN_SOURCE] if key_text is not None else None,
    )

    def dead(kind: DeadLetterKind, reason: str) -> Outgoing:
        return _dead(kind, reason, source, record.value, record, topics)

    size = len(record.value) if record.value is not None else 0
    if size > limits.max_message_bytes:
        reason = (
            f"message of {size} bytes is over the limit of {limits.max_message_bytes} bytes"
            " (REFNET_MAX_MESSAGE_BYTES)"
        )
        return dead(DeadLetterKind.LIMIT, reason)
    result = decode(
        record.topic, record.key, record.value, topics, max_bytes=limits.max_message_bytes
    )
    if isinstance(result, DecodeFailure):
        return dead(result.kind, result.reason)
    if isinstance(result, ServiceRemoved):  # pragma: no cover - only on the directory
        return dead(DeadLetterKind.VALIDATION, "null value")
    assert isinstance(result, Decoded) and result.party_id is not None
    event = result.event
    if event.occurred_at > now + limits.max_clock_skew:
        reason = (
            "occurred_at is ahead of the network's clock by more than "
            f"{int(limits.max_clock_skew.total_seconds())} s (REFNET_MAX_CLOCK_SKEW)"
        )
        return dead(DeadLetterKind.LIMIT, reason)
    if isinstance(event, EncounterNotified):
        if secret is None:
            return dead(DeadLetterKind.INTERNAL, "the network has no linkage secret")
        keys = patient_keys(secret, event.patient)
        strict = strict_keys(secret, event.patient)
        return find_command(encounter_of(event, result.party_id, now), keys, topics, strict)
    if result.kind is TopicKind.CLINIC_SUBMISSIONS:
        routed = _submission(result, result.party_id, source, topics, now, secret)
        if routed is None:
            reason = "referral.cancelled needs the patient id as its message key"
            return dead(DeadLetterKind.VALIDATION, reason)
        return routed
    if isinstance(event, ReferralStatusChanged):
        status = OrganizationStatus(
            command_id=str(event.event_id), org_id=result.party_id, event=event, source=source
        )
        return Outgoing.command(topics.network_referrals, event.referral_id, status)
    assert isinstance(event, ServiceCapacityChanged)
    return _capacity(event, result.party_id, state, topics, now) or dead(
        DeadLetterKind.AUTHORIZATION,
        f"service is not in the directory under organization {result.party_id}",
    )


def _capacity(
    event: ServiceCapacityChanged, org_id: str, state: NetworkState, topics: Topics, now: datetime
) -> Outgoing | None:
    """An organization's capacity report, stamped with the network's time of receipt;
    None for a service not its own."""
    service = state.services.get(event.service_id)
    if service is None or service.org_id != org_id:
        return None
    stamped = event.model_copy(update={"occurred_at": now})
    return Outgoing.event(topics.network_capacity, event.service_id, stamped)


def _submission(
    result: Decoded,
    clinic_id: str,
    source: DeadLetterSource,
    topics: Topics,
    now: datetime,
    secret: bytes | None,
) -> Outgoing | None:
    """A clinic's submission, re-keyed to its patient's owner; None for a cancellation
    without the patient id as its key."""
    event = result.event
    assert isinstance(
        event, ScreeningSubmitted | ReferralRequested | ReferralCancelled | ConsentUpdated
    )
    if isinstance(event, ConsentUpdated):
        patient_id = event.patient_id
    elif isinstance(event, ReferralCancelled):
        if not result.key:
            return None
        patient_id = result.key
    else:
        patient_id = event.patient.id
    keys = (
        patient_keys(secret, event.patient)
        if isinstance(event, ScreeningSubmitted | ReferralRequested)
        else []
    )
    command = SubmissionReceived(
        command_id=str(event.event_id),
        clinic_id=clinic_id,
        source=source,
        event=event,
        received_at=now,
        linkage_keys=keys,
    )
    return Outgoing.command(topics.network_patients, patient_key(clinic_id, patient_id), command)


def _dead(
    kind: DeadLetterKind,
    reason: str,
    source: DeadLetterSource,
    value: bytes | None,
    record: ConsumerRecord[bytes, bytes],
    topics: Topics,
) -> Outgoing:
    return letters.letter(topics, kind, reason, source, value, record_time(record))


def answer(record: ConsumerRecord[bytes, bytes], out: Outgoing, topics: Topics) -> Outgoing | None:
    """The ``message.refused`` the sender hears on its own inbox when ``out`` is the dead
    letter of its message (None otherwise): one answer per refused message, produced
    and never stored, so a flood of bad messages grows nothing."""
    if out.topic != topics.deadletter:
        return None
    letter = DeadLetter.model_validate_json(out.value)
    return refusal_answer(
        topics,
        letter.error.kind,
        letter.error.message,
        letter.source,
        record.value,
        occurred_at=letter.occurred_at,
    )


def record_time(record: ConsumerRecord[bytes, bytes]) -> datetime:
    """The record's timestamp, or now when the producer set one out of any sane range."""
    try:
        at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    except (OverflowError, OSError, ValueError, TypeError):
        return system_clock()
    return at if 1900 <= at.year < 9000 else system_clock()


class Ingress:
    """The consumer-group loop around :func:`route` (run it under a Supervisor).

    A message whose routing fails in an unexpected way is dead-lettered as
    ``internal`` (exception type only) and the loop goes on; a failure of the
    consumer or the producer ends :meth:`run`, and the supervisor starts it
    again from the last committed offsets (owners ignore repeated commands).
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        producer: AIOKafkaProducer,
        state: NetworkState,
        *,
        group_id: str,
        refresh_seconds: float,
        limits: Limits | None = None,
        ready: Callable[[], Awaitable[object]] | None = None,
        observe: Observer | None = None,
        auth: KafkaAuth = PLAINTEXT,
        clock: Clock = system_clock,
        quota: PartyQuota | None = None,
        linkage_secret: bytes | None = None,
        pattern: str | None = None,
        name: str = "ingress",
        previous_group: str | None = None,
        listed: Listed | None = None,
        fetch_wait_ms: int = 500,
    ) -> None:
        self.bootstrap = bootstrap
        #: the party topics this loop reads (every one unless told), and the group
        #: whose offsets a partition without one of its own starts from
        self.pattern = pattern or ingress_pattern(topics)
        self.name = name
        self.previous_group = previous_group
        #: subscribe to the listed topics matching the pattern, not the pattern
        self.listed = listed
        #: the longest the broker holds an empty fetch (data ends it at once)
        self.fetch_wait_ms = fetch_wait_ms
        self.auth = auth
        self.clock = clock
        self.topics = topics
        self.producer = producer
        self.state = state
        self.group_id = group_id
        self.limits = limits or Limits()
        self.refresh_ms = int(refresh_seconds * 1000)
        self._ready = ready
        self._observe = observe or (lambda label: None)
        self.quota = quota
        self._secret = linkage_secret
        #: inboxes an answer could not reach, and until when none is tried again:
        #: at most one entry per party whose message was refused
        self._unreachable: dict[str, float] = {}

    async def run(self) -> None:
        if self._ready is not None:
            await self._ready()
        consumer = clients.consumer(
            self.bootstrap,
            auth=self.auth,
            group_id=self.group_id,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # listed topics: the listing finds new ones, a subscription change asks
            # for their metadata (streams.runtime.subscription)
            metadata_max_age_ms=self.refresh_ms if self.listed is None else LISTED_METADATA_AGE_MS,
            fetch_max_wait_ms=self.fetch_wait_ms,
            # a batch of at most 200 records of at most ~1 MB each stays bounded
            max_partition_fetch_bytes=1024 * 1024,
        )
        await consumer.start()
        try:
            listener = SeekToCommitted(consumer, self.previous_group)
            if self.listed is None:
                consumer.subscribe(pattern=self.pattern, listener=listener)
            log.info("%s (%s) subscribed to %s", self.name, self.group_id, self.pattern)
            await self._loop(consumer, listener)
        finally:
            await consumer.stop()

    def route_safely(self, record: ConsumerRecord[bytes, bytes]) -> Outgoing:
        try:
            return route(
                record, self.topics, self.state, self.limits, now=self.clock(), secret=self._secret
            )
        except Exception as exc:  # noqa: BLE001 - one message never stops intake
            log.error(
                "ingress: routing %s[%d]@%d failed (%s); dead-lettered",
                record.topic,
                record.partition,
                record.offset,
                type(exc).__name__,
            )
            source = DeadLetterSource(
                topic=record.topic, partition=record.partition, offset=record.offset, key=None
            )
            reason = f"the ingress failed on this message: {type(exc).__name__}"
            return _dead(DeadLetterKind.INTERNAL, reason, source, record.value, record, self.topics)

    def admit(self, record: ConsumerRecord[bytes, bytes]) -> Outgoing:
        """Where ``record`` goes: refused (``limit``) when its party is over its quota,
        before anything is decoded, else :func:`route`."""
        if self.quota is not None:
            parsed = self.topics.parse(record.topic)
            party = parsed[1] if parsed is not None else None
            if party is not None and not self.quota.admit(party):
                source = DeadLetterSource(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=None,
                )
                reason = self.quota.rule(party)
                return _dead(
                    DeadLetterKind.LIMIT, reason, source, record.value, record, self.topics
                )
        return self.route_safely(record)

    async def _answer(self, reply: Outgoing) -> asyncio.Future[object] | None:
        """Send a refusal's answer to its sender's inbox; None when it cannot go.

        An answer is best effort: the operator's dead letter is the record of the
        refusal, so an inbox that is missing or slow never holds up the other
        parties' messages or the ingress's commits.
        """
        loop = asyncio.get_running_loop()
        if self._unreachable.get(reply.topic, 0.0) > loop.time():
            self._observe("message.refused:unanswered")
            return None
        try:
            future: asyncio.Future[object] = await asyncio.wait_for(
                self.producer.send(reply.topic, reply.value, key=reply.key.encode()),
                timeout=ANSWER_WAIT,
            )
        except (TimeoutError, KafkaError) as exc:
            self._unreachable[reply.topic] = loop.time() + UNREACHABLE_FOR
            log.warning("ingress: no answer to %s (%s)", reply.topic, type(exc).__name__)
            self._observe("message.refused:unanswered")
            return None
        self._unreachable.pop(reply.topic, None)
        self._observe(reply.label)
        return future

    async def _answered(self, futures: list[asyncio.Future[object]]) -> None:
        """Wait for the answers sent; one that failed is logged and counted, not retried."""
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                log.warning("ingress: an answer was not written (%s)", type(result).__name__)
                self._observe("message.refused:unanswered")

    async def _loop(self, consumer: AIOKafkaConsumer, listener: SeekToCommitted) -> None:
        committer = Committer(consumer)
        try:
            while True:
                if self.listed is not None and not self.listed.refresh(consumer, listener):
                    await asyncio.sleep(self.listed.look_every)  # no such topic yet
                    continue
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                if not batches:
                    continue
                handled = asyncio.ensure_future(self._handle(batches))
                try:
                    offsets = await asyncio.shield(handled)
                except asyncio.CancelledError:
                    # stopping: the batch in progress is finished and committed first
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        committer.commit(await asyncio.wait_for(handled, STOP_GRACE))
                    raise
                committer.commit(offsets)
        finally:
            await committer.close()

    async def _handle(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> dict[TopicPartition, int]:
        """Route a batch and wait until all it produced is acknowledged; the offsets
        that may then be committed."""
        futures, answers = [], []
        for records in batches.values():
            for record in records:
                out = self.admit(record)
                self._observe(out.label)
                futures.append(await self.producer.send(out.topic, out.value, key=out.key.encode()))
                reply = answer(record, out, self.topics)
                if reply is not None:
                    answers.append(await self._answer(reply))
        await asyncio.gather(*futures)
        await self._answered([a for a in answers if a is not None])
        return {tp: records[-1].offset + 1 for tp, records in batches.items() if records}


#: Seconds an answer waits for its inbox's metadata, and then how long an inbox that
#: did not answer is left alone: a missing inbox (a party deprovisioned while its
#: messages are read) delays the ingress once a minute at most, never per message.
ANSWER_WAIT = 5.0
UNREACHABLE_FOR = 60.0
#: Seconds a stopping ingress gives the batch in progress to be acknowledged, so that
#: it is committed and not read again after the restart (a repeat the owners ignore)
STOP_GRACE = 10.0


def is_party_topic(topics: Topics, name: str) -> bool:
    return re.fullmatch(ingress_pattern(topics), name) is not None
