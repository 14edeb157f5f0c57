"""The agents' consumer holds an empty fetch for FETCH_MAX_WAIT_MS, not Faust's 1.5 s."""

from __future__ import annotations

from pathlib import Path

import aiokafka

from streams.runtime.app import build
from streams.runtime.config import NetworkConfig
from streams.runtime.faust_app import FETCH_MAX_WAIT_MS


async def test_aiokafka_keeps_the_fetch_wait_where_the_consumer_thread_sets_it() -> None:
    # the override writes this attribute before the consumer starts its fetcher
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=123)
    assert consumer._fetch_max_wait_ms == 123


async def test_the_worker_s_consumer_waits_at_most_fetch_max_wait_ms(tmp_path: Path) -> None:
    config = NetworkConfig(app_id="settings-test", data_dir=tmp_path)
    network = build(config, "127.0.0.1:1")
    thread = network.app.consumer._thread
    consumer = thread._create_worker_consumer(network.app.transport)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
