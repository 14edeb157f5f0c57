"""Kafka's default partitioner, with refnet's faster murmur2.

Every keyed message the worker produces is hashed to its partition; aiokafka's
``DefaultPartitioner`` hashes byte by byte in Python. This one gives the same
partition for every key (:func:`streams.decisions.commands.murmur2` is checked
against aiokafka's hash in the tests) and, like it, a random available partition
for a message without a key.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from streams.decisions.commands import murmur2


class KeyPartitioner:
    """A partitioner for aiokafka's and Faust's producers (``partitioner=``)."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311 - not security
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]


PARTITIONER = KeyPartitioner()

__all__ = ["PARTITIONER", "KeyPartitioner"]
