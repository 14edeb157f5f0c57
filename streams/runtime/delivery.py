"""Producing an owner's outputs: retried, and dead-lettered when they cannot go.

Outputs for a topic that does not exist (a deprovisioned party's) become
``undeliverable`` dead letters instead of blocking the agent while the
producer waits for the topic's metadata. Outputs the broker keeps refusing are
replaced by ``internal`` dead letters of their commands; if even those cannot
be produced, the worker stops before its input offsets are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from connectors.observability.observer import NULL, WorkerObserver
from connectors.retry import Backoff
from schemas.codes import DeadLetterKind
from schemas.topics import Topics
from streams.decisions.commands import Command
from streams.decisions.outputs import Outgoing
from streams.runtime import letters
from streams.runtime.clock import Clock, system_clock
from streams.runtime.outbox import SEND_BACKOFF, Producer, Sends
from streams.runtime.supervise import fatal

log = logging.getLogger(__name__)

#: Attempts at producing a command's outputs before the command is dead-lettered.
SEND_ATTEMPTS = 4
#: Seconds between two looks at the topics when outputs name one not seen yet.
LOOK_SPACING = 1.0


class SendFailed(RuntimeError):
    """Outputs could not be produced after :data:`SEND_ATTEMPTS` tries."""


class KnownTopics(Protocol):
    """The topics that exist, as last listed (the network view)."""

    topic_names: frozenset[str]

    async def list_orgs(self) -> None:
        """List the topics again."""


class Delivery:
    """Produces outputs through ``producer`` for the owner agents."""

    def __init__(
        self,
        producer: Producer,
        topics: Topics,
        known: KnownTopics,
        *,
        observer: WorkerObserver = NULL,
        clock: Clock = system_clock,
        attempts: int = SEND_ATTEMPTS,
        backoff: Backoff = SEND_BACKOFF,
        on_fatal: Callable[[str], None] = fatal,
    ) -> None:
        self.producer = producer
        self.topics = topics
        self.known = known
        self.observer = observer
        self.clock = clock
        self.attempts = attempts
        self.backoff = backoff
        self._on_fatal = on_fatal
        self._last_look = 0.0

    async def deliver(self, sends: Sends, agent: str) -> None:
        """Produce every command's outputs; what cannot be produced is dead-lettered."""
        outputs = await self.deliverable([out for _, outs in sends for out in outs])
        try:
            await self.send_all(outputs, agent)
        except SendFailed as exc:
            # dead-letter the commands; if even that fails, stop before the commit
            failed = [
                self.internal_letter(command, agent, f"its outputs could not be produced: {exc}")
                for command, _ in sends
            ]
            try:
                await self.send_all(failed, agent)
            except SendFailed:
                self._on_fatal(f"{agent}: the broker refuses every message")

    async def send_all(self, outputs: Sequence[Outgoing], agent: str) -> None:
        """Produce ``outputs`` and wait for the broker; retried, then :class:`SendFailed`."""
        if not outputs:
            return
        failure: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                # a party's topic may have vanished since the last look: what is
                # for it becomes an undeliverable dead letter, the rest goes again
                outputs = await self.deliverable(list(outputs), force=True)
            try:
                futures = [
                    await self.producer.send(out.topic, out.key.encode(), out.value)
                    for out in outputs
                ]
                await asyncio.gather(*futures)
            except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered
                failure = exc
                self.observer.send_retried(agent)
                log.warning(
                    "%s: producing %d message(s) failed (%s), attempt %d",
                    agent,
                    len(outputs),
                    type(exc).__name__,
                    attempt,
                )
                await asyncio.sleep(self.backoff.delay(attempt))
            else:
                for out in outputs:
                    self.observer.output_produced(out.label)
                return
        raise SendFailed(type(failure).__name__)

    async def deliverable(self, outputs: list[Outgoing], *, force: bool = False) -> list[Outgoing]:
        """``outputs``, with those for a topic that does not exist (a deprovisioned
        party's) replaced by an ``undeliverable`` dead letter: a send to a missing
        topic would block the agent while the producer waits for its metadata."""
        known = self.known
        missing = {out.topic for out in outputs if out.topic not in known.topic_names}
        loop = asyncio.get_running_loop()
        stale = loop.time() - self._last_look > LOOK_SPACING
        if force or (missing and stale):
            self._last_look = loop.time()
            try:
                await known.list_orgs()  # a party provisioned a moment ago
            except Exception as exc:  # noqa: BLE001 - keep the last known topics
                log.warning("could not list topics (%s)", type(exc).__name__)
            missing = {out.topic for out in outputs if out.topic not in known.topic_names}
        if not missing or not known.topic_names:
            return outputs
        kept = []
        for out in outputs:
            if out.topic not in missing:
                kept.append(out)
                continue
            self.observer.dead_lettered(DeadLetterKind.UNDELIVERABLE.value)
            kept.append(letters.undeliverable(self.topics, out, self.clock()))
        return kept

    def internal_letter(self, command: Command, agent: str, why: str) -> Outgoing:
        """The ``internal`` dead letter of a command the agent failed on (counted)."""
        letter = letters.internal(self.topics, command, agent, why, self.clock())
        self.observer.dead_lettered(DeadLetterKind.INTERNAL.value)
        return letter


__all__ = ["SEND_ATTEMPTS", "Delivery", "KnownTopics", "SendFailed"]
