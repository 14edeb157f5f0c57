"""How an agent takes its stream: in batches of what has arrived, each run to its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

#: An agent applies up to BATCH_SIZE commands as one batch (one wait for the
#: changelog, one for the outputs): what has arrived, without waiting for more.
#: A batch's events are acknowledged only after it is applied, and a batch runs
#: to its end even if its agent is cancelled (see :func:`unbroken`), so that no
#: commit passes a command whose outputs were not produced.
BATCH_SIZE = 200


async def batches(stream: Any, size: int = BATCH_SIZE) -> AsyncIterator[list[Any]]:
    """The stream's events in batches of what has arrived, up to ``size``.

    Faust's ``take_events`` waits for a timer to hand over a batch (and wakes every
    ``within`` seconds even when idle); this hands one over as soon as the
    channel's queue is empty, so one command alone goes at once, and commands
    that queue up while a batch is applied form the next batch. Events are
    acknowledged after the batch (the caller's work) is done, as ``take_events``
    does.
    """
    stream.enable_acks = False  # acknowledged here, once the batch is applied
    queue = stream.channel.queue
    events: list[Any] = []
    async for _value in stream:
        events.append(stream.current_event)
        if len(events) < size and not queue.empty():
            continue
        try:
            yield events
        finally:
            for event in events:
                await stream.ack(event)
            events = []


async def unbroken(work: Awaitable[None]) -> None:
    """Run a batch to its end even if the agent is cancelled meanwhile (a stop or
    a rebalance): its state is staged, so its outputs must go out, and
    :func:`batches` must not acknowledge its events before that. The
    cancellation goes on once the batch is done."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


__all__ = ["BATCH_SIZE", "batches", "unbroken"]
