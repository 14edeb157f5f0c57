"""The worker's producers partition keyed messages exactly as Kafka's default does."""

from __future__ import annotations

import random
from pathlib import Path

from aiokafka.partitioner import DefaultPartitioner

from streams.runtime.config import NetworkConfig
from streams.runtime.faust_app import new_app
from streams.runtime.partitioner import PARTITIONER


def test_every_key_goes_where_the_default_partitioner_sends_it() -> None:
    rng = random.Random(7)
    default = DefaultPartitioner()
    for _ in range(3000):
        key = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        partitions = list(range(rng.choice([1, 2, 3, 6, 12, 24, 100])))
        assert PARTITIONER(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    chosen = {PARTITIONER(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert chosen == {1, 3}
    assert PARTITIONER(None, [0, 1], []) in {0, 1}


def test_the_worker_s_faust_app_uses_it(tmp_path: Path) -> None:
    app = new_app(NetworkConfig(app_id="partitioner-test", data_dir=tmp_path), "localhost:9092")
    assert app.conf.producer_partitioner is PARTITIONER
