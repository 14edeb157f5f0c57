"""The ingress's commits: in the background, one request at a time, newest last."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

log = logging.getLogger("streams.runtime.ingress")


#: Seconds between two commits of the ingress (a commit after every batch would be
#: 170 requests a second at 200 screenings/s). A crash or a rebalance re-reads at
#: most this much more, which the owners ignore (each command id has one effect).
COMMIT_SPACING = 0.2


class Committer:
    """Commits offsets in the background, one request at a time, newest last, at
    most one every ``spacing`` seconds.

    The next batch is read while the last one's offsets are committed: a commit
    is a round trip to the group coordinator that no message has to wait for.
    Only offsets whose batch is acknowledged are handed over, so a commit never
    passes an unproduced message; a commit refused after a rebalance is logged
    and the new owner re-reads from the last commit (owners ignore repeats).
    """

    def __init__(self, consumer: AIOKafkaConsumer, spacing: float = COMMIT_SPACING) -> None:
        self.consumer = consumer
        self.spacing = spacing
        self.pending: dict[TopicPartition, int] = {}
        self.task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.pending.update(offsets)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while self.pending:
            offsets, self.pending = self.pending, {}
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError) as exc:
                log.warning(
                    "ingress commit failed (%s); those messages will be read again",
                    type(exc).__name__,
                )
            if not self._closing.is_set():
                # what is handed over meanwhile goes in the next request
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.spacing)

    async def close(self) -> None:
        """Commit what is pending now, and wait for it."""
        self._closing.set()
        if self.task is not None and not self.task.done():
            await asyncio.gather(self.task, return_exceptions=True)
        if self.pending:
            self.task = asyncio.ensure_future(self._run())
            await asyncio.gather(self.task, return_exceptions=True)
        self._closing.clear()


__all__ = ["COMMIT_SPACING", "Committer"]
