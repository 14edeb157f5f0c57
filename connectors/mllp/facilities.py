"""Which facilities are provisioned: those whose submissions topic exists.

The broker's topic list is cached for ``ttl`` seconds; a facility not in it
triggers one refresh at most every ``min_refresh`` seconds (a stream of unknown
names never floods the broker), and concurrent refreshes are one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from schemas.topics import Topics

#: Fetches the names of the topics the broker has.
TopicLister = Callable[[], Awaitable[set[str]]]


class FacilityDirectory:
    def __init__(
        self, topics: Topics, list_topics: TopicLister, ttl: float = 10.0, min_refresh: float = 1.0
    ) -> None:
        self._topics = topics
        self._list = list_topics
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._names: set[str] = set()
        self._fetched = -float("inf")
        self._lock = asyncio.Lock()

    async def known(self, facility_id: str) -> bool:
        """Whether ``facility_id`` is provisioned; raises what the broker raises
        when the list must be fetched and cannot be."""
        topic = self._topics.facility_submissions(facility_id)
        age = time.monotonic() - self._fetched
        if age > self._ttl or (topic not in self._names and age > self._min_refresh):
            await self._refresh(time.monotonic())
        return topic in self._names

    async def _refresh(self, asked: float) -> None:
        async with self._lock:
            if self._fetched >= asked:  # another task refreshed while this one waited
                return
            names = await self._list()
            self._names = names
            self._fetched = time.monotonic()


__all__ = ["FacilityDirectory", "TopicLister"]
