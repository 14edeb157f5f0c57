"""A running network for one test: unique topics, a real `refnet worker` process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.kafka.admin import apply_topics
from deploy.launcher import WORKER_MODULE, start_worker, stop_worker
from schemas.events import Event, to_bytes
from schemas.topics import Topics
from tests.connectors.fresh_db import with_database

#: What the network answers a party of its own messages, on the party's inbox topic.
ANSWER_TYPES = frozenset({"message.refused", "screening.answered", "referral.status-recorded"})


def now() -> datetime:
    return datetime.now(UTC)


class Network:
    """Publishes as clinics and organizations; reads what the network answers."""

    def __init__(self, bootstrap: str, topics: Topics, data_dir: Path) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.data_dir = data_dir
        self.app_id = f"refnet-{topics.prefix}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.producer: AIOKafkaProducer | None = None
        self.log_path = data_dir / "worker.log"
        self.database_url: str | None = None
        self.metrics_port: int | None = None
        #: more REFNET_* settings for the worker (e.g. a short idle expiry)
        self.extra_env: dict[str, str] = {}
        #: the session's PostgreSQL server, where a gateway gets a database of its own
        self.pg_server: str | None = None
        self._gateway_db: tuple[str, str] | None = None

    def gateway_database(self) -> str:
        """The database of this network's gateways: the ledger's if the worker writes one,
        else one of their own on the session's server (made once, dropped at close)."""
        if self.database_url:
            return self.database_url
        if self._gateway_db is None:
            assert self.pg_server, "the network fixture gives the gateway a PostgreSQL server"
            name = f"gateway_{uuid.uuid4().hex[:12]}"
            _on_server(self.pg_server, f'CREATE DATABASE "{name}"')
            self._gateway_db = (name, with_database(self.pg_server, name))
        return self._gateway_db[1]

    # ------------------------------------------------------------ setup
    async def provision(self, clinics: list[str], orgs: list[str]) -> None:
        specs = self.topics.apply_catalog(self.app_id)
        for clinic in clinics:
            specs += self.topics.clinic_catalog(clinic)
        for org in orgs:
            specs += self.topics.org_catalog(org)
        await asyncio.to_thread(apply_topics, self.bootstrap, specs)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REFNET_")}
        env.update(
            REFNET_KAFKA_BOOTSTRAP=self.bootstrap,
            REFNET_TOPIC_PREFIX=self.topics.prefix,
            REFNET_PARTITIONS=str(self.topics.partitions),
            REFNET_APP_ID=self.app_id,
            REFNET_DATA_DIR=str(self.data_dir),
            REFNET_TIMER_INTERVAL="0.2",
            REFNET_PATTERN_REFRESH="2",
            REFNET_SESSION_TIMEOUT="6",
            REFNET_LOG_LEVEL="info",
        )
        if self.database_url:
            env["REFNET_DATABASE_URL"] = self.database_url
        if self.metrics_port:
            env["REFNET_METRICS_PORT"] = str(self.metrics_port)
        env.update(self.extra_env)
        return env

    def start_worker(self, module: str = WORKER_MODULE) -> None:
        """Run ``python -m {module} worker`` (a test-only entry may hook the worker)."""
        self.proc = start_worker(self.env(), self.log_path, module=module)

    def kill_worker(self) -> None:
        """SIGKILL: no shutdown, no final commit, no flush."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop_worker(self) -> None:
        stop_worker(self.proc)
        self.proc = None

    def worker_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def assert_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"the worker exited:\n{self.worker_log()}"
        )

    # ------------------------------------------------------------ io
    async def publish(self, topic: str, key: str | None, event: Event | bytes | None) -> None:
        if self.producer is None:
            self.producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
            )
            await self.producer.start()
        value = to_bytes(event) if isinstance(event, Event) else event
        await self.producer.send_and_wait(
            topic, value, key=key.encode() if key is not None else None
        )

    async def read(
        self,
        topic: str,
        *,
        until: Any = None,
        count: int | None = None,
        timeout: float = 60,
        answers: bool = False,
        to_end: bool = False,
    ) -> list[dict[str, Any]]:
        """Read ``topic`` from its beginning until ``until(values)`` or ``count`` values;
        with neither, for ``timeout`` seconds (what arrives meanwhile counts), or with
        ``to_end`` only up to the end the topic has now.

        The network's answers to a party's own messages (``message.refused``,
        ``screening.answered``) are left out unless ``answers``."""
        import json

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        values: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        ends: dict[Any, int] = {}
        if to_end:
            partitions = consumer.partitions_for_topic(topic) or set()
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        try:
            while True:
                if to_end and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                    return values
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    for r in sorted(records, key=lambda r: r.offset):
                        value = json.loads(r.value)
                        if not answers and value.get("event_type") in ANSWER_TYPES:
                            continue
                        values.append({**value, "_key": r.key.decode() if r.key else None})
                if count is not None and len(values) >= count:
                    return values
                if until is not None and until(values):
                    return values
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"the worker exited:\n{self.worker_log()}")
                if asyncio.get_running_loop().time() > deadline:
                    if until is None and count is None:
                        return values
                    seen = [
                        (v.get("event_type"), v.get("status"), v.get("business_status"))
                        for v in values
                    ]
                    raise AssertionError(
                        f"timed out reading {topic}: got {len(values)} messages: {seen}"
                        f"\n--- worker log ---\n{self.worker_log()}"
                    )
        finally:
            await consumer.stop()

    async def close(self) -> None:
        self.stop_worker()
        if self.producer is not None:
            await self.producer.stop()
        if self._gateway_db is not None and self.pg_server:
            await asyncio.to_thread(
                _on_server, self.pg_server, f'DROP DATABASE IF EXISTS "{self._gateway_db[0]}"'
            )


def _on_server(server: str, sql: str) -> None:
    """Run one statement on ``server`` (from synchronous code, as starting a process is)."""

    async def run() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture
async def network(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> AsyncIterator[Network]:
    topics = Topics(prefix=f"n{uuid.uuid4().hex[:8]}", partitions=3)
    net = Network(kafka_bootstrap, topics, tmp_path)
    net.pg_server = database_url
    try:
        yield net
    finally:
        await net.close()


def ts(minutes: int = 0) -> datetime:
    return now() + timedelta(minutes=minutes)
