"""The batch and outbox protocol: state first, then the outputs it explains.

An agent applies its commands as one :class:`Batch`. Each decision is staged in
the table at once (later commands in the batch see it), with its outputs
appended to the row's outbox; then every staged row is made durable with one
wait for the changelog (:class:`Changelog`), then every output is produced in
order, awaited once, and the outboxes are emptied. Rows a decision removes are
deleted after the outputs: what such a decision sends derives from the record
alone, so a replay recomputes the same bytes.

A command delivered again after a crash finds its outbox (:func:`replayed`) and
re-sends exactly the recorded bytes: same organization, same event ids,
whatever the view or the clock did in between. The table and the producer are
passed in (:class:`Rows`, :class:`Producer`), so the protocol runs without a
broker in the unit tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from connectors.retry import Backoff
from streams.decisions.commands import Command
from streams.decisions.outputs import Outgoing
from streams.runtime.supervise import fatal

log = logging.getLogger(__name__)

#: Attempts at a changelog write before the worker stops.
DURABLE_ATTEMPTS = 4
#: Seconds the broker may take to acknowledge a batch's changelog writes.
DURABLE_TIMEOUT = 60.0
#: Waits between tries of a send (changelog rows, outputs): 0.5 s, doubling.
SEND_BACKOFF = Backoff(first=0.5, cap=30.0)

#: A stored row: a JSON document, or None for its deletion.
Row = dict[str, Any] | None
#: The outputs of the commands of a batch, in order.
Sends = Sequence[tuple[Command, list[Outgoing]]]


class Producer(Protocol):
    """Hands a message to Kafka; the awaitable it returns resolves on the broker's ack."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> Awaitable[Any]: ...


class Rows(Protocol):
    """An agent's table: rows by key, each in the partition of its key."""

    def get(self, key: str) -> Any: ...

    def stage(self, key: str, partition: int, value: Row) -> None:
        """Change a row in memory (``None`` deletes it): later commands see it at once."""

    def changelog(self, key: str, value: Row) -> tuple[str, bytes | None, bytes | None]:
        """The changelog topic and the encoded key and value of a row."""


class Deliverer(Protocol):
    """Produces a batch's outputs; what cannot be produced is dead-lettered."""

    async def deliver(self, sends: Sends, agent: str) -> None: ...


def stored_outbox(raw: Any) -> list[dict[str, Any]]:
    """The undelivered outputs a stored row keeps, one entry per command."""
    box = raw.get("outbox") if isinstance(raw, dict) else None
    if isinstance(box, dict):  # one entry, as rows written before batches kept it
        return [box]
    return [e for e in box if isinstance(e, dict)] if isinstance(box, list) else []


def replayed(raw: Any, command: Command) -> list[Outgoing] | None:
    """The recorded, undelivered outputs of ``command`` if the row's outbox holds
    them (a command delivered again after a crash)."""
    for entry in stored_outbox(raw):
        if entry.get("command_id") == command.command_id:
            return [Outgoing.from_stored(m) for m in entry.get("messages", [])]
    return None


class Changelog:
    """Writes table rows to their changelogs through ``producer``."""

    def __init__(
        self,
        producer: Producer,
        *,
        attempts: int = DURABLE_ATTEMPTS,
        backoff: Backoff = SEND_BACKOFF,
        on_fatal: Callable[[str], None] = fatal,
    ) -> None:
        self.producer = producer
        self.attempts = attempts
        self.backoff = backoff
        self._on_fatal = on_fatal

    async def write(self, rows: Rows, partition: int, key: str, value: Row) -> Awaitable[Any]:
        """Produce one row (``None``: its tombstone) to the table's changelog; returns
        the awaitable of its acknowledgement. Handed to the producer at once: Faust's
        buffered send needs a ``flush()``, which waits for everything the producer
        holds, the other agent's writes included."""
        topic, key_bytes, value_bytes = rows.changelog(key, value)
        return await self.producer.send(topic, key_bytes, value_bytes, partition)

    async def durable(self, rows: Rows, writes: Sequence[tuple[str, int, Row]]) -> None:
        """Send ``(key, partition, row)`` writes to the changelog and wait until the
        broker acknowledged every one: state is durable before any input offset can
        be committed. A write the broker keeps refusing stops the worker."""
        await self.durable_rows([(rows, key, p, value) for key, p, value in writes])

    async def durable_rows(self, writes: Sequence[tuple[Rows, str, int, Row]]) -> None:
        """:meth:`durable` for ``(table, key, partition, row)`` writes to the changelogs
        of several tables: one wait for them all."""
        if not writes:
            return
        for attempt in range(1, self.attempts + 1):
            try:
                futures = [await self.write(t, p, key, value) for t, key, p, value in writes]
                await asyncio.wait_for(
                    asyncio.gather(*map(asyncio.shield, futures)), timeout=DURABLE_TIMEOUT
                )
            except Exception as exc:  # noqa: BLE001 - retried, then the worker stops
                log.error(
                    "changelog write of %d row(s) failed (%s), attempt %d",
                    len(writes),
                    type(exc).__name__,
                    attempt,
                )
                await asyncio.sleep(self.backoff.delay(attempt))
            else:
                return
        self._on_fatal("a changelog refuses writes; state would not be durable")


class Batch:
    """Commands of an agent applied as one (see the module's description)."""

    def __init__(
        self,
        rows: Rows,
        agent: str,
        *,
        changelog: Changelog,
        delivery: Deliverer,
        after_state: Callable[[str], None] | None = None,
    ) -> None:
        self.table = rows
        self.agent = agent
        self.changelog = changelog
        self.delivery = delivery
        self.after_state = after_state
        self.rows: dict[str, tuple[int, Row]] = {}
        self.sends: list[tuple[Command, list[Outgoing]]] = []
        #: ``(key, command id)`` handled in this batch: a repeat within it has no
        #: effect. Judged per key, as a record's own memory of ids is: an id one
        #: party chose never removes another key's command.
        self.seen: set[tuple[str, str]] = set()
        #: batches of other tables committed with this one (:meth:`join`)
        self.joined: list[Batch] = []

    def join(self, rows: Rows) -> Batch:
        """A batch of another table's rows, committed with this one: its rows are made
        durable in the same wait, its outputs go out in the order they were staged
        among this batch's (one list), and its outboxes are emptied after this one's."""
        other = Batch(rows, self.agent, changelog=self.changelog, delivery=self.delivery)
        other.sends = self.sends
        self.joined.append(other)
        return other

    def send(self, command: Command, outputs: list[Outgoing], *, key: str) -> None:
        """``command`` (on ``key``) is handled; its ``outputs`` go out after the batch's state."""
        self.seen.add((key, command.command_id))
        if outputs:
            self.sends.append((command, outputs))

    def apply(
        self,
        key: str,
        partition: int,
        record: Any,
        outputs: list[Outgoing],
        command: Command,
        *,
        delete: bool,
        sending: list[Outgoing] | None = None,
    ) -> None:
        """Stage ``command``'s decision: the new record with its outputs in the row's
        outbox (or the row's deletion), then its outputs; ``sending``: those of them
        to produce now, when others were applied in this batch instead (recorded all
        the same, so that a replay of ``command`` sends them all)."""
        if delete:
            self.table.stage(key, partition, None)
            self.rows[key] = (partition, None)
        elif record is not None:
            stored = record.model_dump(mode="json")
            # entries not yet delivered (earlier in this batch, or before a
            # crash) stay until the batch's outputs are out
            box = stored_outbox(self.table.get(key))
            if outputs:
                entry = {
                    "command_id": command.command_id,
                    "messages": [out.stored() for out in outputs],
                }
                box = [*box, entry]
            stored["outbox"] = box
            self.table.stage(key, partition, stored)
            self.rows[key] = (partition, stored)
        self.send(command, outputs if sending is None else sending, key=key)

    def _staged(self, *, kept: bool) -> list[tuple[Rows, str, int, Row]]:
        """The rows staged in this batch and those it joined: kept ones or removed ones."""
        return [
            (b.table, k, p, v)
            for b in (self, *self.joined)
            for k, (p, v) in b.rows.items()
            if (v is not None) == kept
        ]

    async def commit(self) -> None:
        """Make the staged rows durable, produce the outputs, then delete removed rows
        and empty the outboxes."""
        kept = self._staged(kept=True)
        await self.changelog.durable_rows(kept)
        if self.after_state is not None and self.sends:
            self.after_state(self.agent)
        await self.delivery.deliver(self.sends, self.agent)
        await self.changelog.durable_rows(self._staged(kept=False))
        # Delivered: empty the outboxes, so that the same event sent again by its
        # party (not a crash replay) has no second effect. Not awaited: if these
        # writes are lost in a crash, a replay repeats identical messages once.
        for table, key, partition, value in kept:
            if value is not None and value.get("outbox"):
                value["outbox"] = []
                await self.changelog.write(table, partition, key, value)


__all__ = [
    "DURABLE_ATTEMPTS",
    "Batch",
    "Changelog",
    "Deliverer",
    "Producer",
    "Rows",
    "replayed",
    "stored_outbox",
]
