"""What an ingress loop's consumer subscribes to: a pattern, or the topics listed.

A pattern subscription makes aiokafka ask the broker for the metadata of every
topic in the cluster at each refresh, to match the pattern against: with 5,000
organizations, 10,000 topics' metadata decoded in Python on the worker's event
loop every ``REFNET_PATTERN_REFRESH`` seconds, for the clinics' submissions
loop that reads a handful of them (docs/directory.md). :class:`Listed` instead
subscribes to the topics of the network's own listing that match the pattern
(the network view lists the cluster's topics every refresh, through
librdkafka, on a thread), and subscribes again when that set changes; the
consumer then asks for the metadata of those topics only, and only when they
change (or a leader moves), not every refresh.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

log = logging.getLogger(__name__)

#: Seconds between two looks at the listing (a set comparison).
LOOK_EVERY = 1.0
#: How old a listed consumer's metadata may grow before it asks again: a new topic
#: comes with the listing (the subscription changes, and aiokafka asks for the
#: metadata of its topics then), and a leader that moves makes it ask at once.
LISTED_METADATA_AGE_MS = 300_000


class Listed:
    """Subscribes ``consumer`` to the topics of ``names()`` matching ``pattern``."""

    def __init__(
        self,
        pattern: str,
        names: Callable[[], Collection[str]],
        *,
        look_every: float = LOOK_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pattern = re.compile(pattern)
        self.names = names
        self.look_every = look_every
        self.clock = clock
        self.topics: frozenset[str] = frozenset()
        self._looked = float("-inf")

    def wanted(self) -> frozenset[str]:
        return frozenset(n for n in self.names() if self.pattern.fullmatch(n))

    def refresh(self, consumer: AIOKafkaConsumer, listener: ConsumerRebalanceListener) -> bool:
        """Subscribe again if the listing's matching topics changed (looked at once
        every ``look_every`` seconds); whether the consumer is subscribed to any."""
        now = self.clock()
        if now - self._looked < self.look_every:
            return bool(self.topics)
        self._looked = now
        wanted = self.wanted()
        if wanted != self.topics:
            if wanted:
                consumer.subscribe(topics=sorted(wanted), listener=listener)
            else:
                consumer.unsubscribe()
            log.info(
                "ingress subscribed to %d topic(s) (%d new, %d gone)",
                len(wanted),
                len(wanted - self.topics),
                len(self.topics - wanted),
            )
            self.topics = wanted
        return bool(self.topics)


__all__ = ["LISTED_METADATA_AGE_MS", "LOOK_EVERY", "Listed"]
