"""An agent's batches: what has arrived, at once, acknowledged after the batch."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.runtime.batches import batches


class _Stream:
    """The parts of a Faust stream :func:`batches` uses, fed from a list of arrivals:
    each arrival is a list of events that reach the channel's queue together."""

    def __init__(self, arrivals: list[list[str]]) -> None:
        self.enable_acks = True
        self.channel = self
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.arrivals = arrivals
        self.current_event: str | None = None
        self.acked: list[str] = []
        self.log: list[str] = []

    def __aiter__(self) -> Any:
        return self._iterate()

    async def _iterate(self) -> Any:
        for arrival in self.arrivals:
            for event in arrival:
                self.queue.put_nowait(event)
            while not self.queue.empty():
                self.current_event = self.queue.get_nowait()
                yield self.current_event

    async def ack(self, event: str) -> None:
        self.acked.append(event)
        self.log.append(f"ack {event}")


async def _collect(stream: _Stream, size: int) -> list[list[str]]:
    seen = []
    async for events in batches(stream, size):
        stream.log.append(f"apply {','.join(events)}")
        assert not set(events) & set(stream.acked), "acknowledged before it was applied"
        seen.append(list(events))
    return seen


async def test_a_command_alone_goes_at_once_and_queued_ones_go_together() -> None:
    stream = _Stream([["a"], ["b", "c", "d"], ["e"]])
    assert await _collect(stream, 200) == [["a"], ["b", "c", "d"], ["e"]]
    assert stream.enable_acks is False  # Faust must not acknowledge on its own


async def test_a_batch_holds_at_most_size_events() -> None:
    stream = _Stream([["a", "b", "c", "d", "e"]])
    assert await _collect(stream, 2) == [["a", "b"], ["c", "d"], ["e"]]


async def test_events_are_acknowledged_only_after_their_batch_is_applied() -> None:
    stream = _Stream([["a", "b"], ["c"]])
    await _collect(stream, 200)
    assert stream.log == ["apply a,b", "ack a", "ack b", "apply c", "ack c"]


async def test_a_batch_that_fails_is_acknowledged_as_faust_s_take_events_does() -> None:
    stream = _Stream([["a", "b"], ["c"]])
    iterator = batches(stream, 200).__aiter__()
    first = await iterator.__anext__()
    assert first == ["a", "b"] and stream.acked == []
    await iterator.aclose()
    assert stream.acked == ["a", "b"]
