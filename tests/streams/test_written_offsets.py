"""A worker remembers how far its own changelog writes reached (see
streams.runtime.store): partitions it keeps across a rebalance are not read again."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from streams.runtime.faust_app import AppProducer
from streams.runtime.store import ChangelogLoader


class _Metadata:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class _Producer:
    """Faust's producer as AppProducer sees it: ``send`` returns the ack's future."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, *args: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class _App:
    def __init__(self) -> None:
        self.producer = _Producer()
        self.changelog_loader = ChangelogLoader("localhost:1")


async def test_acknowledged_changelog_writes_are_remembered_per_partition() -> None:
    app = _App()
    producer = AppProducer(app)  # type: ignore[arg-type]
    topic = "refnet-x-referrals-changelog"
    await producer.send(topic, b"k", b"v", 2)
    await producer.send(topic, b"k", b"v", 2)
    await producer.send(topic, b"k", None, 0)
    await producer.send("x.org.a.referrals.v1", b"k", b"v", 1)  # an output, no changelog
    await producer.send(topic, b"k", b"v", 1)
    first, second, tombstone, output, refused = app.producer.futures
    second.set_result(_Metadata(41))
    first.set_result(_Metadata(40))  # an older ack never moves the mark back
    tombstone.set_result(_Metadata(7))
    output.set_result(_Metadata(99))
    refused.set_exception(TimeoutError())
    await asyncio.sleep(0)  # done callbacks run on the loop
    loader = app.changelog_loader
    assert loader.written(TP(topic, 2)) == 41
    assert loader.written(TP(topic, 0)) == 7
    assert loader.written(TP(topic, 1)) is None  # never acknowledged
    assert loader.written(TP("x.org.a.referrals.v1", 1)) is None
    refused.exception()  # retrieved: no "never retrieved" warning


def test_partitions_that_left_are_forgotten() -> None:
    loader = ChangelogLoader("localhost:1")
    loader.wrote("t-changelog", 0, 5)
    loader.wrote("t-changelog", 1, 6)
    loader.wrote("u-changelog", 1, 9)
    loader.forget_written({TP("t-changelog", 1)}, "t-changelog")
    assert loader.written(TP("t-changelog", 0)) is None
    assert loader.written(TP("t-changelog", 1)) == 6
    assert loader.written(TP("u-changelog", 1)) == 9  # another table's partitions stay
